"""One proxied TCP connection: two sockets, two directions, a fast path and a toxic pipeline.

With no toxic acting on a direction, bytes go straight from one transport to the other
inside ``data_received`` (backpressure: the writer's pause_writing pauses the reader).
When a toxic acts on it, chunks queue up and one task per direction runs them through
the toxic stages; when the last toxic is gone and the queue is drained, the direction
returns to the fast path.

Each direction ends on its own, as in the real Toxiproxy's links: once its end of stream has
gone through its toxics, it closes its destination socket; the other direction, whose source
that socket was, then ends too, pushing its own end of stream through its own toxics (so a
``slow_close`` delays the close toward the client also when the client hung up first). The
connection is done when both directions have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from chaos_rec.toxiproxy.interfaces import ConnectionOwner
from chaos_rec.toxiproxy.model import ToxicSpec
from chaos_rec.toxiproxy.toxics import Chunk, Stage, make_stage

__all__ = ["Connection", "Pipe", "Side"]

log = logging.getLogger("chaos_rec.toxiproxy")

_HIGH_WATER = 256 * 1024
_LOW_WATER = 64 * 1024


class Side(asyncio.Protocol):
    """One socket of a proxied connection (the client's or the upstream's)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader: Pipe | None = None  # the pipe reading from this socket
        self.writer: Pipe | None = None  # the pipe writing to this socket
        self.on_made: Callable[[Side], None] | None = None
        self.on_lost: Callable[[Side], None] | None = None
        self.lost = False
        self.early: list[bytes | None] = []  # read before the connection was joined

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.feed(data)
        else:  # some loops (uvloop) deliver data despite pause_reading in connection_made
            self.early.append(data)

    def eof_received(self) -> bool:
        if self.reader is not None:
            self.reader.feed(None)
        else:
            self.early.append(None)
        return True  # keep the transport; the pipe closes it once the EOF went through

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        if self.writer is not None:
            self.writer.set_dst_paused(True)

    def resume_writing(self) -> None:
        if self.writer is not None:
            self.writer.set_dst_paused(False)


