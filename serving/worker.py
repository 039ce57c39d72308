"""The model in its own process, so that forward passes never queue for the server loop's GIL.

A forward pass is many small torch calls; each one gives up the GIL and has to take it back.
In one process with a busy event loop (HTTP, gRPC, Redis, batching) every retake waits for the
loop, and a batch of 32 took twice as long as the same batch in a quiet process. So a replica
runs its forward passes in one child process (like Triton's or TorchServe's model workers) and
keeps everything else (protocols, features, batching, fallbacks) on its loop.

`ProcessModel` is the `Model` seam for that: metadata (item ids, popularity, categories) come
from an in-process copy of the bundle, loaded and verified on the CPU without its text encoder;
`recommend` sends the batch over a pipe to the child, which loaded, verified and warmed up the
same bundle on the serving device. The child exits when its pipe closes (the server stopped or
was killed) and, on Linux, when its parent dies. If the child dies on its own, `watch` reports
it once so that the server fails fast, as a replica that lost its GPU would.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.errors import BundleRefused, ModelNotReady, ModelRetired
from serving.model import Model, load_model, size_threads

_CTX = multiprocessing.get_context("spawn")  # never fork a process that runs grpc and torch


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the parent dies (a SIGKILLed replica leaves no orphan).

    The kernel sends it when the *thread* that started the child exits; replicas start
    workers from executor threads, which live as long as the loop. The pipe's EOF stops the
    child in every case anyway; this covers a parent killed while the child is mid-batch.
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child(conn: Connection, path: str, device: str, verify: bool, threads: int) -> None:
    """Worker process: load, verify and warm up, then answer batches until the pipe closes."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it closes the pipe
    size_threads(threads)
    try:
        model = load_model(Path(path), device=device, verify=verify)
    except BundleRefused as exc:
        conn.send(("refused", str(exc)))
        return
    conn.send(("ready", model.model_version))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        histories, queries, k, exclude_seen = msg
        try:
            ids, scores = model.recommend(histories, queries, k, exclude_seen)
        except Exception as exc:  # a failed batch fails its requests, not the worker
            reply: tuple[Any, ...] = ("error", f"{type(exc).__name__}: {exc}")
        else:
            reply = ("ok", ids, scores)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ProcessModel:
    """A loaded bundle whose forward passes run in a child process (see the module docstring)."""

    def __init__(self, local: Model, proc: Any, conn: Connection) -> None:
        self.model_version = local.model_version
        self.item_ids = local.item_ids
        self.item_category = local.item_category
        self.categories = local.categories
        self.popular = local.popular
        self.popular_by_category = local.popular_by_category
        self.max_history = local.max_history
        self._proc = proc
        self._conn = conn
        self._lock = threading.Lock()  # one batch on the pipe at a time; close waits for it
        self._closed = False
        self._watching: asyncio.AbstractEventLoop | None = None

    @classmethod
    def load(
        cls, path: Path, *, device: str, verify: bool, threads: int, timeout_s: float = 600.0
    ) -> ProcessModel:
        """Start a worker on `path` and load the metadata copy meanwhile; BundleRefused if
        either refuses the bundle (the worker is then stopped: nothing is left half-started)."""
        if not Path(path).is_dir():
            raise BundleRefused(f"bundle {path} is not a directory")
        parent, child = _CTX.Pipe()
        proc = _CTX.Process(
            target=_child,
            args=(child, str(path), device, verify, threads),
            name="cr-model-worker",
            daemon=True,
        )
        proc.start()
        child.close()
        try:
            local = _metadata_copy(path, verify)
            if not parent.poll(timeout_s):
                raise BundleRefused(f"bundle {path}: model worker not ready in {timeout_s:.0f}s")
            try:
                kind, detail = parent.recv()
            except (EOFError, OSError):
                raise BundleRefused(
                    f"bundle {path}: model worker exited while loading (code {_code(proc)})"
                ) from None
            if kind != "ready":
                raise BundleRefused(str(detail))
        except BaseException:
            _stop(proc, parent)
            raise
        return cls(local, proc, parent)

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return int(self._proc.pid) if self._proc.pid is not None else None

    def recommend(
        self,
        histories: list[list[int]],
        queries: list[str | None],
        k: int,
        exclude_seen: bool = True,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """One forward pass in the worker (blocking: call it off the event loop)."""
        with self._lock:
            if self._closed:
                raise ModelRetired("model worker retired")
            try:
                self._conn.send((histories, queries, k, exclude_seen))
                reply = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise ModelNotReady(f"model worker gone (exit code {_code(self._proc)})") from exc
        if reply[0] != "ok":
            raise RuntimeError(f"model worker: {reply[1]}")
        return reply[1], reply[2]

    def warmup(self) -> None:
        """The worker warmed up before it reported ready."""

    def watch(self, lost: Callable[[str], None]) -> None:
        """Call `lost(reason)` once, on the running loop, if the worker dies before `close`."""
        loop = asyncio.get_running_loop()
        self._watching = loop

        def fired() -> None:
            self.unwatch()
            if not self._closed:
                lost(f"model worker (pid {self.pid}) exited with code {_code(self._proc)}")

        loop.add_reader(self._proc.sentinel, fired)

    def unwatch(self) -> None:
        """Stop watching (call on the loop that `watch` ran on)."""
        loop, self._watching = self._watching, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._proc.sentinel)

    def close(self) -> None:
        """Stop the worker after the batch in flight (if any) is answered (blocking; call
        `unwatch` on the loop first if `watch` was called)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            _stop(self._proc, self._conn)


def _metadata_copy(path: Path, verify: bool) -> Model:
    """The bundle on the CPU for metadata only: verified, never warmed (no text encoder)."""
    return load_model(path, device="cpu", verify=verify, warm=False)


def _code(proc: Any) -> object:
    proc.join(timeout=0.5)
    return proc.exitcode


def _stop(proc: Any, conn: Connection) -> None:
    with contextlib.suppress(OSError, ValueError):
        conn.send(None)
    with contextlib.suppress(OSError):
        conn.close()
    proc.join(timeout=5)
    if proc.exitcode is None:
        proc.kill()
        proc.join(timeout=5)
