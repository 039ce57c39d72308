"""Upstreams only on allowed hosts; listeners stay on loopback unless told otherwise."""

from __future__ import annotations

import pytest

from chaos_rec.errors import ConfigError, ProxyRequestError
from chaos_rec.toxiproxy.allowlist import Allowlist, split_hostport


def test_loopback_allowed_by_default() -> None:
    allow = Allowlist.build()
    for up in ("127.0.0.1:6379", "localhost:1", "[::1]:80", "127.9.9.9:5"):
        allow.check_upstream(up)


@pytest.mark.parametrize("up", ["10.0.0.1:6379", "example.com:80", "0.0.0.0:1"])
def test_other_upstreams_refused(up: str) -> None:
    with pytest.raises(ProxyRequestError) as err:
        Allowlist.build().check_upstream(up)
    assert err.value.status == 400
    assert "allowlist" in str(err.value)


def test_extra_entries() -> None:
    allow = Allowlist.build(["10.1.0.0/16", "redis.internal"])
    allow.check_upstream("10.1.2.3:6379")
    allow.check_upstream("REDIS.internal:6379")
    with pytest.raises(ProxyRequestError):
        allow.check_upstream("10.2.0.1:6379")
    with pytest.raises(ConfigError):
        Allowlist.build(["bad entry"])


def test_listen_wildcards_bind_loopback_unless_public() -> None:
    assert Allowlist.build().listen_host("0.0.0.0:0") == ("127.0.0.1", 0)
    assert Allowlist.build().listen_host(":8080") == ("127.0.0.1", 8080)
    assert Allowlist.build().listen_host("localhost:1") == ("127.0.0.1", 1)
    assert Allowlist.build(public_listen=True).listen_host("0.0.0.0:5") == ("0.0.0.0", 5)
    with pytest.raises(ProxyRequestError):
        Allowlist.build(["10.0.0.0/8"]).listen_host("10.0.0.1:0")


@pytest.mark.parametrize("addr", ["nocolon", "host:port", "h:70000", "h:-1"])
def test_bad_addresses(addr: str) -> None:
    with pytest.raises(ProxyRequestError) as err:
        split_hostport(addr, "listen")
    assert err.value.status == 400
