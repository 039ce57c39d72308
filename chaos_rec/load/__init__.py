"""Load runner: Locust as a subprocess, per-second timeline."""
