"""Locust load for a deployment: seeded user mix, one timeline row per second.

Run ONLY as a Locust subprocess (``LoadRunner`` does it); importing this module
imports locust, which monkey-patches the process with gevent.

Settings come from the JSON file named by ``CHAOS_REC_LOAD_CONFIG`` (written by
``LoadRunner``): ``run_dir``, ``rps``, ``users``, ``seed``, ``k``, ``timeout_s``,
``mix`` (weights of ``personalised``/``search``/``unknown``), ``holdout``
(path or null), ``user_ids`` and ``queries`` (used without a hold-out file), ``traffic`` (the
:class:`~chaos_rec.traffic.TrafficSpec` as a dict: every request is built and every answer read
by :func:`~chaos_rec.traffic.build_request` / :func:`~chaos_rec.traffic.parse_answer`, the same
code the quality replay uses), ``timeline`` (file name), ``level_file`` (file name).

The level file holds ``{"multiplier": m}`` (rate = m x rps) and, during a capacity probe,
``"closed": n``: then the first n users send back to back (closed loop, no think time) and the
others wait, so the answered rate of those seconds is what the deployment sustains at that
concurrency. Each row also says what the generator itself did: ``sent`` (requests started),
``busy_skipped`` (slots a user skipped because its last request was still in flight: the
deployment held it up), ``target_rps`` (requests the schedule asked for in that second: the
rate, or its share in a second where the level changed) and ``gen_lag_ms`` (the
worst delay of its own event loop in that second): a generator that lags or cannot send its
schedule measures itself.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment

from chaos_rec.core.rundir import RunContext, phase_at
from chaos_rec.slo.metrics import SecondStats
from chaos_rec.traffic import OipGrpcClient, TrafficSpec, build_request, parse_answer

UNKNOWN_USER_BASE = 900_000_000


def _config() -> dict[str, Any]:
    path = os.environ.get("CHAOS_REC_LOAD_CONFIG")
    if not path:
        raise SystemExit("chaos-rec locustfile: CHAOS_REC_LOAD_CONFIG is not set")
    cfg: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return cfg


class _Recorder:
    """Collects finished requests per second and appends rows to the timeline."""

    def __init__(self, cfg: dict[str, Any], role: str = "local") -> None:
        self.role = role  # local | master (aggregates, writes rows) | worker (sends them on)
        self.raw: dict[int, list[tuple[float, int, str | None, bool, bool]]] = {}
        self.ctx = RunContext(cfg["run_dir"])
        self.run_dir = self.ctx.run_dir
        self.timeline = cfg.get("timeline", "timeline.jsonl")
        self.level_file = self.run_dir / cfg.get("level_file", "load_level.json")
        self.base_rps = float(cfg["rps"])
        self.users = int(cfg["users"])
        self.multiplier = 1.0
        self.closed = 0  # > 0 during a capacity probe: that many users send back to back
        self.buckets: dict[int, SecondStats] = {}
        self.sent: dict[int, int] = {}
        self.busy: dict[int, int] = {}  # slots a user skipped while its request was in flight
        self.lag_ms: dict[int, float] = {}
        self.asked: dict[int, float] = {}  # requests the schedule asked for, per second
        self.next_t: int | None = None
        self._level_mtime = 0.0
        self._level_checked = 0.0

    def record(self, ms: float, status: int, tier: str | None, failed: bool, known: bool) -> None:
        """Record one finished request in the bucket of the current second."""
        t = int(time.time())
        if self.role == "worker":
            self.raw.setdefault(t, []).append((ms, status, tier, failed, known))
            return
        stats = self.buckets.get(t)
        if stats is None:
            stats = self.buckets[t] = SecondStats(t)
        stats.add(ms, status, tier, failed=failed, known=known)

    def started(self) -> None:
        """Count one request sent in the current second."""
        t = int(time.time())
        self.sent[t] = self.sent.get(t, 0) + 1

    def skipped_busy(self, slots: int) -> None:
        """Count slots a user could not send in because it still waited for an answer."""
        t = int(time.time())
        self.busy[t] = self.busy.get(t, 0) + slots

    def lagged(self, ms: float) -> None:
        """Record a delay of the generator's own event loop in the current second."""
        t = int(time.time())
        if ms > self.lag_ms.get(t, 0.0):
            self.lag_ms[t] = ms

    def interval(self) -> float:
        """Seconds between two requests of one user at the current level (re-read every 0.1 s)."""
        self._track_level()
        rps = max(0.01, self.base_rps * self.multiplier)
        return self.users / rps

    def _track_level(self) -> None:
        """Re-read the level file at most every 0.1 s: the senders' pace and the schedule kept
        in ``asked`` follow the same level within that time (a master, with no users of its
        own, keeps the schedule for its workers)."""
        now = time.monotonic()
        if now - self._level_checked >= 0.1:
            self._level_checked = now
            self._read_level()

    def _read_level(self) -> None:
        try:
            mtime = self.level_file.stat().st_mtime
        except FileNotFoundError:
            return
        if mtime == self._level_mtime:
            return
        try:
            level = json.loads(self.level_file.read_text())
            multiplier, closed = float(level["multiplier"]), int(level.get("closed") or 0)
        except (ValueError, KeyError, OSError, TypeError):
            return  # being rewritten; read again next second
        self.multiplier, self.closed = multiplier, closed
        self._level_mtime = mtime

    def forward(self, runner: Any, *, final: bool = False) -> None:
        """(worker) Send every completed second's requests and counts to the master."""
        limit = int(time.time()) + (1 if final else 0)
        seconds = sorted({*self.raw, *self.sent, *self.busy, *self.lag_ms})
        out = [
            {"t": t, "requests": self.raw.pop(t, []), "sent": self.sent.pop(t, 0),
             "busy": self.busy.pop(t, 0), "lag_ms": self.lag_ms.pop(t, 0.0)}
            for t in seconds if t < limit
        ]  # fmt: skip
        for t in [t for t in self.asked if t < limit]:  # the master keeps the schedule
            del self.asked[t]
        if out:
            runner.send_message(MESSAGE, out)

    def merge(self, seconds: list[dict[str, Any]]) -> None:
        """(master) Add a worker's seconds to this process's buckets."""
        for sec in seconds:
            t = int(sec["t"])
            stats = self.buckets.get(t)
            if stats is None:
                stats = self.buckets[t] = SecondStats(t)
            for ms, status, tier, failed, known in sec["requests"]:
                stats.add(ms, status, tier, failed=failed, known=known)
            self.sent[t] = self.sent.get(t, 0) + int(sec["sent"])
            self.busy[t] = self.busy.get(t, 0) + int(sec["busy"])
            self.lag_ms[t] = max(self.lag_ms.get(t, 0.0), float(sec["lag_ms"]))

    def flush(self, *, final: bool = False) -> None:
        """Append rows for every completed second (all seconds when final); a master waits one
        second more for its workers' messages."""
        now = int(time.time()) - (1 if self.role == "master" else 0)
        limit = now + 1 if final else now
        if self.next_t is None:
            self.next_t = min(self.buckets, default=now)
        marks = self.ctx.phases()
        rows = []
        for t in range(self.next_t, limit):
            stats = self.buckets.pop(t, None) or SecondStats(t)
            row = stats.row(phase_at(marks, float(t)))
            row["level"] = self.multiplier
            row["sent"] = self.sent.pop(t, 0)
            row["busy_skipped"] = self.busy.pop(t, 0)
            row["target_rps"] = round(self.asked.pop(t, 0.0), 1)
            row["gen_lag_ms"] = round(self.lag_ms.pop(t, 0.0), 3)
            if self.closed:
                row["closed"] = self.closed
            rows.append(row)
        self.next_t = max(self.next_t, limit)
        self.ctx.append_timeline(rows, self.timeline)

    def loop(self, runner: Any = None) -> None:
        """Every second: pick up the load level, flush finished seconds (a worker: send them)."""
        self.next_t = int(time.time())
        while True:
            gevent.sleep(1.0 - (time.time() % 1.0) + 0.02)
            self._read_level()
            if self.role == "worker":
                self.forward(runner)
            else:
                self.flush()

    def watch(self) -> None:
        """Every 10 ms: the schedule's requests so far (rate x time, so a second in which the
        level changes asks for its share), and the generator's own event-loop delay (a 10 ms
        sleep that wakes up late)."""
        last = time.time()
        while True:
            start = time.perf_counter()
            gevent.sleep(0.01)
            self.lagged(max(0.0, (time.perf_counter() - start - 0.01) * 1000.0))
            self._track_level()
            now = time.time()
            rate = 0.0 if self.closed else self.base_rps * self.multiplier
            for t in range(int(last), int(now) + 1):  # split the elapsed time at second marks
                share = min(now, t + 1.0) - max(last, float(t))
                if share > 0:
                    self.asked[t] = self.asked.get(t, 0.0) + rate * share
            last = now


