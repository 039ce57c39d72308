"""Materialize + verify against a real Redis, holdout rows, and CLI error lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.support.offline import offline_env
from tests.support.procs import free_port
from training import featurestore as fs
from training.materialize import holdout_rows, materialize, verify_store

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "bundles" / "reference"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_materialize_then_verify_detects_loss(redis_url: str) -> None:
    info = materialize(redis_url, BUNDLE, ttl_s=3600)
    assert info["n_users"] == "943"
    rep = verify_store(redis_url, BUNDLE)
    assert rep.ok and rep.n_users == 943, rep.line()
    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    meta = {k.decode(): v.decode() for k, v in r.hgetall(fs.META_KEY).items()}
    assert (
        meta["model_version"] == json.loads((BUNDLE / "metadata.json").read_text())["model_version"]
    )
    assert 0 < r.ttl(fs.user_key(1)) <= 3600
    stored = fs.decode_user(r.get(fs.user_key(1)), 1)
    assert 0 < len(stored.history) <= 50 and stored.n >= len(stored.history)
    # data loss and corruption, each reported by kind
    r.delete(fs.user_key(5), fs.user_key(6))
    old = fs.UserFeatures(user_id=7, history=[1], top_category=0, ts=1, n=1)
    r.set(fs.user_key(7), fs.encode_user(old))
    r.set(fs.user_key(8), b"garbage")
    rep = verify_store(redis_url, BUNDLE)
    assert not rep.ok
    assert rep.missing == [5, 6] and rep.stale == [7] and rep.mismatched == [8]
    assert "missing 2, stale 1, mismatched 1" in rep.line()
    r.flushall()
    rep = verify_store(redis_url, BUNDLE)
    assert len(rep.missing) == 943 and not rep.meta_ok


def test_cli_materialize_and_verify_exit_codes(redis_url: str) -> None:
    done = _cli("materialize", "--redis", redis_url, "--bundle", str(BUNDLE))
    assert done.returncode == 0, done.stderr
    assert "missing 0, stale 0, mismatched 0" in done.stdout
    redis.Redis.from_url(redis_url, socket_timeout=5).delete(fs.user_key(3))
    again = _cli("materialize", "--redis", redis_url, "--bundle", str(BUNDLE), "--verify-only")
    assert again.returncode == 1 and "missing 1" in again.stdout


def test_holdout_rows_are_held_out_of_the_store(redis_url: str, tmp_path: Path) -> None:
    out = tmp_path / "holdout.json"
    done = _cli("holdout", "--bundle", str(BUNDLE), "--out", str(out))
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())
    assert rows == holdout_rows(BUNDLE)  # seeded → reproducible
    assert len(rows) == 943 and set(rows[0]) == {"user_id", "target_item", "query"}
    n_query = sum(r["query"] is not None for r in rows)
    assert 0.2 * 943 < n_query < 0.4 * 943
    materialize(redis_url, BUNDLE)
    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    for row in rows[:100]:
        f = fs.decode_user(r.get(fs.user_key(row["user_id"])), row["user_id"])
        assert row["target_item"] not in f.history  # the held-out item is not served


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (
            ["materialize", "--redis", "redis://127.0.0.1:{port}/0", "--bundle", str(BUNDLE)],
            "failed",
        ),
        (["materialize", "--redis", "nonsense://x", "--bundle", str(BUNDLE)], "redis"),
        (["holdout", "--bundle", "/nonexistent/bundle", "--out", "/tmp/x.json"], "metadata.json"),
        (["evaluate", "--bundle", "/nonexistent/bundle"], "not found"),
        (["build", "--dataset", "imdb", "--out", "/tmp/never"], "unknown dataset"),
        (["build", "--set", "bogus=1", "--out", "/tmp/never"], "unknown config key"),
    ],
)
def test_bad_input_is_one_error_line(args: list[str], needle: str) -> None:
    args = [a.replace("{port}", str(free_port())) for a in args]
    done = _cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr
    assert "Traceback" not in done.stderr
