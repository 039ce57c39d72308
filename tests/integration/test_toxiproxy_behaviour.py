"""Toxic behaviour through real sockets and a real Redis: each toxic does what it says."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chaos_rec.toxiproxy.client import ToxiproxyClient
from chaos_rec.toxiproxy.testing import running_fault_proxy
from tests.support.sockets import (
    addr,
    byte_source,
    open_connections,
    redis_proxy,
    redis_via,
    rtt_ms,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def api(request: pytest.FixtureRequest) -> Iterator[str]:
    """The fault proxy on each event loop it supports."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    with running_fault_proxy(seed=5, extra_args=("--loop", request.param)) as url:
        yield url


@pytest.fixture
def client(api: str) -> Iterator[ToxiproxyClient]:
    c = ToxiproxyClient(api)
    yield c
    for name in c.proxies():
        c.delete_proxy(name)


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    with byte_source() as listen:
        yield listen


def test_latency_toxic_measured(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    r = redis_via(listen)
    r.set("k", "v")
    base = rtt_ms(r)
    client.add_toxic("fs", "latency", {"latency": 80})
    assert 80 <= rtt_ms(r) - base + 0.5 <= 86
    client.add_toxic("fs", "latency", {"latency": 40}, stream="upstream")
    assert 120 <= rtt_ms(r) - base + 0.5 <= 128
    client.remove_toxic("fs", "latency_downstream")
    client.remove_toxic("fs", "latency_upstream")
    assert rtt_ms(r) < 20


def test_latency_toxics_stacked_on_one_direction_add_up(
    client: ToxiproxyClient, redis_url: str
) -> None:
    """The real toxic moves a chunk's timestamp on by its wait: 80 + 60 ms, not max(80, 60)."""
    listen = redis_proxy(client, redis_url)
    r = redis_via(listen)
    r.set("k", "v")
    base = rtt_ms(r)
    client.add_toxic("fs", "latency", {"latency": 80}, name="first")
    client.add_toxic("fs", "latency", {"latency": 60}, name="second")
    assert 135 <= rtt_ms(r) - base <= 200  # before: ~80 (the later toxic waited for nothing)


def test_bandwidth_toxic_caps_throughput(client: ToxiproxyClient, source: str) -> None:
    listen = client.create_proxy("bw", "127.0.0.1:0", source)["listen"]
    client.add_toxic("bw", "bandwidth", {"rate": 200})  # 200 KB/s
    with socket.create_connection(addr(listen), timeout=5) as s:
        s.sendall(b"120000\n")
        got, t0 = 0, time.perf_counter()
        while got < 120000:
            chunk = s.recv(65536)
            assert chunk
            got += len(chunk)
        rate_kb_s = got / 1000 / (time.perf_counter() - t0)
    assert 150 <= rate_kb_s <= 215


def test_timeout_zero_drops_and_its_removal_closes_what_it_held(
    client: ToxiproxyClient, redis_url: str
) -> None:
    listen = redis_proxy(client, redis_url)
    with socket.create_connection(addr(listen), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        client.add_toxic("fs", "timeout", {"timeout": 0})
        s.settimeout(0.6)
        s.sendall(b"PING\r\n")
        with pytest.raises(TimeoutError):
            s.recv(100)  # the black hole hangs the client
        t0 = time.perf_counter()
        client.remove_toxic("fs", "timeout_downstream")
        s.settimeout(2)
        assert s.recv(100) == b""  # closed, as the real Cleanup does: the dropped reply is gone
        assert time.perf_counter() - t0 < 1.0
    r = redis_via(listen)  # a new connection works again
    assert r.ping()


def test_timeout_closes_after_delay(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    client.add_toxic("fs", "timeout", {"timeout": 200})
    with socket.create_connection(addr(listen), timeout=3) as s:
        t0 = time.perf_counter()
        s.sendall(b"PING\r\n")
        data = s.recv(100)
        elapsed = time.perf_counter() - t0
    assert data == b""  # closed, nothing delivered
    assert 0.18 <= elapsed <= 1.0


def test_timeout_closes_only_after_the_data_stops(client: ToxiproxyClient, source: str) -> None:
    """The real toxic restarts its wait with each chunk it drops: steady data keeps it open."""
    listen = client.create_proxy("tw", "127.0.0.1:0", source)["listen"]
    client.add_toxic("tw", "timeout", {"timeout": 800})
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"1\n")  # the source answers each line: echoes to be dropped
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.6:  # twice the timeout
            s.sendall(b"ping\n")
            time.sleep(0.1)
        s.settimeout(0.05)
        with pytest.raises(TimeoutError):
            s.recv(100)  # still open, nothing delivered
        t_last = time.perf_counter()
        s.settimeout(3)
        assert s.recv(100) == b""
        waited = time.perf_counter() - t_last
    assert 0.6 <= waited <= 2.0


def test_slicer_pieces_are_the_real_halvings(client: ToxiproxyClient, source: str) -> None:
    listen = client.create_proxy("sh", "127.0.0.1:0", source)["listen"]
    client.add_toxic("sh", "slicer", {"average_size": 10, "size_variation": 0, "delay": 100_000})
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"24\n")
        sizes: list[int] = []
        while sum(sizes) < 24:
            chunk = s.recv(100)
            assert chunk
            sizes.append(len(chunk))
    assert sizes == [6, 6, 6, 6]  # 24 → 12 | 12 → 6 6 | 6 6, not 10 10 4


def test_reset_peer_resets(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    client.add_toxic("fs", "reset_peer", {"timeout": 0}, stream="upstream")
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"PING\r\n")
        with pytest.raises(ConnectionResetError):
            s.recv(100)
            s.recv(100)


def test_limit_data_cuts_at_byte_count(client: ToxiproxyClient, source: str) -> None:
    listen = client.create_proxy("lim", "127.0.0.1:0", source)["listen"]
    client.add_toxic("lim", "limit_data", {"bytes": 1000})
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"5000\n")
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert len(got) == 1000


