"""The shared JSON call: answers decoded, a timeout on every request, failures ours (no sockets)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from chaos_rec.errors import ConfigError, ProxyError, StackError
from chaos_rec.jsonhttp import Reply, call

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_answers_are_decoded_and_the_timeout_and_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"name": "fs", "listen": "127.0.0.1:1"})

    with _client(handler) as client:
        reply = call(
            "POST",
            "http://proxy.test/proxies",
            json={"name": "fs"},
            headers={"User-Agent": "chaos-rec-test"},
            timeout=2.5,
            into=ProxyError,
            client=client,
        )
    assert reply == Reply(201, {"name": "fs", "listen": "127.0.0.1:1"}, reply.text) and reply.ok
    (request,) = seen
    assert request.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    assert request.headers["User-Agent"] == "chaos-rec-test"
    assert request.read() == b'{"name":"fs"}'


@pytest.mark.parametrize(
    ("response", "data", "message"),
    [
        (httpx.Response(204), None, "(empty body)"),
        (
            httpx.Response(404, json={"error": "proxy not found"}),
            {"error": "proxy not found"},
            "proxy not found",
        ),
        (
            httpx.Response(500, text="upstream down\nsecond line"),
            "upstream down\nsecond line",
            "upstream down",
        ),
        (httpx.Response(409, json=["not", "a dict"]), ["not", "a dict"], '["not","a dict"]'),
        (httpx.Response(502, text="x" * 500), "x" * 500, "x" * 200),
    ],
)
def test_bodies_and_error_messages(response: httpx.Response, data: object, message: str) -> None:
    with _client(lambda _: response) as client:
        reply = call("GET", "http://proxy.test/p", into=ProxyError, timeout=1.0, client=client)
    assert reply.status == response.status_code and reply.data == data
    assert reply.error_message() == message
    assert reply.ok is (response.status_code < 400)


def test_no_answer_is_the_callers_error_naming_the_call() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with _client(refused) as client, pytest.raises(StackError) as info:
        call("POST", "http://sup.test/signal", into=StackError, timeout=1.0, client=client)
    assert str(info.value) == (
        "POST http://sup.test/signal failed: cannot connect "
        "(ConnectError: [Errno 111] Connection refused)"
    )
    assert isinstance(info.value.__cause__, httpx.ConnectError)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with (
        _client(slow) as client,
        pytest.raises(ProxyError, match=r"^toxiproxy GET / failed: no answer in time"),
    ):
        call(
            "GET",
            "http://p.test/",
            into=ProxyError,
            timeout=1.0,
            client=client,
            what="toxiproxy GET /",
        )


def test_a_malformed_url_is_a_config_error() -> None:
    with (
        _client(lambda _: httpx.Response(200)) as client,
        pytest.raises(ConfigError, match="bad URL"),
    ):
        call("GET", "http://127.0.0.1:port/x", into=ProxyError, timeout=1.0, client=client)


def test_the_timeout_is_required() -> None:
    with pytest.raises(TypeError, match="timeout"):
        call("GET", "http://p.test/", into=ProxyError)  # type: ignore[call-arg]
