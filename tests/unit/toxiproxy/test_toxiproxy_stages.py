"""Toxic stages on a fake connection: pure asyncio, no sockets."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from typing import Any

from chaos_rec.toxiproxy.model import parse_toxic
from chaos_rec.toxiproxy.toxics import Chunk, Stage, make_stage, slice_offsets


class FakeConn:
    def __init__(self) -> None:
        self.closed = False
        self.was_reset = False

    def close(self) -> None:
        self.closed = True

    def reset(self) -> None:
        self.closed = self.was_reset = True


class FakePipe:
    def __init__(self) -> None:
        self.conn = FakeConn()


def _stage(body: dict[str, Any], seed: int | None = 1) -> tuple[Stage, FakePipe]:
    pipe = FakePipe()
    spec = parse_toxic(body, seed=seed, proxy="p")
    return make_stage(spec, pipe), pipe  # type: ignore[arg-type]


async def _run(stage: Stage, chunks: list[bytes | None]) -> list[bytes | None]:
    out: list[bytes | None] = []

    async def emit(c: Chunk) -> None:
        out.append(c.data)

    for data in chunks:
        await stage.handle(Chunk(data, time.monotonic()), emit)
    return out


def test_limit_data_truncates_then_closes() -> None:
    stage, pipe = _stage({"type": "limit_data", "attributes": {"bytes": 10}})
    out = asyncio.run(_run(stage, [b"abcdef", b"ghijklmn", b"zz"]))
    assert b"".join(x for x in out if x) == b"abcdefghij"
    assert pipe.conn.closed


def test_slicer_splits_with_seeded_sizes() -> None:
    body = {"type": "slicer", "attributes": {"average_size": 10, "size_variation": 4}}

    def sizes(seed: int) -> list[int]:
        stage, _ = _stage(body, seed)
        out = asyncio.run(_run(stage, [b"x" * 200]))
        assert b"".join(x for x in out if x) == b"x" * 200
        return [len(x) for x in out if x]

    a = sizes(9)
    assert all(1 <= n <= 14 for n in a) and len(a) > 10  # halved until ≤ average + variation
    assert a == sizes(9)
    assert a != sizes(10)


def test_slicer_halves_like_the_real_chunk_function() -> None:
    # the real chunk(0, 100) with average 10, variation 0: 100 → 50 → 25 → 12 | 13 → 6 6 | 6 7
    sizes = [b - a for a, b in slice_offsets(100, 10, 0, random.Random(0))]
    assert sizes == [6, 6, 6, 7] * 4
    assert slice_offsets(10, 10, 0, random.Random(0)) == [(0, 10)]  # already small enough
    assert [b - a for a, b in slice_offsets(5, 0, 0, random.Random(0))] == [1] * 5  # real: crash


def test_slicer_split_points_stay_inside_the_piece() -> None:
    rng = random.Random(3)
    for size in range(1, 200):
        pieces = slice_offsets(size, 2, 40, rng)  # variation > half a piece: the real panics
        assert pieces[0][0] == 0 and pieces[-1][1] == size
        assert all(a < b for a, b in pieces)
        assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))


def test_slicer_waits_after_every_piece_and_an_update_sends_the_rest() -> None:
    async def scenario() -> tuple[list[bytes | None], float, list[bytes | None]]:
        body = {"type": "slicer", "attributes": {"average_size": 10, "delay": 20_000}}
        stage, _ = _stage(body)
        t = time.monotonic()
        whole = await _run(stage, [b"x" * 20])  # 10 + 10, a 20 ms wait after each
        elapsed = time.monotonic() - t
        task = asyncio.create_task(_run(stage, [b"y" * 40]))
        await asyncio.sleep(0.005)
        stage.updated()  # interrupts the wait after the first piece
        return whole, elapsed, await asyncio.wait_for(task, 1)

    whole, elapsed, interrupted = asyncio.run(scenario())
    assert whole == [b"x" * 10, b"x" * 10] and elapsed >= 0.039
    assert interrupted == [b"y" * 10, b"y" * 30]


def test_timeout_waits_again_after_each_dropped_chunk() -> None:
    async def scenario() -> tuple[bool, bool]:
        stage, pipe = _stage({"type": "timeout", "attributes": {"timeout": 60}})
        stage.attach()
        for _ in range(6):  # a chunk every 20 ms for 120 ms: twice the timeout
            await asyncio.sleep(0.02)
            await _run(stage, [b"dropped"])
        open_while_data_came = not pipe.conn.closed
        await asyncio.sleep(0.12)
        return open_while_data_came, pipe.conn.closed

    assert asyncio.run(scenario()) == (True, True)


def test_slow_close_update_restarts_the_wait_and_removal_ends_it() -> None:
    async def scenario() -> tuple[float, float]:
        stage, _ = _stage({"type": "slow_close", "attributes": {"delay": 1000}})
        t = time.monotonic()
        task = asyncio.create_task(_run(stage, [None]))
        await asyncio.sleep(0.02)
        stage.spec.attributes = {"delay": 80}
        stage.updated()  # the new delay, counted from when the end reached the toxic
        assert await asyncio.wait_for(task, 1) == [None]
        updated = time.monotonic() - t
        stage, _ = _stage({"type": "slow_close", "attributes": {"delay": 1000}})
        t = time.monotonic()
        task = asyncio.create_task(_run(stage, [None]))
        await asyncio.sleep(0.02)
        stage.detach()
        assert await asyncio.wait_for(task, 1) == [None]
        return updated, time.monotonic() - t

    updated, removed = asyncio.run(scenario())
    assert 0.075 <= updated < 0.5 and removed < 0.5


def test_latency_jitter_is_seeded_per_connection() -> None:
    spec = parse_toxic(
        {"type": "latency", "attributes": {"latency": 100, "jitter": 50}}, seed=4, proxy="p"
    )
    other = parse_toxic(
        {"type": "latency", "attributes": {"latency": 100, "jitter": 50}}, seed=4, proxy="p"
    )
    a = [make_stage(spec, FakePipe()).rng.randrange(100) for _ in range(5)]  # type: ignore[arg-type]
    b = [make_stage(other, FakePipe()).rng.randrange(100) for _ in range(5)]  # type: ignore[arg-type]
    assert a == b
    assert len(set(a)) > 1  # each connection gets its own stream


def test_latency_delays_from_arrival() -> None:
    stage, _ = _stage({"type": "latency", "attributes": {"latency": 30}})
    t = time.monotonic()
    out = asyncio.run(_run(stage, [b"a"]))
    assert out == [b"a"]
    assert time.monotonic() - t >= 0.029


def test_timeout_zero_drops_data_and_its_removal_closes_the_connection() -> None:
    async def scenario() -> tuple[list[bytes | None], bool, bool]:
        stage, pipe = _stage({"type": "timeout", "attributes": {"timeout": 0}})
        stage.attach()
        out = await asyncio.wait_for(_run(stage, [b"dropped", b"gone"]), 1)
        open_before = not pipe.conn.closed  # a black hole: nothing through, nothing closed
        stage.detach()  # the real Cleanup closes the stub: the connection ends
        return out, open_before, pipe.conn.closed

    out, open_before, closed = asyncio.run(scenario())
    assert out == [] and open_before and closed


def test_timeout_passes_the_end_of_stream() -> None:
    stage, _ = _stage({"type": "timeout", "attributes": {"timeout": 0}})
    assert asyncio.run(_run(stage, [b"dropped", None])) == [None]


def test_timeout_closes_after_delay() -> None:
    async def scenario() -> bool:
        stage, pipe = _stage({"type": "timeout", "attributes": {"timeout": 20}})
        stage.attach()
        await asyncio.sleep(0.08)
        return pipe.conn.closed

    assert asyncio.run(scenario())


def test_reset_peer_resets_on_first_chunk() -> None:
    stage, pipe = _stage({"type": "reset_peer", "attributes": {"timeout": 0}})
    out = asyncio.run(_run(stage, [b"x"]))
    assert out == [] and pipe.conn.was_reset


def test_bandwidth_paces_and_keeps_bytes() -> None:
    stage, _ = _stage({"type": "bandwidth", "attributes": {"rate": 100}})  # 100 KB/s
    t = time.monotonic()
    out = asyncio.run(_run(stage, [b"y" * 25_000]))
    elapsed = time.monotonic() - t
    assert b"".join(x for x in out if x) == b"y" * 25_000
    assert all(len(x or b"") <= 10_000 for x in out)  # 100 ms slices
    assert 0.2 <= elapsed <= 0.5


def test_slow_close_delays_only_the_end() -> None:
    stage, _ = _stage({"type": "slow_close", "attributes": {"delay": 40}})
    t = time.monotonic()
    out = asyncio.run(_run(stage, [b"a", None]))
    assert out == [b"a", None] and time.monotonic() - t >= 0.039


def test_every_toxic_type_has_a_stage_and_the_actions_accept_exactly_those() -> None:
    from chaos_rec.actions.links import TOXIC_TYPES
    from chaos_rec.toxiproxy import toxics
    from chaos_rec.toxiproxy.model import TOXIC_ATTRIBUTES

    assert set(toxics._STAGES) == set(TOXIC_ATTRIBUTES)
    assert tuple(TOXIC_ATTRIBUTES) == TOXIC_TYPES
    for type_ in TOXIC_ATTRIBUTES:
        stage, _ = _stage({"type": type_, "attributes": dict.fromkeys(TOXIC_ATTRIBUTES[type_], 1)})
        assert isinstance(stage, Stage)