class Pipe:
    """One direction of a connection (``upstream`` = client→server, ``downstream`` = back)."""

    def __init__(self, conn: Connection, direction: str, src: Side, dst: Side) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.stages: list[Stage] = []
        self.queue: deque[Chunk] = deque()
        self.qbytes = 0
        self.task: asyncio.Task[None] | None = None
        self.bytes = 0
        self.ended = False  # its end of stream went through: the destination is closed
        self._paused_by_dst = False
        self._paused_by_queue = False
        self._drain: asyncio.Future[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        src.reader = self
        dst.writer = self

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: bytes | None) -> None:
        """Bytes (or None = EOF) read from the source socket."""
        if self.ended:
            return
        if self.task is None and not self.stages:
            if data is None or self.conn.closed:
                self.finish()
                return
            dst = self.dst.transport
            if dst is not None:
                dst.write(data)
                self.bytes += len(data)
            return
        self.queue.append(Chunk(data, time.monotonic()))
        if data is not None:
            self.qbytes += len(data)
            if self.qbytes > _HIGH_WATER and not self._paused_by_queue:
                self._paused_by_queue = True
                self._update_reading()
        self._ensure_task()
        self._poke()

    # -- backpressure --------------------------------------------------------------------------

    def set_dst_paused(self, paused: bool) -> None:
        """The destination's write buffer went over (or back under) its limit."""
        self._paused_by_dst = paused
        if not paused and self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.src.transport
        if transport is None or transport.is_closing():
            return
        if self._paused_by_dst or self._paused_by_queue:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- toxics --------------------------------------------------------------------------------

    def add_toxic(self, spec: ToxicSpec) -> None:
        """Run a newly added toxic on this live direction (if the toxicity draw says so)."""
        if not spec.draw():
            return
        stage = make_stage(spec, self)
        self.stages.append(stage)
        stage.attach()
        self._ensure_task()

    def remove_toxic(self, spec: ToxicSpec) -> None:
        """Stop a removed toxic here: what it delayed goes on (a timeout closes the connection)."""
        for stage in [s for s in self.stages if s.spec is spec]:
            self.stages.remove(stage)
            stage.detach()
        self._poke()

    def update_toxic(self, spec: ToxicSpec) -> None:
        """Re-draw the toxicity and restart the toxic with its new attributes."""
        current = next((s for s in self.stages if s.spec is spec), None)
        active = spec.draw()
        if current is not None and active:
            current.updated()
            return
        if current is not None:
            self.remove_toxic(spec)
            return
        if active:
            stage = make_stage(spec, self)
            index = self.conn.proxy.toxic_index(spec, self.direction)
            before = [
                s
                for s in self.stages
                if self.conn.proxy.toxic_index(s.spec, self.direction) < index
            ]
            self.stages.insert(len(before), stage)
            stage.attach()
            self._ensure_task()

    def start_stages(self, specs: list[ToxicSpec]) -> None:
        """Draw and start the toxics a new connection begins with."""
        for spec in specs:
            if spec.draw():
                stage = make_stage(spec, self)
                self.stages.append(stage)
                stage.attach()
        if self.stages:
            self._ensure_task()

    # -- the toxic pipeline ---------------------------------------------------------------------

    def _ensure_task(self) -> None:
        if self.task is None and not self.conn.closed:
            self.task = asyncio.get_running_loop().create_task(self._run())

    def _poke(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.conn.closed:
                if not self.queue:
                    if not self.stages:
                        return  # back to the fast path
                    self._wake = loop.create_future()
                    await self._wake
                    continue
                chunk = self.queue.popleft()
                if chunk.data is not None:
                    self.qbytes -= len(chunk.data)
                    if self._paused_by_queue and self.qbytes < _LOW_WATER:
                        self._paused_by_queue = False
                        self._update_reading()
                await self._through(list(self.stages), 0, chunk)
                if chunk.data is None:
                    self.task = None
                    self.finish()
                    return
        except Exception:  # a bug must not leave the connection hanging
            log.exception("toxic pipeline failed on proxy %s", self.conn.proxy.name)
            self.conn.close()
        finally:
            self.task = None
            self._wake = None

    async def _through(self, chain: list[Stage], i: int, chunk: Chunk) -> None:
        while i < len(chain) and chain[i].removed:
            i += 1
        if i >= len(chain):
            await self._emit(chunk)
            return
        nxt = i + 1
        await chain[i].handle(chunk, lambda c: self._through(chain, nxt, c))

    async def _emit(self, chunk: Chunk) -> None:
        if chunk.data is None or self.conn.closed:
            return
        transport = self.dst.transport
        if transport is None or transport.is_closing():
            return
        transport.write(chunk.data)
        self.bytes += len(chunk.data)
        if self._paused_by_dst:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def finish(self) -> None:
        """The end of stream went through: close the destination; done once both have ended."""
        self.ended = True
        self.queue.clear()
        transport = self.dst.transport
        if transport is not None and not transport.is_closing():
            transport.close()  # flushes what it buffered; the other direction's source ends
        if self.conn.other(self).ended:
            self.conn.close()

    def stop(self) -> None:
        """Cancel the pipeline task and detach every stage."""
        for stage in self.stages:
            stage.detach()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()
        if self._drain is not None and not self._drain.done():
            self._drain.cancel()


class Connection:
    """A client socket joined to an upstream socket through the proxy."""

    def __init__(self, proxy: ConnectionOwner[Connection], client: Side, upstream: Side) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.up = Pipe(self, "upstream", client, upstream)
        self.down = Pipe(self, "downstream", upstream, client)
        client.on_lost = self._side_lost
        upstream.on_lost = self._side_lost

    def flush_early(self) -> None:
        """Feed what either socket delivered before the connection was joined."""
        for side in (self.client, self.upstream):
            early, side.early = side.early, []
            for data in early:
                if side.reader is not None and not self.closed:
                    side.reader.feed(data)

    def pipes(self) -> tuple[Pipe, Pipe]:
        """Both directions."""
        return self.up, self.down

    def pipe(self, stream: str) -> Pipe:
        """The direction named by a toxic's ``stream``."""
        return self.up if stream == "upstream" else self.down

    def other(self, pipe: Pipe) -> Pipe:
        """The opposite direction."""
        return self.down if pipe is self.up else self.up

    def _side_lost(self, side: Side) -> None:
        """A socket is gone: the direction reading from it ends (through its toxics)."""
        if self.closed:
            return
        reader = side.reader
        if reader is not None and not reader.ended:
            reader.feed(None)
        elif reader is None or self.other(reader).ended:
            self.close()

    def close(self) -> None:
        """Close both sockets (flushing what they already buffered), stop the pipelines."""
        if self.closed:
            return
        self.closed = True
        for pipe in self.pipes():
            pipe.stop()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.close()
        self.proxy.connection_closed(self)

    def reset(self) -> None:
        """Abort both sockets with a TCP RST (SO_LINGER 0), dropping buffered data."""
        for side in (self.client, self.upstream):
            sock = side.transport.get_extra_info("socket") if side.transport else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        was_closed = self.closed
        self.closed = True
        for pipe in self.pipes():
            pipe.stop()
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()
        if not was_closed:
            self.proxy.connection_closed(self)