def test_slicer_and_slow_close(client: ToxiproxyClient, source: str) -> None:
    listen = client.create_proxy("sl", "127.0.0.1:0", source)["listen"]
    client.add_toxic("sl", "slicer", {"average_size": 100, "size_variation": 50, "delay": 2000})
    client.add_toxic("sl", "slow_close", {"delay": 300})
    with socket.create_connection(addr(listen), timeout=3) as s:
        t0 = time.perf_counter()
        s.sendall(b"5000 close\n")
        got, reads = b"", 0
        while len(got) < 5000:
            chunk = s.recv(65536)
            assert chunk
            got += chunk
            reads += 1
        t_data = time.perf_counter()
        assert s.recv(10) == b""
        t_close = time.perf_counter()
    assert got == b"x" * 5000
    assert t_data - t0 >= 0.05  # ~50 slices, 2 ms apart
    assert reads > 5
    assert t_close - t_data >= 0.25


def test_slow_close_delays_the_close_also_when_the_client_hangs_up_first(
    client: ToxiproxyClient, redis_url: str
) -> None:
    listen = redis_proxy(client, redis_url)
    client.add_toxic("fs", "slow_close", {"delay": 400})
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        t0 = time.perf_counter()
        s.shutdown(socket.SHUT_WR)  # the client is done: upstream ends, Redis closes
        assert s.recv(10) == b""
        waited = time.perf_counter() - t0
    assert 0.35 <= waited <= 1.5  # the close toward the client waited for the delay


def test_upstream_slow_close_holds_the_close_toward_the_server(client: ToxiproxyClient) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        up = f"127.0.0.1:{server.getsockname()[1]}"
        listen = client.create_proxy("su", "127.0.0.1:0", up)["listen"]
        client.add_toxic("su", "slow_close", {"delay": 400}, stream="upstream")
        with socket.create_connection(addr(listen), timeout=3) as s:
            s.sendall(b"hello")
            conn, _ = server.accept()
        t0 = time.perf_counter()  # the client is gone
        with conn:
            conn.settimeout(3)
            assert conn.recv(100) == b"hello"
            assert conn.recv(100) == b""
        waited = time.perf_counter() - t0
    assert 0.35 <= waited <= 1.5


def test_slow_close_updated_during_its_wait_waits_the_new_delay(
    client: ToxiproxyClient, source: str
) -> None:
    listen = client.create_proxy("sw", "127.0.0.1:0", source)["listen"]
    client.add_toxic("sw", "slow_close", {"delay": 5000})
    with socket.create_connection(addr(listen), timeout=8) as s:
        s.sendall(b"3 close\n")  # the source sends 3 bytes and closes
        assert s.recv(100) == b"xxx"
        t_end = time.perf_counter()
        time.sleep(0.2)
        client.update_toxic("sw", "slow_close_downstream", attributes={"delay": 1000})
        assert s.recv(10) == b""
        waited = time.perf_counter() - t_end
    assert 0.9 <= waited <= 2.5  # the new delay, from when the end arrived; not at once


