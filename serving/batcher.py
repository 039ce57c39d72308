"""Dynamic batcher: bounded admission, batches of up to N within a delay, one worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from serving.errors import DeadlineExceeded, Overloaded
from serving.metrics import ServerMetrics
from serving.settings import Switches

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class _Item(Generic[J, R]):
    job: J
    deadline: float
    future: asyncio.Future[R] = field(repr=False)


class Batcher(Generic[J, R]):
    """Collect concurrent jobs into one call of `run_batch` (run in a worker thread).

    A batch takes what is queued; it waits up to `max_queue_delay_s` for more only while
    other requests are known to be on their way (`incoming()`), so a lone request never
    waits, and requests that arrive while a forward pass runs form the next batch.

    Admission is bounded: at most `capacity` requests are inside the server at once (fetching
    features, queued, or in a forward pass; see `admit`). Under overload the backlog of a CPU
    server is mostly requests waiting for the loop and their features, not the batch queue, so
    bounding the batch queue alone would never shed.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[J]], Sequence[R]],
        *,
        max_batch_size: int,
        max_queue_delay_s: float,
        capacity: int,
        switches: Switches,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_s
        self.capacity = capacity
        self.switches = switches
        self.metrics = metrics
        self._queue: asyncio.Queue[_Item[J, R]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._expected = 0
        self._admitted = 0

    def start(self) -> None:
        """Start the worker on the running loop."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cr-batch")
        self._worker = asyncio.create_task(self._run(), name="cr-batcher")

    async def stop(self) -> None:
        """Stop the worker and fail whatever is still queued."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while self._queue is not None and not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(Overloaded("server shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one admission for a request's whole stay; shed when full (switch `shedding`)."""
        if self.switches["shedding"] and self._admitted >= self.capacity:
            if self.metrics is not None:
                self.metrics.shed.inc()
            raise Overloaded(f"server full ({self.capacity} requests in progress); request shed")
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    @property
    def in_progress(self) -> int:
        """Requests admitted and not yet answered."""
        return self._admitted

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark a request as on its way (e.g. fetching features) so a batch waits for it."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1

    @property
    def depth(self) -> int:
        """Jobs waiting."""
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, job: J, deadline: float) -> R:
        """Queue a job and wait for its result (bounded by `admit`, not here)."""
        assert self._queue is not None, "Batcher.start() was not called"
        loop = asyncio.get_running_loop()
        item: _Item[J, R] = _Item(job, deadline, loop.create_future())
        item.future.add_done_callback(_retrieve)
        self._queue.put_nowait(item)
        self._gauge()
        # one timer per request (cheaper than wait_for + shield): at the deadline the job's
        # future fails, so the worker skips it if it has not started; a cancelled caller
        # cancels the future, with the same effect
        timer = loop.call_at(deadline, _expire, item.future)
        try:
            return await item.future
        finally:
            timer.cancel()

    def _gauge(self) -> None:
        if self.metrics is not None and self._queue is not None:
            self.metrics.queue_depth.set(self._queue.qsize())

    async def _run(self) -> None:
        assert self._queue is not None and self._executor is not None
        executor = self._executor
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            until = loop.time() + self.max_queue_delay_s
            while len(batch) < self.max_batch_size:
                if self._queue.empty():
                    if self._expected == 0:
                        break  # nothing else on its way: do not wait (no delay at low load)
                    left = until - loop.time()
                    if left <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), left))
                    except TimeoutError:
                        break
                else:
                    batch.append(self._queue.get_nowait())
            self._gauge()
            now = loop.time()
            live = [it for it in batch if not it.future.done() and it.deadline > now]
            for it in batch:
                if it not in live and not it.future.done():
                    it.future.set_exception(DeadlineExceeded("request deadline passed in queue"))
            if not live:
                continue
            if self.metrics is not None:
                self.metrics.batch_size.observe(len(live))
            jobs = [it.job for it in live]
            try:
                results = await loop.run_in_executor(executor, self.run_batch, jobs)
            except Exception as exc:  # a failed forward pass fails its batch, not the server
                for it in live:
                    if not it.future.done():
                        it.future.set_exception(exc)
                continue
            for it, res in zip(live, results, strict=True):
                if not it.future.done():
                    it.future.set_result(res)


def _expire(fut: asyncio.Future[R]) -> None:
    if not fut.done():
        fut.set_exception(DeadlineExceeded("request deadline passed while queued or computing"))


def _retrieve(fut: asyncio.Future[R]) -> None:
    """Mark a late result as seen so that an abandoned future logs nothing."""
    if not fut.cancelled():
        fut.exception()
