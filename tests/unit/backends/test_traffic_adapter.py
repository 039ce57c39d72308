"""AdapterTraffic over httpx.MockTransport (no sockets), and chaos-rec parity with today's code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import chaos_rec.load
from chaos_rec.backends.adapters import AdapterTraffic, TrafficSpec
from chaos_rec.core.seams import Answer
from chaos_rec.errors import ConfigError

LOCUSTFILE = Path(chaos_rec.load.__file__).with_name("locustfile.py")
BASE = "http://rec.test:8080"
GATEWAY = TrafficSpec.from_dict({"kind": "chaos-rec"}, "traffic")
OIP = TrafficSpec.from_dict(
    {"kind": "oip-v2", "model": "recommender", "items_output": "item_ids", "k_input": "k",
     "headers": {"authorization": "Bearer t"}},
    "traffic",
)  # fmt: skip


class Recorder:
    """A MockTransport handler answering ``reply`` and keeping every request."""

    def __init__(self, reply: httpx.Response | Exception) -> None:
        self.reply = reply
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


def _adapter(spec: TrafficSpec, rec: Recorder) -> AdapterTraffic:
    return AdapterTraffic(BASE + "/", spec, 2.5, transport=httpx.MockTransport(rec))


# --- the chaos-rec kind is today's contract --------------------------------------------------


@pytest.mark.parametrize("query", ["comedy", None])
def test_the_chaos_rec_kind_on_the_wire_is_the_gateway_contract(query: str | None) -> None:
    answer = {"items": [{"item_id": 5}, {"item_id": 2}, {"item_id": 9}], "fallback": "none"}
    ours = Recorder(httpx.Response(200, json=answer))
    adapter = _adapter(GATEWAY, ours)
    assert adapter.recommend(42, 2, query) == Answer((5, 2), "none")
    sent = ours.seen[0]
    assert (sent.method, str(sent.url)) == ("POST", f"{BASE}/v1/recommend")
    assert json.loads(sent.content) == {"user_id": 42, "k": 2, "query": query}
    assert sent.headers["content-type"] == "application/json"
    adapter.close()


# --- the client ------------------------------------------------------------------------------


def test_oip_v2_request_on_the_wire_and_its_answer() -> None:
    rec = Recorder(httpx.Response(200, json={
        "model_name": "recommender",
        "outputs": [{"name": "item_ids", "shape": [1, 3], "datatype": "INT64", "data": [7, 8, 9]}],
    }))  # fmt: skip
    traffic = _adapter(OIP, rec)
    assert traffic.recommend(42, 2) == Answer((7, 8), "none")
    sent = rec.seen[0]
    assert (sent.method, str(sent.url)) == ("POST", BASE + "/v2/models/recommender/infer")
    assert sent.headers["authorization"] == "Bearer t"
    assert json.loads(sent.content) == {
        "inputs": [
            {"name": "user_id", "shape": [1], "datatype": "INT64", "data": [42]},
            {"name": "k", "shape": [1], "datatype": "INT64", "data": [2]},
        ],
        "outputs": [{"name": "item_ids"}],
    }
    assert sent.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    traffic.close()


def test_one_pooled_client_until_closed() -> None:
    rec = Recorder(httpx.Response(200, json={"items": [], "fallback": "none"}))
    traffic = _adapter(GATEWAY, rec)
    traffic.recommend(1, 10)
    client = traffic._client
    traffic.recommend(2, 10)
    assert client is not None and traffic._client is client
    traffic.close()
    assert traffic._client is None and client.is_closed
    traffic.close()  # closing twice is fine


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(503, json={"error": "overloaded"}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"outputs": [{"name": "scores", "data": [1.0]}]}),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_no_answer_is_none(reply: httpx.Response | Exception) -> None:
    traffic = _adapter(OIP, Recorder(reply))
    assert traffic.recommend(42, 10) is None
    traffic.close()


@pytest.mark.parametrize("spec", [GATEWAY, OIP], ids=["chaos-rec", "oip-v2"])
def test_load_is_the_load_runner_speaking_the_adapter(
    spec: TrafficSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[Any, ...]] = []

    class FakeRunner:
        def __init__(self, url: str, run_dir: Path, **kw: Any) -> None:
            made.append((url, run_dir, kw))

        def start(self) -> str:
            return "handle"

    monkeypatch.setattr(chaos_rec.load, "LoadRunner", FakeRunner)
    holdout = tmp_path / "holdout.json"
    holdout.write_text("[]")
    traffic = AdapterTraffic(BASE, spec, 2.5, holdout=holdout, user_ids=(3, 4), queries=("q",))
    assert traffic.start_load(tmp_path, rps=5, users=2, seed=1, timeout_s=2.0) == "handle"
    assert made == [(BASE, tmp_path, {"rps": 5, "users": 2, "seed": 1, "holdout": holdout,
                                      "user_ids": (3, 4), "queries": ("q",),
                                      "traffic": spec.to_dict(), "secrets": {}, "workers": 0,
                                      "timeout_s": 2.0})]  # fmt: skip
    assert TrafficSpec.from_dict(made[0][2]["traffic"], "t") == spec  # what Locust reads back


@pytest.mark.parametrize(
    ("url", "timeout", "message"),
    [("rec.test:80", 1.0, "traffic URL must start with http://"),
     (BASE, 0.0, "traffic timeout_s must be positive")],
)  # fmt: skip
def test_bad_client_settings(url: str, timeout: float, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        AdapterTraffic(url, GATEWAY, timeout)
