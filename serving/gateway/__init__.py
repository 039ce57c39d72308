"""Gateway in front of the model-server replicas (`python -m serving.gateway`)."""

from __future__ import annotations
