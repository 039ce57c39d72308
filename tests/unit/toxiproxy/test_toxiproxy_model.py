"""Toxic parsing and validation follow the real server's defaults and error codes."""

from __future__ import annotations

import pytest

from chaos_rec.errors import ProxyRequestError
from chaos_rec.toxiproxy.model import TOXIC_ATTRIBUTES, parse_toxic, rng_for, update_toxic


def _parse(body: object, seed: int | None = 1) -> object:
    return parse_toxic(body, seed=seed, proxy="p")


def test_defaults_match_real_server() -> None:
    spec = parse_toxic({"type": "latency", "attributes": {"latency": 100}}, seed=None, proxy="p")
    assert spec.to_json() == {
        "attributes": {"latency": 100, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }


def test_default_name_uses_stream() -> None:
    spec = parse_toxic({"type": "timeout", "stream": "upstream"}, seed=None, proxy="p")
    assert spec.name == "timeout_upstream"
    assert spec.attributes == {"timeout": 0}


@pytest.mark.parametrize("type_", sorted(TOXIC_ATTRIBUTES))
def test_every_type_reports_all_its_attributes(type_: str) -> None:
    attrs = dict.fromkeys(TOXIC_ATTRIBUTES[type_], 1)
    spec = parse_toxic({"type": type_, "attributes": attrs}, seed=None, proxy="p")
    assert spec.to_json()["attributes"] == attrs


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"type": "latency", "stream": "sideways"}, 400, "stream was invalid"),
        ({"type": "nope"}, 400, "invalid toxic type"),
        ({"type": "latency", "attributes": {"latency": -1}}, 400, "bad request body"),
        ({"type": "latency", "attributes": {"latency": "10"}}, 400, "bad request body"),
        ({"type": "latency", "attributes": {"latency": 1.5}}, 400, "bad request body"),
        ({"type": "latency", "toxicity": 1.5}, 400, "toxicity"),
        ({"type": "latency", "attributes": [1]}, 400, "attributes must be an object"),
        ([], 400, "bad request body"),
    ],
)
def test_bad_toxics_are_refused(body: object, status: int, message: str) -> None:
    with pytest.raises(ProxyRequestError) as err:
        _parse(body)
    assert err.value.status == status
    assert message in str(err.value)


def test_unknown_attributes_ignored_and_integral_floats_accepted() -> None:
    spec = parse_toxic(
        {"type": "bandwidth", "attributes": {"rate": 10.0, "extra": 3}}, seed=None, proxy="p"
    )
    assert spec.attributes == {"rate": 10}


def test_update_merges_attributes_and_keeps_toxicity() -> None:
    spec = parse_toxic(
        {"type": "latency", "toxicity": 0.5, "attributes": {"latency": 10, "jitter": 2}},
        seed=None,
        proxy="p",
    )
    attrs, tox = update_toxic(spec, {"attributes": {"latency": 20}})
    assert attrs == {"latency": 20, "jitter": 2}
    assert tox == 0.5
    assert spec.attributes["latency"] == 10  # validation only, nothing changed yet
    with pytest.raises(ProxyRequestError):
        update_toxic(spec, {"toxicity": -0.1})


def test_seeded_rng_is_reproducible_and_distinct_per_toxic() -> None:
    a = [rng_for(7, "p", "t").random() for _ in range(3)]
    b = [rng_for(7, "p", "t").random() for _ in range(3)]
    c = [rng_for(7, "p", "u").random() for _ in range(3)]
    assert a == b
    assert a != c


def test_toxicity_draw_is_seeded_and_edges_are_exact() -> None:
    def draws(seed: int) -> list[bool]:
        spec = parse_toxic({"type": "noop", "toxicity": 0.5}, seed=seed, proxy="p")
        return [spec.draw() for _ in range(64)]

    assert draws(3) == draws(3)
    assert 5 < sum(draws(3)) < 59
    zero = parse_toxic({"type": "noop", "toxicity": 0}, seed=None, proxy="p")
    one = parse_toxic({"type": "noop", "toxicity": 1}, seed=None, proxy="p")
    assert not any(zero.draw() for _ in range(100))
    assert all(one.draw() for _ in range(100))


def test_zero_attributes_are_accepted_as_the_real_server_does() -> None:
    spec = _parse({"type": "slicer", "attributes": {"average_size": 0, "size_variation": 0}})
    assert spec.attributes == {"average_size": 0, "size_variation": 0, "delay": 0}
    assert _parse({"type": "slicer"}).attributes["average_size"] == 0
