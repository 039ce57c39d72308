"""One Triton replica: the bundled recommender bound into NVIDIA Triton through PyTriton.

This is the user's side of a stock deployment: PyTriton starts the real ``tritonserver`` (from
the ``nvidia-pytriton`` wheel) and feeds its Python-backend model from :func:`make_infer`.
Features are read from Redis with plain redis-py and **no fallback**: a Redis error is an
inference error (this deployment is fragile there on purpose, see README.md).

Model ``recommender``: inputs ``user_id`` and ``k`` (INT64, one per request, batch dimension),
outputs ``items`` (INT64 external item ids), ``scores`` (FP32) and ``model_version`` (BYTES).
Run by stack.py under supervisord with the Triton venv's python and ``PYTHONPATH`` = the repo.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "recommender"
REDIS_TIMEOUT_S = 2.0


def make_infer(model: Any, redis_client: Any) -> Callable[..., dict[str, np.ndarray]]:
    """The batched infer function: one Redis MGET and one forward pass per dynamic batch."""
    from training import featurestore as fs

    version = np.array([[str(model.model_version).encode()]], dtype=object)

    def infer(user_id: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
        users = [int(u) for u in user_id.reshape(-1)]
        want = int(np.max(k))
        if want < 1 or any(u < 0 for u in users):
            raise ValueError(f"bad request: k={want}, user ids {users} (k >= 1, ids >= 0)")
        raw = redis_client.mget([fs.user_key(u) for u in users])  # RedisError = infer error
        histories = [
            [] if value is None else fs.decode_user(value, uid).history[-model.max_history :]
            for uid, value in zip(users, raw, strict=True)
        ]
        ids, scores = model.recommend(histories, [None] * len(users), want)
        return {
            "items": ids.astype(np.int64),
            "scores": scores.astype(np.float32),
            "model_version": np.repeat(version, len(users), axis=0),
        }

    return infer


def end_stale_stubs(workspace: Path) -> list[int]:
    """SIGKILL Python-backend stubs a killed run of this replica left (they outlive tritonserver).

    Seen here: after SIGKILL of the binding process, tritonserver dies (PDEATHSIG) but its
    ``triton_python_backend_stub`` children stay, re-parented to init, one per kill or restart.
    """
    mark = str(workspace) + "/"
    ended = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        if argv0.startswith(mark):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(proc.name), signal.SIGKILL)
                ended.append(int(proc.name))
    return ended


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--redis-url", required=True, help="the feature store, via the fault proxy")
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--queue-delay-us", type=int, default=2000)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Load the bundle, bind it and serve until signalled."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="triton-replica: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import redis
    import torch
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    from serving.errors import BundleRefused
    from serving.model import load_model

    torch.set_num_threads(max(1, args.threads))
    try:
        model = load_model(args.bundle, device="cpu", verify=True)
    except BundleRefused as exc:
        print(f"triton-replica: {exc}", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(
        args.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    config = TritonConfig(
        http_address="127.0.0.1", grpc_address="127.0.0.1", http_port=args.http_port,
        grpc_port=args.grpc_port, metrics_address="127.0.0.1", metrics_port=args.metrics_port,
        exit_timeout_secs=2,
    )  # fmt: skip
    stale = end_stale_stubs(args.workspace.resolve())
    if stale:
        print(f"triton-replica: ended {len(stale)} stale Python-backend stub(s)", file=sys.stderr)
    shutil.rmtree(args.workspace, ignore_errors=True)  # left over by a killed run
    args.workspace.parent.mkdir(parents=True, exist_ok=True)
    with Triton(config=config, workspace=args.workspace) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=batch(make_infer(model, client)),
            inputs=[Tensor(name="user_id", dtype=np.int64, shape=(1,)),
                    Tensor(name="k", dtype=np.int64, shape=(1,))],
            outputs=[Tensor(name="items", dtype=np.int64, shape=(-1,)),
                     Tensor(name="scores", dtype=np.float32, shape=(-1,)),
                     Tensor(name="model_version", dtype=bytes, shape=(1,))],
            config=ModelConfig(
                max_batch_size=args.max_batch,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us),
            ),
            strict=True,
        )  # fmt: skip
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
