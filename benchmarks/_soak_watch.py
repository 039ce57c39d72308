"""What soak.py watches while the faults run: the processes' RSS and fds, and the writes.

``ProcSampler`` reads ``/proc`` every few seconds: for each component (a name and its root
pids) the sum over its process tree of ``VmRSS`` (``/proc/PID/status``) and of open fds (the
entries of ``/proc/PID/fd``). A component's tree is its root pids and their descendants, less
the subtrees of other components' roots (so the supervisor is counted without the components
it runs). Roots are looked up again at every sample, so a restarted replica is followed by name;
processes still alive in the session of a root that is gone (a killed replica's orphans) are
counted as strays.

``WriteCheck`` writes ``SET soak:<tag>:<n> <n>`` at a steady rate through a given address (the
fault proxy's feature-store link: the path the replicas read features by) and reads each
acknowledged write back straight from Redis once it is ``verify_after_s`` old, then deletes it
(Redis keeps a bounded working set, so its RSS measures the stack and not this test's data).
``finish`` reads back all the rest. Lost = acknowledged (``OK`` came back) but missing or
holding another value when read back.

``load_figures`` counts the load's answers per second from its timeline rows, by phase.
"""

from __future__ import annotations

import collections
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chaos_rec.slo.metrics import is_server_error, summarize

__all__ = ["ProcSampler", "WriteCheck", "load_figures", "redis_client"]


# -- processes -------------------------------------------------------------------------------


def _procs() -> dict[int, tuple[int, int, str]]:
    """Every pid: its parent, its session and its state letter (``/proc/PID/stat``)."""
    out: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()  # state, ppid, pgrp, session, ...
        out[int(entry)] = (int(rest[1]), int(rest[3]), rest[0])
    return out


def _rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return 0  # a zombie has no VmRSS line


def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Sample:
    """One component at one moment: seconds since the start, sums over its process tree."""

    t: float
    rss_kib: int
    fds: int
    procs: int
    strays: int  # live processes left in the sessions of its earlier (dead) roots


