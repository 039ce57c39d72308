"""Per-connection toxic stages: what each toxic type does to the chunks of one direction."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from chaos_rec.toxiproxy.interfaces import StagePipe
from chaos_rec.toxiproxy.model import ToxicSpec

__all__ = ["Chunk", "Emit", "Stage", "make_stage", "slice_offsets"]


class Chunk:
    """A piece of the byte stream (``data`` None = end of stream) and when it arrived."""

    __slots__ = ("data", "ts")

    def __init__(self, data: bytes | None, ts: float) -> None:
        self.data = data
        self.ts = ts


Emit = Callable[[Chunk], Awaitable[None]]


class Stage:
    """One toxic running on one direction of one connection (base class = noop)."""

    def __init__(self, spec: ToxicSpec, pipe: StagePipe, rng: random.Random) -> None:
        self.spec = spec
        self.pipe = pipe
        self.rng = rng
        self.removed = False
        self._sleepers: set[asyncio.Future[bool]] = set()

    # -- lifecycle (called by the pipe) --------------------------------------------------------

    def attach(self) -> None:
        """The stage starts running on a live connection."""

    def detach(self) -> None:
        """The toxic was removed: stop holding anything back."""
        self.removed = True
        self.interrupt()

    def updated(self) -> None:
        """The toxic's attributes changed: waits end early, as the real server re-runs a toxic."""
        self.interrupt()

    def interrupt(self) -> None:
        """Wake every sleep of this stage (they report False)."""
        for fut in list(self._sleepers):
            if not fut.done():
                fut.set_result(False)

    async def sleep(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None = until interrupted); True when the time elapsed."""
        if seconds is not None and seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        handle = None
        if seconds is not None:
            handle = loop.call_later(seconds, _resolve, fut)
        self._sleepers.add(fut)
        try:
            return await fut
        finally:
            self._sleepers.discard(fut)
            if handle is not None:
                handle.cancel()

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        """Pass the chunk on, changed or not (noop passes it unchanged)."""
        await emit(chunk)

    def attr(self, key: str) -> int:
        """Current value of one attribute (updates apply to live connections)."""
        return self.spec.attributes.get(key, 0)


def _resolve(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)


class Latency(Stage):
    """Delay each chunk by latency ± jitter ms, counted from its timestamp.

    As the real toxic does, a delayed chunk's timestamp moves on by the time it waited, so
    latency toxics stacked on one direction add up. An interrupted wait sends it unchanged.
    """

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        delay = self.attr("latency")
        jitter = self.attr("jitter")
        if jitter > 0:
            delay += self.rng.randrange(2 * jitter) - jitter
        wait = chunk.ts + delay / 1000.0 - time.monotonic()
        if self.removed or not await self.sleep(wait):
            await emit(chunk)
            return
        await emit(Chunk(chunk.data, chunk.ts + wait))


class Bandwidth(Stage):
    """Cap throughput at ``rate`` KB/s (1 KB = 1000 bytes), sending in 100 ms slices."""

    def __init__(self, spec: ToxicSpec, pipe: StagePipe, rng: random.Random) -> None:
        super().__init__(spec, pipe, rng)
        self._next = 0.0

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        data = chunk.data
        rate = self.attr("rate")
        if data is None or rate <= 0 or self.removed:
            await emit(chunk)
            return
        piece = max(rate * 100, 1)
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            part = bytes(view[pos : pos + piece])
            pos += len(part)
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + len(part) / (rate * 1000.0)
            if not self.removed and not await self.sleep(self._next - now):
                self._next = time.monotonic()
                await emit(Chunk(part + bytes(view[pos:]), chunk.ts))
                return
            await emit(Chunk(part, chunk.ts))


class SlowClose(Stage):
    """Hold the close of the stream for ``delay`` ms.

    The wait starts when the end reaches this toxic, as the real one's timer does. An update
    restarts it with the new delay (still counted from then); a removal lets the close through
    at once. (The real toxic loses the close in both cases and the connection hangs.)
    """

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        reached = time.monotonic()
        while chunk.data is None and not self.removed:
            wait = reached + self.attr("delay") / 1000.0 - time.monotonic()
            if wait <= 0 or await self.sleep(wait):
                break
        await emit(chunk)


class Timeout(Stage):
    """Drop all data; close the connection ``timeout`` ms after the last data (0 = never).

    As the real toxic's Cleanup does, removing it closes the connections it held (what it
    dropped is gone); clients reconnect.
    """

    def __init__(self, spec: ToxicSpec, pipe: StagePipe, rng: random.Random) -> None:
        super().__init__(spec, pipe, rng)
        self._timer: asyncio.TimerHandle | None = None

    def attach(self) -> None:
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ms = self.attr("timeout")
        if ms > 0 and not self.removed:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(ms / 1000.0, self.pipe.conn.close)

    def detach(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        was_removed, self.removed = self.removed, True
        super().detach()
        if not was_removed:
            self.pipe.conn.close()

    def updated(self) -> None:
        self._arm()
        super().updated()

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        if chunk.data is None:
            await emit(chunk)  # the end of stream closes the connection at once
            return
        # data is dropped on the ground, and the wait starts again (the real toxic makes a new
        # timer each time round its loop): the connection closes ``timeout`` ms after the last
        # chunk, or after the toxic began when none came
        self._arm()


class ResetPeer(Stage):
    """On the first chunk, wait ``timeout`` ms, then reset the connection (TCP RST)."""

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        if self.removed:
            await emit(chunk)
            return
        await self.sleep(self.attr("timeout") / 1000.0)
        if self.removed:
            await emit(chunk)
            return
        self.pipe.conn.reset()


def slice_offsets(
    size: int, average: int, variation: int, rng: random.Random
) -> list[tuple[int, int]]:
    """The real ``SlicerToxic.chunk``: halve (± variation) until a piece is ≤ average+variation.

    Pieces come left to right and the RNG is drawn in the real recursion's order. Where the real
    one breaks, this does not: it recurses forever (a crash) on average 0 with variation 0, so a
    1-byte piece is never split; a variation beyond half a piece makes it slice out of range (a
    panic), so the split point stays inside the piece.
    """
    pieces: list[tuple[int, int]] = []
    todo = [(0, size)]
    while todo:
        start, end = todo.pop()
        if (end - start) - average <= variation or end - start <= 1:
            pieces.append((start, end))
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(variation * 2) - variation
        mid = min(max(mid, start + 1), end - 1)
        todo += [(mid, end), (start, mid)]
    return pieces


class Slicer(Stage):
    """Slice data as the real toxic does, waiting ``delay`` µs after each piece.

    An update or a removal during a wait sends the rest of the chunk at once, as there.
    """

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        data = chunk.data
        if data is None or self.removed:
            await emit(chunk)
            return
        average, variation = self.attr("average_size"), self.attr("size_variation")
        for start, end in slice_offsets(len(data), average, variation, self.rng):
            await emit(Chunk(data[start:end], chunk.ts))
            if not await self.sleep(self.attr("delay") / 1_000_000.0) or self.removed:
                if end < len(data):
                    await emit(Chunk(data[end:], chunk.ts))
                return


class LimitData(Stage):
    """Close the connection once ``bytes`` bytes have passed in this direction."""

    def __init__(self, spec: ToxicSpec, pipe: StagePipe, rng: random.Random) -> None:
        super().__init__(spec, pipe, rng)
        self.sent = 0

    async def handle(self, chunk: Chunk, emit: Emit) -> None:
        data = chunk.data
        if data is None or self.removed:
            await emit(chunk)
            return
        remaining = max(self.attr("bytes") - self.sent, 0)
        if remaining < len(data):
            data = data[:remaining]
        if data:
            self.sent += len(data)
            await emit(Chunk(data, chunk.ts))
        if self.attr("bytes") - self.sent <= 0:
            self.pipe.conn.close()


_STAGES: dict[str, type[Stage]] = {
    "latency": Latency,
    "bandwidth": Bandwidth,
    "slow_close": SlowClose,
    "timeout": Timeout,
    "reset_peer": ResetPeer,
    "slicer": Slicer,
    "limit_data": LimitData,
    "noop": Stage,
}


def make_stage(spec: ToxicSpec, pipe: StagePipe) -> Stage:
    """A fresh per-connection stage for ``spec``, with its own RNG drawn from the toxic's."""
    rng = random.Random(spec.rng.getrandbits(64))
    return _STAGES[spec.type](spec, pipe, rng)
