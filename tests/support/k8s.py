"""Test support for the Kubernetes target: where its manifests, example and experiments live."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
EXAMPLE = K8S / "runner" / "deployment.k8s.json"  # the example deployment file of the runner
EXPERIMENTS = sorted((K8S / "experiments").glob("*.json"))
