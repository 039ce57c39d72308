"""Gateway admission control: shed (503 + Retry-After) before any work when overloaded.

Two signals, either one sheds (switch `shedding`):

- requests in progress >= ``max_inflight`` (the backlog waits on the replicas), and
- the event loop's smoothed lag > ``max_loop_lag_ms`` while at least ``LAG_MIN_INFLIGHT``
  requests are in progress (the backlog waits on the gateway itself: when its CPU is short,
  requests queue in front of the handler, where no in-flight count sees them; the same signal
  as Fastify's under-pressure ``maxEventLoopDelay``). A laggy loop with next to nothing in
  progress is a noisy neighbour, not overload: shedding then would only lose requests.

Shedding a request costs a fraction of serving it, so shedding what cannot be served in time
keeps the accepted requests fast instead of letting every request wait until its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib

from serving.metrics import GatewayMetrics
from serving.settings import Switches

SAMPLE_S = 0.01  # loop-lag timer period
SMOOTHING = 0.3  # EWMA weight of the newest lag sample
LAG_MIN_INFLIGHT = 8  # loop lag sheds only while this many requests are in progress


class Admission:
    """In-flight count and event-loop lag; `reason_to_shed` says why a request is refused."""

    def __init__(
        self,
        max_inflight: int,
        max_loop_lag_ms: float,
        switches: Switches,
        metrics: GatewayMetrics,
    ) -> None:
        self.max_inflight = max_inflight
        self.max_loop_lag_s = max_loop_lag_ms / 1000.0
        self.switches = switches
        self.metrics = metrics
        self.inflight = 0
        self.loop_lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling the loop lag on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="cr-loop-lag")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def observe_lag(self, lag_s: float) -> None:
        """Fold one lag sample into the smoothed lag."""
        self.loop_lag_s += SMOOTHING * (max(0.0, lag_s) - self.loop_lag_s)
        self.metrics.loop_lag.set(self.loop_lag_s)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(SAMPLE_S)
            self.observe_lag(loop.time() - t - SAMPLE_S)

    def reason_to_shed(self) -> str | None:
        """Why a new request must be shed now, or None to admit it."""
        if not self.switches["shedding"]:
            return None
        if self.inflight >= self.max_inflight:
            return f"gateway full ({self.max_inflight} requests in progress)"
        if self.loop_lag_s > self.max_loop_lag_s and self.inflight >= LAG_MIN_INFLIGHT:
            return (
                f"gateway overloaded (event-loop lag {self.loop_lag_s * 1000:.0f} ms "
                f"> {self.max_loop_lag_s * 1000:g} ms)"
            )
        return None

    def enter(self) -> None:
        """Count an admitted request."""
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)

    def leave(self) -> None:
        """Count an admitted request done."""
        self.inflight -= 1
        self.metrics.inflight.set(self.inflight)
