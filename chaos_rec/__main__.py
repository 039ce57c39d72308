"""``python -m chaos_rec`` is the ``chaos-rec`` command."""

from __future__ import annotations

import sys

from chaos_rec.cli import main

sys.exit(main())