class ProcSampler:
    """Samples every component's tree each ``interval_s`` on a daemon thread."""

    def __init__(self, roots: Callable[[], dict[str, list[int]]], interval_s: float = 5.0) -> None:
        self._roots = roots
        self.interval_s = interval_s
        self.samples: dict[str, list[Sample]] = collections.defaultdict(list)
        self.sessions: dict[str, dict[int, int]] = collections.defaultdict(dict)  # root -> sid
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self.t0 = time.monotonic()

    def start(self) -> None:
        """Take the first sample now, then keep sampling."""
        self.t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (waits for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample_once()
            except Exception as exc:  # a state file being rewritten, a stack going down
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def sample_once(self) -> None:
        """One sample of every component with a live root process."""
        procs = _procs()
        live = {pid for pid, (_, _, state) in procs.items() if state not in ("Z", "X")}
        roots = {name: [p for p in pids if p in live] for name, pids in self._roots().items()}
        children: dict[int, list[int]] = collections.defaultdict(list)
        for pid in live:
            children[procs[pid][0]].append(pid)
        all_roots = {p for pids in roots.values() for p in pids}
        t = time.monotonic() - self.t0
        for name, pids in roots.items():
            if not pids:
                continue  # killed, not restarted yet: no sample
            seen = self.sessions[name]
            seen.update((p, procs[p][1]) for p in pids)
            tree: list[int] = []
            todo = list(pids)
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo += [c for c in children.get(pid, ()) if c not in all_roots]
            old = {sid for root, sid in seen.items() if root not in live}
            strays = sum(1 for pid in live if procs[pid][1] in old)
            rss = sum(_rss_kib(p) or 0 for p in tree)
            fds = sum(_fds(p) or 0 for p in tree)
            self.samples[name].append(Sample(t, rss, fds, len(tree), strays))

    def summary(self, window_s: float, rss_factor: float, fd_slack: int) -> dict[str, Any]:
        """Per component: medians of the first and last ``window_s``, maxima, growth, bounded.

        Bounded: the last window's median RSS at most ``rss_factor`` x the first's, its median
        fd count at most ``fd_slack`` above the first's, and no stray process at the end.
        """
        out: dict[str, Any] = {}
        for name, rows in self.samples.items():
            end = rows[-1].t
            first = [s for s in rows if s.t <= rows[0].t + window_s]
            last = [s for s in rows if s.t >= end - window_s]
            rss0 = statistics.median(s.rss_kib for s in first) / 1024
            rss1 = statistics.median(s.rss_kib for s in last) / 1024
            fd0 = statistics.median(s.fds for s in first)
            fd1 = statistics.median(s.fds for s in last)
            out[name] = {
                "samples": len(rows),
                "pids": len(self.sessions[name]),
                "procs_max": max(s.procs for s in rows),
                "rss_mib_first": round(rss0, 1),
                "rss_mib_last": round(rss1, 1),
                "rss_mib_max": round(max(s.rss_kib for s in rows) / 1024, 1),
                "rss_growth": round(rss1 / rss0, 3) if rss0 else None,
                "fds_first": fd0,
                "fds_last": fd1,
                "fds_max": max(s.fds for s in rows),
                "fds_growth": fd1 - fd0,
                "strays_max": max(s.strays for s in rows),
                "strays_last": rows[-1].strays,
                "bounded": rss1 <= rss_factor * rss0
                and fd1 <= fd0 + fd_slack
                and rows[-1].strays == 0,
            }
        return out


# -- the load --------------------------------------------------------------------------------


def _answers(row: dict[str, Any]) -> int:
    status = row.get("status") or {}
    bad = sum(int(n) for c, n in status.items() if is_server_error(str(c)))
    return int(row.get("requests", 0)) - (bad if status else int(row.get("failures", 0)))


def load_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Answers per second and availability by phase (and over the whole soak)."""
    out: dict[str, Any] = {}
    for phase in ("steady", "fault", "recovery", "all"):
        sel = [r for r in rows if phase in ("all", r.get("phase"))]
        if not sel:
            continue
        answers = [_answers(r) for r in sel]
        summ = summarize(sel)
        out[phase] = {"seconds": len(sel), "answers_per_s_median": statistics.median(answers),
                      "answers_per_s_min": min(answers), "requests": summ["requests"],
                      "availability": summ["availability"], "p99_ms": summ["p99_ms"],
                      "fallback_ratio": summ["fallback_ratio"]}  # fmt: skip
    return out


# -- writes ----------------------------------------------------------------------------------


def redis_client(host: str, port: int, timeout_s: float) -> redis.Redis:
    """A Redis client that neither retries nor waits past ``timeout_s`` (one try per command)."""
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


@dataclass
class _Write:
    n: int
    t: float  # monotonic, when it was sent
    phase: str
    acked: bool


@dataclass
class WriteCounts:
    """Writes by the phase they were sent in."""

    sent: int = 0
    acked: int = 0
    read_back: int = 0
    lost: int = 0
    landed_unacked: int = 0  # not acknowledged (error, timeout) yet found in Redis
    lost_keys: list[str] = field(default_factory=list)


class WriteCheck:
    """The writer and the read-back of the soak's writes (see the module docstring)."""

    def __init__(self, tag: str, via: tuple[str, int], direct: tuple[str, int], *,
                 rate: float, verify_after_s: float, phase: Callable[[], str],
                 timeout_s: float = 1.0) -> None:  # fmt: skip
        self.tag = tag
        self._via = redis_client(*via, timeout_s)
        self._direct = redis_client(*direct, 5.0)
        self.rate = rate
        self.verify_after_s = verify_after_s
        self._phase = phase
        self.counts: dict[str, WriteCounts] = collections.defaultdict(WriteCounts)
        self.read_errors = 0
        self._pending: collections.deque[_Write] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._write_loop, name="soak-writer", daemon=True),
            threading.Thread(target=self._check_loop, name="soak-checker", daemon=True),
        ]

    def key(self, n: int) -> str:
        """The key of write ``n``."""
        return f"soak:{self.tag}:{n}"

    def start(self) -> None:
        """Start writing and checking."""
        for thread in self._threads:
            thread.start()

    def _write_loop(self) -> None:
        n = 0
        gap = 1.0 / self.rate
        due = time.monotonic()
        while not self._stop.is_set():
            n += 1
            phase = self._phase()
            sent = time.monotonic()
            try:
                acked = self._via.set(self.key(n), str(n)) is True
            except redis.RedisError:
                acked = False
            with self._lock:
                counts = self.counts[phase]
                counts.sent += 1
                counts.acked += acked
                self._pending.append(_Write(n, sent, phase, acked))
            due = max(due + gap, time.monotonic() - 1.0)  # a write held up: no burst after it
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _check_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._check(time.monotonic() - self.verify_after_s)

    def _check(self, older_than: float) -> None:
        """Read back (and delete) every write sent before ``older_than``, 500 at a time."""
        while True:
            with self._lock:
                batch = []
                while self._pending and self._pending[0].t < older_than and len(batch) < 500:
                    batch.append(self._pending.popleft())
            if not batch:
                return
            keys = [self.key(w.n) for w in batch]
            try:
                values = self._direct.mget(keys)
                self._direct.delete(*keys)
            except redis.RedisError:
                self.read_errors += 1
                with self._lock:
                    self._pending.extendleft(reversed(batch))
                return
            with self._lock:
                for w, key, value in zip(batch, keys, values, strict=True):
                    counts = self.counts[w.phase]
                    there = value == str(w.n).encode()
                    if w.acked:
                        counts.read_back += there
                        if not there:
                            counts.lost += 1
                            counts.lost_keys.append(key)
                    else:
                        counts.landed_unacked += value is not None

    def finish(self) -> dict[str, WriteCounts]:
        """Stop writing, read back every write not read yet; the counts by phase."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for _ in range(10):
            self._check(float("inf"))
            if not self._pending:
                break
            time.sleep(1.0)
        with self._lock:
            unread = len(self._pending)
            for w in self._pending:  # Redis never answered the read-back: count as lost
                if w.acked:
                    self.counts[w.phase].lost += 1
                    self.counts[w.phase].lost_keys.append(self.key(w.n))
            self._pending.clear()
        if unread:
            self.read_errors += unread
        return dict(self.counts)

    def close(self) -> None:
        """Stop the threads and close both clients (safe to call twice)."""
        self._stop.set()
        self._via.close()
        self._direct.close()
