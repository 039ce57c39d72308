"""Conformance of the fault proxy's HTTP API, driven by toxiproxy-python and raw HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaos_rec.errors import ProxyError
from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.model import TOXIC_ATTRIBUTES
from chaos_rec.toxiproxy.requestid import xid_time
from chaos_rec.toxiproxy.testing import free_port, running_fault_proxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with running_fault_proxy(seed=11) as url:
        yield url


@pytest.fixture
def clean(api: str) -> Iterator[str]:
    client = ToxiproxyClient(api)
    for name in client.proxies():
        client.delete_proxy(name)
    yield api
    for name in client.proxies():
        client.delete_proxy(name)


@pytest.fixture
def tp(clean: str) -> Iterator[Toxiproxy]:
    port = int(clean.rsplit(":", 1)[1])
    old = (APIConsumer.host, APIConsumer.port)
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", port)
    yield server
    APIConsumer.host, APIConsumer.port = old


def test_toxiproxy_python_full_cycle(tp: Toxiproxy) -> None:
    assert tp.running()
    assert b"version" in tp.version()
    up = f"127.0.0.1:{free_port()}"
    proxy = tp.create(upstream=up, name="redis")
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert proxy.enabled is True
    with pytest.raises(ProxyExists):
        tp.create(upstream=up, name="redis")
    assert set(tp.proxies()) == {"redis"}
    p = tp.get_proxy("redis")
    assert p is not None and p.upstream == up

    for type_, attrs in TOXIC_ATTRIBUTES.items():
        p.add_toxic(type=type_, attributes=dict.fromkeys(attrs, 1))
    names = set(p.toxics())
    assert names == {f"{t}_downstream" for t in TOXIC_ATTRIBUTES}
    assert p.get_toxic("latency_downstream").attributes == {"latency": 1, "jitter": 1}
    with pytest.raises(ProxyExists):
        p.add_toxic(type="latency", attributes={"latency": 5})
    with pytest.raises(InvalidToxic):
        p.add_toxic(type="no_such_type", name="x")
    with pytest.raises(InvalidToxic):
        p.add_toxic(type="latency", stream="sideways", name="y")
    p.add_toxic(type="latency", stream="upstream", toxicity=0.5, attributes={"latency": 7})
    assert p.get_toxic("latency_upstream").toxicity == 0.5

    assert p.destroy_toxic("latency_downstream")
    with pytest.raises(NotFound):
        p.destroy_toxic("latency_downstream")

    with p.down():
        assert tp.get_proxy("redis").enabled is False
    assert tp.get_proxy("redis").enabled is True

    p.disable()
    assert tp.reset()
    after = tp.get_proxy("redis")
    assert after.enabled is True
    assert after.toxics() == {}

    populated = tp.populate([{"name": "other", "upstream": up, "listen": "127.0.0.1:0"}])
    assert [x.name for x in populated] == ["other"]
    assert tp.destroy(tp.get_proxy("other"))
    with pytest.raises(NotFound):
        APIConsumer.get("/proxies/other")
    tp.destroy_all()
    assert tp.proxies() == {}


def _req(api: str, method: str, path: str, body: object = None, **kw: object) -> httpx.Response:
    return httpx.request(method, api + path, json=body, timeout=5.0, **kw)  # type: ignore[arg-type]


def test_raw_http_shapes_and_status_codes(clean: str) -> None:
    api = clean
    up = f"127.0.0.1:{free_port()}"
    r = _req(api, "GET", "/version")
    assert r.status_code == 200 and r.json()["version"].startswith("2.")
    assert r.headers["content-type"].startswith("application/json")

    r = _req(api, "POST", "/proxies", {"name": "a", "listen": "127.0.0.1:0", "upstream": up})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["toxics"] == [] and body["enabled"] is True
    listen = body["listen"]

    assert _req(api, "POST", "/proxies", {"name": "a", "upstream": up}).json() == {
        "error": "proxy already exists",
        "status": 409,
    }
    r = _req(api, "POST", "/proxies", {"upstream": up})
    assert (r.status_code, r.json()["error"]) == (400, "missing required field: name")
    r = _req(api, "POST", "/proxies", {"name": "b"})
    assert (r.status_code, r.json()["error"]) == (400, "missing required field: upstream")
    r = httpx.post(api + "/proxies", content=b"{not json", timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("bad request body")
    r = _req(api, "POST", "/proxies", {"name": "c", "upstream": "10.9.9.9:80"})
    assert r.status_code == 400 and "allowlist" in r.json()["error"]

    assert _req(api, "GET", "/proxies/zz").json() == {"error": "proxy not found", "status": 404}
    assert _req(api, "GET", "/proxies/zz/toxics").status_code == 404
    assert _req(api, "POST", "/proxies/zz/toxics", {"type": "latency"}).status_code == 404
    assert _req(api, "DELETE", "/proxies/zz").status_code == 404
    assert _req(api, "PATCH", "/proxies/zz", {"enabled": False}).status_code == 404

    r = _req(api, "PATCH", "/proxies/a", {"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = _req(api, "POST", "/proxies/a", {"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["listen"] == listen

    r = _req(api, "POST", "/proxies/a/toxics", {"type": "latency", "attributes": {"latency": 3}})
    assert r.status_code == 200
    assert r.json() == {
        "attributes": {"latency": 3, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    r = _req(api, "POST", "/proxies/a/toxics", {"type": "latency"})
    assert r.status_code == 409 and r.json()["error"] == "toxic already exists"
    r = _req(api, "POST", "/proxies/a/toxics", {"type": "bogus"})
    assert r.status_code == 400 and r.json()["error"] == "invalid toxic type"
    r = _req(api, "POST", "/proxies/a/toxics", {"type": "latency", "stream": "x"})
    assert r.json()["error"] == "stream was invalid, can be either upstream or downstream"
    r = _req(api, "POST", "/proxies/a/toxics", {"type": "timeout", "stream": "upstream"})
    assert r.json()["name"] == "timeout_upstream"

    r = _req(api, "GET", "/proxies/a/toxics")
    assert [t["name"] for t in r.json()] == ["timeout_upstream", "latency_downstream"]
    r = _req(api, "GET", "/proxies/a/toxics/latency_downstream")
    assert r.status_code == 200 and r.json()["attributes"]["latency"] == 3
    assert _req(api, "GET", "/proxies/a/toxics/nope").json() == {
        "error": "toxic not found",
        "status": 404,
    }
    r = _req(api, "PATCH", "/proxies/a/toxics/latency_downstream", {"attributes": {"jitter": 2}})
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 3, "jitter": 2}
    r = _req(api, "POST", "/proxies/a/toxics/latency_downstream", {"toxicity": 0.25})
    assert r.json()["toxicity"] == 0.25 and r.json()["attributes"]["jitter"] == 2
    r = _req(api, "PATCH", "/proxies/a/toxics/latency_downstream", {"toxicity": 2})
    assert r.status_code == 400
    assert _req(api, "PATCH", "/proxies/a/toxics/nope", {}).status_code == 404
    assert _req(api, "DELETE", "/proxies/a/toxics/latency_downstream").status_code == 204
    assert _req(api, "DELETE", "/proxies/a/toxics/latency_downstream").status_code == 404

    index = _req(api, "GET", "/proxies").json()
    assert list(index) == ["a"] and index["a"]["toxics"][0]["name"] == "timeout_upstream"

    r = _req(api, "POST", "/reset")
    assert r.status_code == 204 and r.content == b""
    assert _req(api, "GET", "/proxies/a").json()["toxics"] == []

    r = _req(api, "GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert r.status_code == 403
    r = _req(api, "GET", "/metrics")
    assert r.status_code == 200 and 'chaos_rec_toxiproxy_enabled{proxy="a"} 1' in r.text
    assert "# TYPE toxiproxy_proxy_sent_bytes_total counter" in r.text

    assert _req(api, "DELETE", "/proxies/a").status_code == 204
    assert _req(api, "GET", "/proxies").json() == {}


def test_populate_is_idempotent_and_validates_before_changing_anything(clean: str) -> None:
    client = ToxiproxyClient(clean)
    up1, up2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    first = client.populate([{"name": "p1", "listen": "127.0.0.1:0", "upstream": up1}])
    listen = first[0]["listen"]
    again = client.populate([{"name": "p1", "listen": listen, "upstream": up1}])
    assert again[0]["listen"] == listen
    again = client.populate([{"name": "p1", "listen": "127.0.0.1:0", "upstream": up1}])
    assert again[0]["listen"] == listen  # same request again: proxy kept
    replaced = client.populate([{"name": "p1", "listen": listen, "upstream": up2}])
    assert replaced[0]["upstream"] == up2

    r = httpx.post(
        clean + "/populate",
        json=[
            {"name": "p2", "upstream": up1},
            {"name": "p3"},
        ],
        timeout=5,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "missing required field: upstream at proxy 2"
    assert "p2" not in client.proxies()
    r = httpx.post(clean + "/populate", json={"name": "x"}, timeout=5)
    assert r.status_code == 400


def test_populate_keeps_the_proxies_before_one_that_cannot_bind(clean: str) -> None:
    """As the real server: applying stops at a proxy that fails to start; earlier ones stay."""
    client = ToxiproxyClient(clean)
    up = f"127.0.0.1:{free_port()}"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        r = httpx.post(
            clean + "/populate",
            json=[
                {"name": "q1", "listen": "127.0.0.1:0", "upstream": up},
                {"name": "q2", "listen": taken, "upstream": up},
                {"name": "q3", "listen": "127.0.0.1:0", "upstream": up},
            ],
            timeout=5,
        )
    body = r.json()
    assert r.status_code == 500 and list(body) == ["error", "status", "proxies"]
    assert body["error"] == f"listen tcp {taken}: bind: address already in use"
    assert body["status"] == 500
    assert [p["name"] for p in body["proxies"]] == ["q1"]
    assert sorted(client.proxies()) == ["q1"]


def test_populate_that_fails_to_replace_a_proxy_leaves_the_old_one_stopped(clean: str) -> None:
    """The real AddOrReplace stops the old proxy before binding the new one, and keeps it."""
    client = ToxiproxyClient(clean)
    up = f"127.0.0.1:{free_port()}"
    old = client.create_proxy("r1", "127.0.0.1:0", up)
    client.add_toxic("r1", "latency", {"latency": 5})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        r = httpx.post(
            clean + "/populate", json=[{"name": "r1", "listen": taken, "upstream": up}], timeout=5
        )
    assert r.status_code == 500
    assert r.json() == {
        "error": f"listen tcp {taken}: bind: address already in use",
        "status": 500,
        "proxies": None,  # nothing applied: Go marshals the empty slice as null
    }
    kept = client.get_proxy("r1")
    assert kept["listen"] == old["listen"] and kept["enabled"] is False
    assert [t["name"] for t in kept["toxics"]] == ["latency_downstream"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(old["listen"].rsplit(":", 1)[1])), timeout=2)


def test_populate_answers_like_the_real_one_when_nothing_is_applied(clean: str) -> None:
    empty = httpx.post(clean + "/populate", json=[], timeout=5)
    assert (empty.status_code, empty.json()) == (201, {"proxies": None})
    bad = httpx.post(clean + "/populate", json=[{"upstream": "127.0.0.1:1"}], timeout=5)
    assert (bad.status_code, bad.json()) == (
        400,
        {"error": "missing required field: name at proxy 1", "status": 400, "proxies": None},
    )


def test_populate_applies_a_repeated_name_twice_the_later_one_wins(clean: str) -> None:
    client = ToxiproxyClient(clean)
    up1, up2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    r = httpx.post(
        clean + "/populate",
        json=[{"name": "d", "upstream": up1}, {"name": "d", "upstream": up2}],
        timeout=5,
    )
    assert r.status_code == 201
    assert [(p["upstream"], p["enabled"]) for p in r.json()["proxies"]] == [
        (up1, False),  # the first one, stopped by its replacement
        (up2, True),
    ]
    assert client.get_proxy("d")["upstream"] == up2


def test_bodies_are_read_as_go_json_decoder_reads_them(clean: str) -> None:
    """Found by the fuzzing campaign: empty bodies, null, trailing data, stream spelling."""
    client = ToxiproxyClient(clean)
    up = f"127.0.0.1:{free_port()}"
    client.create_proxy("b", "127.0.0.1:0", up)

    def post(path: str, content: bytes) -> httpx.Response:
        return httpx.post(clean + path, content=content, timeout=5)

    for path in ("/proxies", "/populate", "/proxies/b", "/proxies/b/toxics"):
        for empty in (b"", b" \r\n\t"):
            r = post(path, empty)
            assert (r.status_code, r.json()["error"]) == (400, "bad request body: EOF"), path
    assert post("/proxies/b", b"\x0c").status_code == 400  # not JSON whitespace
    assert (post("/populate", b"null").status_code, post("/populate", b"null").json()) == (
        201,
        {"proxies": None},
    )
    assert post("/proxies/b", b"null").json()["name"] == "b"  # null changes nothing
    assert post("/proxies/b/toxics", b"null").json()["error"] == "invalid toxic type"
    r = post("/proxies/b/toxics", b'{"type": "noop", "name": "t"} trailing')
    assert r.status_code == 200 and r.json()["name"] == "t"  # only the first value is read
    r = httpx.post(clean + "/proxies/b/toxics", json={"type": "noop", "stream": ""}, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("stream was invalid")
    r = httpx.post(clean + "/proxies/b/toxics", json={"type": "noop", "stream": "UpStream"})
    assert r.status_code == 200 and r.json()["stream"] == "upstream"  # case-insensitive


def test_every_answer_carries_a_request_id_in_the_real_format(clean: str) -> None:
    """An xid per answer, as zerolog's hlog writes it: 20 base32hex chars, time first."""
    t0 = int(time.time())
    answers = [
        httpx.get(clean + "/version", timeout=5),
        httpx.get(clean + "/proxies/nope", timeout=5),  # 404
        httpx.get(clean + "/nowhere", timeout=5),  # no route
        httpx.get(clean + "/version", headers={"User-Agent": "Mozilla/5.0"}, timeout=5),  # 403
        httpx.post(clean + "/proxies", content=b"{", timeout=5),  # 400
    ]
    ids = [a.headers.get("X-Toxiproxy-Request-Id", "") for a in answers]
    assert [a.status_code for a in answers] == [200, 404, 404, 403, 400]
    assert answers[2].text == "404 page not found\n"  # gorilla/mux's answer for no route
    wrong_method = httpx.put(clean + "/proxies", timeout=5)
    assert (wrong_method.status_code, wrong_method.text) == (405, "")
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-v]{20}", i) for i in ids), ids
    assert all(t0 - 1 <= xid_time(i) <= time.time() + 1 for i in ids), ids
    assert len({i[7:14] for i in ids}) == 1  # bits 35-69: machine and process id


