"""``python -m chaos_rec.toxiproxy``: run the fault proxy."""

from __future__ import annotations

import sys

from chaos_rec.toxiproxy.cli import main

sys.exit(main())
