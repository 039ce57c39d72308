"""Circuit breaker: closed → open after N consecutive failures → half-open probe → closed."""

from __future__ import annotations

import time
from collections.abc import Callable

STATE_CODES = {"closed": 0, "half_open": 1, "open": 2}


class CircuitBreaker:
    """Consecutive-failure breaker with one probe at a time while half-open."""

    def __init__(
        self, failures: int = 5, reset_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._count = 0
        self._opened_at: float | None = None
        self._probing = False
        self._probe_at = 0.0

    @property
    def state(self) -> str:
        """`closed`, `open` or `half_open`."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go through now (claims the single half-open probe)."""
        state = self.state
        if state == "closed":
            return True
        now = self._clock()
        if state == "half_open" and (not self._probing or now - self._probe_at > self.reset_s):
            self._probing = True
            self._probe_at = now
            return True
        return False

    def success(self) -> None:
        """Record a success: closes the breaker."""
        self._count = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        """Record a failure: opens after `failures` in a row, re-opens on a failed probe."""
        self._count += 1
        if self._probing or self._count >= self.failures:
            self._opened_at = self._clock()
        self._probing = False

    def reset(self) -> None:
        """Forget all history (used when the breaker is switched off)."""
        self.success()
