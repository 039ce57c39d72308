"""The target allowlist itself: hosts of URLs and addresses, accepted and refused."""

from __future__ import annotations

import pytest

from chaos_rec.core.allowlist import (
    FILE_FIX,
    LOOPBACK,
    TargetAllowlist,
    host_of,
    refuse_unlisted,
)
from chaos_rec.errors import FaultError


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://10.0.0.5:8080/x", "10.0.0.5"),
        ("redis://Redis.Example.SVC:6379/0", "redis.example.svc"),
        ("127.0.0.1:8001", "127.0.0.1"),
        ("[::1]:8474", "::1"),
        ("http://[::1]:8474", "::1"),
        ("http://user:pw@10.1.1.1:1", "10.1.1.1"),
        ("[::1:8474", ""),  # malformed: names no host, so nothing is allowed
    ],
)
def test_host_of_urls_and_addresses(url: str, host: str) -> None:
    assert host_of(url) == host


def test_a_host_on_the_list_is_accepted_and_returned_unchanged() -> None:
    allow = TargetAllowlist(LOOPBACK | {"10.0.0.5", "Gateway.SVC"})
    assert allow.allow("gateway_url", "http://10.0.0.5:8080") == "http://10.0.0.5:8080"
    assert allow.allow("gateway_url", "http://gateway.svc") == "http://gateway.svc"
    assert allow.allow("links.x.listen", "[::1]:16379") == "[::1]:16379"


def test_a_host_off_the_list_is_one_line_naming_the_key_and_the_fix() -> None:
    allow = TargetAllowlist(LOOPBACK | {"10.0.0.5"})
    with pytest.raises(FaultError) as info:
        allow.allow("redis_url", "redis://10.0.0.6:6379/0")
    assert str(info.value) == (
        "redis_url: host '10.0.0.6' is not on the allowlist (10.0.0.5, 127.0.0.1, ::1, "
        f"localhost); {FILE_FIX}"
    )


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(FaultError, match="gateway_url: host '' is not on the allowlist"):
        TargetAllowlist().allow("gateway_url", "http:///nohost")


def test_allow_all_refuses_the_first_target_off_the_list() -> None:
    allow = TargetAllowlist()
    allow.allow_all([("a", "http://127.0.0.1:1")])
    with pytest.raises(FaultError, match=r"^b: host '10\.0\.0\.7'"):
        allow.allow_all([("a", "http://127.0.0.1:1"), ("b", "10.0.0.7:1"), ("c", "10.0.0.8:1")])


def test_refuse_unlisted_is_the_kube_refusal_too() -> None:
    refuse_unlisted("namespace", "recommender", ("recommender",), "fix")
    with pytest.raises(FaultError) as info:
        refuse_unlisted("kube context", "prod", ("gpu-staging", "dev"), "add it")
    assert (
        str(info.value) == "kube context 'prod' is not on the allowlist (gpu-staging, dev); add it"
    )
