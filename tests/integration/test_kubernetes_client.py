"""The real kubernetes client (chaosk8s) against a kubeconfig file: context pinned, errors ours.

No cluster exists here: each context of the kubeconfig points at a different closed loopback
port, so the port in the error says which context a call really used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaos_rec.backends.kube import Chaosk8sApi, kube_contexts
from chaos_rec.errors import ConfigError, FaultError

pytestmark = pytest.mark.integration

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


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("KUBERNETES_CONTEXT", "prod-east")  # must not win over the pinned one
    return path


def test_the_contexts_are_read_from_the_file(kubeconfig: Path) -> None:
    assert kube_contexts(str(kubeconfig)) == ["gpu-staging", "prod-east"]


def test_a_context_the_kubeconfig_lacks_is_refused_without_a_call(kubeconfig: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Chaosk8sApi("gpu-west")
    assert str(info.value) == (
        f"kube context 'gpu-west' is not in {kubeconfig} (contexts: gpu-staging, prod-east)"
    )


def test_no_kubeconfig_is_refused_rather_than_falling_back_to_other_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    with pytest.raises(ConfigError, match=r"no kubeconfig at .*none: the kubernetes backend"):
        Chaosk8sApi("gpu-staging")


CALLS: list[tuple[str, Callable[[Chaosk8sApi], Any]]] = [
    ("exec_in_pods", lambda api: api.exec_in_pods(
        ["cat", "/tmp/server.pid"], label_selector="a=b", ns="recommender", container="c")),
    ("terminate_pods", lambda api: api.terminate_pods(
        label_selector="a=b", ns="recommender", pod="p-0")),
    ("pods_in_conditions", lambda api: api.pods_ready(label_selector="a=b", ns="recommender")),
    ("deployment_fully_available", lambda api: api.deployment_fully_available(
        name="model-server-0", ns="recommender", timeout_s=2)),
]  # fmt: skip


@pytest.mark.parametrize(("func", "call"), CALLS, ids=[c[0] for c in CALLS])
def test_every_call_goes_to_the_pinned_context_and_fails_in_one_line(
    kubeconfig: Path, func: str, call: Callable[[Chaosk8sApi], Any]
) -> None:
    api = Chaosk8sApi("gpu-staging", request_timeout_s=2)
    with pytest.raises(FaultError) as info:
        call(api)
    text = str(info.value)
    assert text.startswith(f"kubernetes {func} (context gpu-staging) failed: network error (")
    assert "port=1)" in text and "port=2" not in text and "\n" not in text