def test_without_a_toxic_a_client_hang_up_closes_at_once(
    client: ToxiproxyClient, redis_url: str
) -> None:
    listen = redis_proxy(client, redis_url)
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        t0 = time.perf_counter()
        s.shutdown(socket.SHUT_WR)
        assert s.recv(10) == b""
    assert time.perf_counter() - t0 < 0.3
    deadline = time.monotonic() + 2
    while open_connections(client, "fs") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_connections(client, "fs") == 0  # both directions ended, nothing lingers


def test_slicer_accepts_zero_attributes(client: ToxiproxyClient, source: str) -> None:
    listen = client.create_proxy("sz", "127.0.0.1:0", source)["listen"]
    toxic = client.add_toxic("sz", "slicer", {"average_size": 0, "size_variation": 0, "delay": 0})
    assert toxic["attributes"] == {"average_size": 0, "size_variation": 0, "delay": 0}
    with socket.create_connection(addr(listen), timeout=3) as s:
        s.sendall(b"300\n")
        got = b""
        while len(got) < 300:
            chunk = s.recv(65536)
            assert chunk
            got += chunk
    assert got == b"x" * 300


def test_noop_passes(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    client.add_toxic("fs", "noop")
    r = redis_via(listen)
    assert r.set("a", "b") and r.get("a") == b"b"


def test_disable_refuses_and_enable_restores(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    redis_via(listen).set("k", "v")
    with socket.create_connection(addr(listen), timeout=2) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        client.disable("fs")
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(100) == b""  # the live connection was closed
    with pytest.raises(ConnectionRefusedError), socket.create_connection(addr(listen), timeout=2):
        pass
    client.enable("fs")
    assert redis_via(listen).get("k") == b"v"


def test_upstream_change_restarts_and_drops_connections(
    client: ToxiproxyClient, redis_url: str, source: str
) -> None:
    listen = redis_proxy(client, redis_url)
    with socket.create_connection(addr(listen), timeout=2) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        moved = client.update_proxy("fs", upstream=source)
        assert moved["listen"] == listen and moved["enabled"] is True
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(100) == b""  # the old connection was dropped
    with socket.create_connection(addr(listen), timeout=2) as s:
        s.sendall(b"3\n")
        assert s.recv(100) == b"xxx"  # new connections reach the new upstream


def test_toxicity_is_per_connection_and_seeded(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    client.add_toxic("fs", "latency", {"latency": 100}, toxicity=0.5)

    def pattern() -> list[bool]:
        hits = []
        for _ in range(12):
            with socket.create_connection(addr(listen), timeout=5) as s:
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    s.sendall(b"PING\r\n")
                    assert s.recv(100) == b"+PONG\r\n"
                    times.append(time.perf_counter() - t)
            slow = [t > 0.05 for t in times]
            assert len(set(slow)) == 1, f"toxicity must be decided per connection: {times}"
            hits.append(slow[0])
        return hits

    first = pattern()
    assert 0 < sum(first) < 12
    # the same seed, proxy and toxic name give the same sequence of decisions
    with running_fault_proxy(seed=5) as other:
        c2 = ToxiproxyClient(other)
        port = redis_url.rsplit(":", 1)[1].split("/")[0]
        listen = c2.create_proxy("fs", "127.0.0.1:0", f"127.0.0.1:{port}")["listen"]
        c2.add_toxic("fs", "latency", {"latency": 100}, toxicity=0.5)
        assert pattern() == first


def test_toxic_changes_under_traffic_never_hang(client: ToxiproxyClient, redis_url: str) -> None:
    listen = redis_proxy(client, redis_url)
    errors: list[BaseException] = []
    done = threading.Event()
    counts = [0]

    def traffic() -> None:
        r = redis_via(listen, timeout=10)
        try:
            while not done.is_set():
                r.set("k", "v" * 100)
                assert r.get("k") == b"v" * 100
                counts[0] += 1
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    for i in range(15):
        kind = ("latency", "timeout", "bandwidth", "slicer")[i % 4]
        attrs = {
            "latency": {"latency": 5},
            "timeout": {"timeout": 0},
            "bandwidth": {"rate": 50},
            "slicer": {"average_size": 3, "delay": 10},
        }[kind]
        stream = "upstream" if i % 2 else "downstream"
        t = client.add_toxic("fs", kind, attrs, stream=stream)
        time.sleep(0.05)
        client.remove_toxic("fs", t["name"])
    done.set()
    for w in workers:
        w.join(timeout=10)
        assert not w.is_alive(), "traffic hung after toxics were removed"
    assert not errors
    assert counts[0] > 10
    with contextlib.suppress(Exception):
        client.reset()