MESSAGE = "chaos_rec_seconds"  # worker -> master: finished requests and counts per second
CONFIG: dict[str, Any] = {}
SLOT: list[int] = [0, 1]  # this process's worker index, and the number of workers
RECORDER: list[_Recorder] = []
HOLDOUT: list[dict[str, Any]] = []
SPEC: list[TrafficSpec] = []
SECRETS: dict[str, str] = {}  # the headers' secrets, from LoadRunner's environment only
GRPC: list[OipGrpcClient] = []  # one ModelInfer channel per process, for a gRPC spec
_USER_SEQ = itertools.count()


def _on_init(environment: Environment, **_: Any) -> None:
    CONFIG.update(_config())
    runner = environment.runner
    role = {"MasterRunner": "master", "WorkerRunner": "worker"}.get(type(runner).__name__, "local")
    rec = _Recorder(CONFIG, role)
    RECORDER.append(rec)
    if role == "master":
        runner.register_message(MESSAGE, lambda msg, **_kw: rec.merge(msg.data))  # type: ignore[union-attr]
    if role == "worker":  # users are numbered across workers: seeds and probe slots stay global
        SLOT[:] = [int(getattr(runner, "worker_index", 0)), max(1, int(CONFIG.get("workers") or 1))]
    SPEC.append(TrafficSpec.from_dict(CONFIG.get("traffic") or {}, "load config traffic"))
    SECRETS.update(json.loads(os.environ.pop("CHAOS_REC_LOAD_SECRETS", "") or "{}"))
    if SPEC[0].protocol == "grpc":  # grpcio's threads must yield to gevent: before any channel
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
        GRPC.append(OipGrpcClient(SPEC[0], float(CONFIG.get("timeout_s", 5.0)), SECRETS))
    holdout = CONFIG.get("holdout")
    if holdout:
        rows = json.loads(Path(holdout).read_text(encoding="utf-8"))
        HOLDOUT.extend(r for r in rows if isinstance(r, dict) and "user_id" in r)
    gevent.spawn(rec.loop, runner)
    gevent.spawn(rec.watch)


