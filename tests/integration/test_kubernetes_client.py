"""The real kubernetes client (chaosk8s) against a kubeconfig file: context pinned, errors ours.

No cluster exists here: each context of the kubeconfig points at a different closed loopback
port, so the port in the error says which context a call really used. The kubernetes client
reads KUBECONFIG once, at import, so each case runs in a fresh interpreter started with it set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import kubernetes.config  # imported now, before a test sets KUBECONFIG
import pytest

from chaos_rec.backends.kube import Chaosk8sApi
from chaos_rec.errors import ConfigError

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
- name: prod
  cluster: {server: "https://127.0.0.1:2", insecure-skip-tls-verify: true}
contexts:
- name: gpu-staging
  context: {cluster: staging, user: u}
- name: prod-east
  context: {cluster: prod, user: u}
current-context: prod-east
users:
- name: u
  user: {token: not-a-secret}
"""

CALLS = """
import json
from chaos_rec.backends.kube import Chaosk8sApi, kube_contexts
from chaos_rec.errors import ChaosRecError

def attempt(what, call):
    try:
        result = call()
    except ChaosRecError as exc:
        result = f"{type(exc).__name__}: {exc}"
    print(json.dumps([what, result]))

attempt("contexts", lambda: kube_contexts(CONFIG))
attempt("unknown", lambda: Chaosk8sApi("gpu-west"))
api = Chaosk8sApi("gpu-staging", request_timeout_s=2)
attempt("exec_in_pods", lambda: api.exec_in_pods(
    ["cat", "/tmp/server.pid"], label_selector="a=b", ns="recommender", container="c"))
attempt("terminate_pods", lambda: api.terminate_pods(
    label_selector="a=b", ns="recommender", pod="p-0"))
attempt("pods_in_conditions", lambda: api.pods_ready(label_selector="a=b", ns="recommender"))
attempt("deployment_fully_available", lambda: api.deployment_fully_available(
    name="model-server-0", ns="recommender", timeout_s=2))
"""


def _run(code: str, kubeconfig: Path, **env: str | None) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; ``env`` adds variables (None removes one)."""
    environ = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONPATH": str(ROOT)}
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    script = f"CONFIG = {str(kubeconfig)!r}\n" + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", script], env=environ, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return dict(json.loads(line) for line in out.stdout.splitlines())


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def test_each_call_uses_the_pinned_context_and_fails_in_one_line(kubeconfig: Path) -> None:
    # KUBERNETES_CONTEXT and current-context both name prod-east: neither may win
    got = _run(CALLS, kubeconfig, KUBERNETES_CONTEXT="prod-east")
    assert got.pop("contexts") == ["gpu-staging", "prod-east"]
    assert got.pop("unknown") == (
        f"ConfigError: kube context 'gpu-west' is not in {kubeconfig} "
        "(contexts: gpu-staging, prod-east)"
    )
    assert sorted(got) == [
        "deployment_fully_available", "exec_in_pods", "pods_in_conditions", "terminate_pods"
    ]  # fmt: skip
    for func, text in got.items():
        assert text.startswith(
            f"FaultError: kubernetes {func} (context gpu-staging) failed: network error ("
        )
        assert "port=1)" in text and "port=2" not in text and "\n" not in text


def test_no_kubeconfig_is_refused_rather_than_falling_back_to_other_credentials(
    tmp_path: Path,
) -> None:
    code = """
    import json
    from chaos_rec.backends.kube import Chaosk8sApi
    from chaos_rec.errors import ConfigError
    try:
        Chaosk8sApi("gpu-staging")
    except ConfigError as exc:
        print(json.dumps(["error", str(exc)]))
    """
    got = _run(code, tmp_path / "none", CHAOSTOOLKIT_IN_POD="true")
    assert got["error"] == (
        f"no kubeconfig at {tmp_path / 'none'}: the kubernetes backend needs one that holds "
        "context 'gpu-staging' (set KUBECONFIG)"
    )


def test_a_kubeconfig_set_after_the_client_was_imported_is_refused(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert str(kubeconfig) != kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(ConfigError, match=r"^KUBECONFIG changed after the kubernetes client"):
        Chaosk8sApi("gpu-staging")


DOOR = """
import json
from chaos_rec.actions import hang_replica, kill_replica
from chaos_rec.errors import ChaosRecError

for name, action in (("kill", kill_replica), ("hang", hang_replica)):
    try:
        action("replica:0", configuration={"chaos_rec_target": DEPLOYMENT})
    except ChaosRecError as exc:
        print(json.dumps([name, f"{type(exc).__name__}: {exc}"]))
"""


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ("gpu-staging",
         "FaultError: kubernetes exec_in_pods (context gpu-staging) failed: network error ("),
        ("prod-east",
         "FaultError: kube context 'prod-east' is not on the allowlist (gpu-staging); "
         "add it to processes.allowed_contexts in the deployment file"),
    ],
)  # fmt: skip
def test_the_catalogue_actions_reach_the_cluster_only_through_an_allowed_context(
    kubeconfig: Path, tmp_path: Path, context: str, expected: str
) -> None:
    example = json.loads((ROOT / "deploy" / "k8s" / "runner" / "deployment.k8s.json").read_text())
    example["processes"].update(context=context, allowed_contexts=["gpu-staging"])
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(example))
    code = f"DEPLOYMENT = {str(deployment)!r}\n" + DOOR
    got = _run(code, kubeconfig)
    assert sorted(got) == ["hang", "kill"]
    for text in got.values():
        assert text.startswith(expected) and "\n" not in text
        assert "port=2" not in text  # prod-east's cluster was never called


IN_POD = """
import json
from chaos_rec.backends.kube import Chaosk8sApi
from chaos_rec.errors import ChaosRecError
try:
    api = Chaosk8sApi("in-cluster", request_timeout_s=2)
    api.pods_ready(label_selector="a=b", ns="recommender")
except ChaosRecError as exc:
    print(json.dumps(["error", f"{type(exc).__name__}: {exc}"]))
"""


@pytest.mark.parametrize(
    ("with_file", "in_pod", "expected"),
    [
        (True, "true", "ConfigError: context 'in-cluster', but chaosk8s would use the kubeconfig at "),
        (False, "", "ConfigError: context 'in-cluster' needs CHAOSTOOLKIT_IN_POD=true"),
        # the pod's service account was used: there is none here, so loading it fails
        (False, "true", "FaultError: kubernetes pods_in_conditions (context in-cluster) failed: "
                        "Kubernetes API error (ConfigException: Service host/port is not set.)"),
    ],
)  # fmt: skip
def test_in_cluster_means_the_pods_service_account_and_nothing_else(
    kubeconfig: Path, tmp_path: Path, with_file: bool, in_pod: str, expected: str
) -> None:
    path = kubeconfig if with_file else tmp_path / "none"
    got = _run(IN_POD, path, CHAOSTOOLKIT_IN_POD=in_pod, KUBERNETES_SERVICE_HOST=None)
    assert got["error"].startswith(expected)