def test_listen_and_upstream_changes_restart(clean: str) -> None:
    client = ToxiproxyClient(clean)
    up = f"127.0.0.1:{free_port()}"
    created = client.create_proxy("m", "127.0.0.1:0", up)
    port = free_port()
    moved = client.update_proxy("m", listen=f"127.0.0.1:{port}")
    assert moved["listen"] == f"127.0.0.1:{port}" and moved["enabled"] is True
    assert created["listen"] != moved["listen"]
    with pytest.raises(ProxyError, match="409 proxy already exists"):
        client.create_proxy("m", "127.0.0.1:0", up)
    with pytest.raises(ProxyError, match="404 proxy not found"):
        client.get_proxy("zzz")
    with pytest.raises(ProxyError, match="failed"):
        ToxiproxyClient(f"http://127.0.0.1:{free_port()}", timeout=1.0).version()


def test_config_file_populates_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "proxies.json"
    up = f"127.0.0.1:{free_port()}"
    cfg.write_text(json.dumps([{"name": "fs", "listen": "127.0.0.1:0", "upstream": up}]))
    with running_fault_proxy(config=cfg) as url:
        proxies = ToxiproxyClient(url).proxies()
        assert list(proxies) == ["fs"] and proxies["fs"]["upstream"] == up


def test_handler_timeout_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from chaos_rec.toxiproxy import api as api_mod
    from chaos_rec.toxiproxy.allowlist import Allowlist
    from chaos_rec.toxiproxy.collection import ProxyCollection

    monkeypatch.setattr(api_mod, "HANDLER_TIMEOUT", 0.05)
    coll = ProxyCollection(Allowlist.build())

    async def slow_reset() -> None:
        await asyncio.sleep(1)

    monkeypatch.setattr(coll, "reset", slow_reset)

    async def scenario() -> tuple[int, int]:
        async with TestClient(TestServer(api_mod.build_app(coll))) as http:
            slow = await http.post("/reset")
            fast = await http.get("/version")
            return slow.status, fast.status

    assert asyncio.run(scenario()) == (503, 200)