def _on_quit(environment: Environment, **_: Any) -> None:
    if RECORDER and RECORDER[0].role == "worker":
        RECORDER[0].forward(environment.runner, final=True)
    elif RECORDER:
        RECORDER[0].flush(final=True)


events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quit)  # type: ignore[no-untyped-call]


class Shopper(FastHttpUser):
    """One simulated client: paced requests from a seeded mix of request kinds."""

    def __init__(self, environment: Environment) -> None:
        self.network_timeout = float(CONFIG.get("timeout_s", 5.0))
        self.connection_timeout = float(CONFIG.get("timeout_s", 5.0))
        super().__init__(environment)
        idx = self.idx = next(_USER_SEQ) * SLOT[1] + SLOT[0]
        self.rng = random.Random(int(CONFIG.get("seed", 0)) * 1_000_003 + idx)
        mix = CONFIG.get("mix") or {"personalised": 0.6, "search": 0.25, "unknown": 0.15}
        self.kinds = list(mix)
        self.weights = [float(mix[k]) for k in self.kinds]
        self.k = int(CONFIG.get("k", 10))
        self.phase = self.rng.random()  # this user's offset within every interval
        self._gap = 0.0
        self._slot = 0

    def wait_time(self) -> float:
        """No wait between tasks: `_pace` (in the task) holds each user to its schedule."""
        return 0.0

    def _pace(self) -> None:
        """Wait for this user's next slot: slots are every ``interval`` s, offset by ``phase``.

        Users' phases are spread uniformly, so arrivals are spread evenly at any level; a level
        change takes effect within 0.2 s and every user joins the new schedule at its next slot
        (no burst of all users at once). A user whose request outlasts its interval skips the
        slots it missed (closed loop per user, open loop across many users).
        """
        while True:
            gap = RECORDER[0].interval()
            closed = RECORDER[0].closed
            if closed:  # capacity probe: the first `closed` users send back to back
                self._gap = 0.0  # rejoin the schedule afterwards
                if self.idx < closed:
                    return
                gevent.sleep(0.25)  # the others wait it out, waking seldom (the probe is short)
                continue
            now = time.time()
            x = now / gap + self.phase
            n = math.floor(x)
            if gap != self._gap:  # first call or a new level: join the schedule at the next slot
                self._gap, self._slot = gap, n
            if n != self._slot:
                self._slot = n
                return
            gevent.sleep(min((n + 1 - x) * gap + 0.0005, 0.2))

    def _body(self) -> tuple[dict[str, Any], bool]:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        if kind == "unknown":
            uid = UNKNOWN_USER_BASE + self.rng.randrange(1_000_000)
            return {"user_id": uid, "k": self.k, "query": None}, False
        if HOLDOUT:
            entry = self.rng.choice(HOLDOUT)
            uid, query = int(entry["user_id"]), entry.get("query")
        else:  # LoadRunner refuses a run with neither a hold-out file nor user ids
            uid = int(self.rng.choice(CONFIG["user_ids"]))
            queries = CONFIG.get("queries") or [None]
            query = self.rng.choice(queries)
        return {"user_id": uid, "k": self.k, "query": query if kind == "search" else None}, True

    @task
    def recommend(self) -> None:
        """One request through the traffic adapter; record latency, status and fallback tier."""
        self._pace()
        body, known = self._body()
        if GRPC:
            self._infer(body, known)
            return
        req = build_request(SPEC[0], body["user_id"], body["k"], body["query"], SECRETS)
        RECORDER[0].started()
        start = time.perf_counter()
        with self.client.request(
            req.method, req.path, json=req.json_body, headers=dict(req.headers) or None,
            catch_response=True, name="recommend",
        ) as resp:  # fmt: skip
            ms = (time.perf_counter() - start) * 1000.0
            status = int(resp.status_code or 0)
            tier: str | None = None
            failed = status == 0 or status >= 500
            if status == 200:
                try:
                    answer = parse_answer(SPEC[0], status, resp.json())
                except ValueError:
                    answer = None
                if answer is None:  # a 200 without items (or marker) is no answer
                    failed = True
                    status = 0
                else:
                    tier = answer.tier
            if failed:
                resp.failure(f"status {status}")
            else:
                resp.success()
        self._finished(ms, status, tier, failed, known)

    def _infer(self, body: dict[str, Any], known: bool) -> None:
        """One ModelInfer over gRPC (OIP v2): its status as the HTTP status a timeline records."""
        RECORDER[0].started()
        start = time.perf_counter()
        reply = GRPC[0].infer(body["user_id"], body["k"], body["query"])
        ms = (time.perf_counter() - start) * 1000.0
        status, answer = reply.status, reply.answer
        failed = status >= 500 or (status == 200 and answer is None)
        if status == 200 and answer is None:  # OK without readable items is no answer
            status = 0
        self._finished(ms, status, answer.tier if answer else None, failed, known)

    def _finished(
        self, ms: float, status: int, tier: str | None, failed: bool, known: bool
    ) -> None:
        RECORDER[0].record(ms, status, tier, failed, known)
        if self._gap and not RECORDER[0].closed:
            # slots that began while this request was in flight, bar the one it sends in next:
            # the deployment held this user up (closed loop per user), not the generator
            missed = math.floor(time.time() / self._gap + self.phase) - self._slot - 1
            if missed > 0:
                RECORDER[0].skipped_busy(missed)
