"""The served OpenAPI document names every route the API serves, and nothing else."""

from __future__ import annotations

import re

from chaos_rec.toxiproxy.allowlist import Allowlist
from chaos_rec.toxiproxy.api import VERSION, build_app
from chaos_rec.toxiproxy.collection import ProxyCollection
from chaos_rec.toxiproxy.fuzz import _confine_listen, _is_bind_failure
from chaos_rec.toxiproxy.model import TOXIC_ATTRIBUTES
from chaos_rec.toxiproxy.openapi import OPENAPI_PATH, openapi_document


def test_document_covers_exactly_the_routes_served() -> None:
    app = build_app(ProxyCollection(Allowlist.build()))
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    doc = openapi_document(VERSION)
    documented = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert served == documented
    assert (("get", OPENAPI_PATH)) in served
    assert not re.match(r"^/proxies", OPENAPI_PATH)  # cannot shadow a proxy name


def test_document_takes_toxic_types_from_the_one_table() -> None:
    doc = openapi_document(VERSION)
    variants = doc["components"]["schemas"]["ToxicCreate"]["oneOf"]
    by_type = {v["properties"]["type"]["enum"][0]: v for v in variants}
    assert set(by_type) == set(TOXIC_ATTRIBUTES)
    for type_, attrs in TOXIC_ATTRIBUTES.items():
        assert set(by_type[type_]["properties"]["attributes"]["properties"]) == set(attrs)


def test_fuzzing_never_binds_a_chosen_port() -> None:
    assert _confine_listen({"name": "a", "listen": "127.0.0.1:6379"})["listen"] == "127.0.0.1:0"
    assert _confine_listen([{"listen": "[::1]:80"}, {"listen": 5}]) == [
        {"listen": "[::1]:0"},
        {"listen": 5},  # not a string: left for the server to refuse
    ]
    assert _confine_listen({"listen": "nonsense"}) == {"listen": "nonsense"}


def test_only_the_documented_bind_failure_is_excused() -> None:
    assert _is_bind_failure('{"error": "listen tcp 127.0.0.1:1: bind: permission denied"}')
    assert not _is_bind_failure('{"error": "boom", "status": 500}')
    assert not _is_bind_failure("500 Internal Server Error")
