"""The boundary maps every third-party exception to one of ours, and fails when one is missing.

The classes are read from the installed libraries (httpx, gRPC, Redis, chaoslib) and the
standard library (OSError and its kin), so a class a new release adds fails
``test_every_third_party_exception_has_a_row`` until the map gives it a row.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from types import ModuleType

import chaoslib.exceptions
import grpc
import grpc._channel  # what a synchronous stub raises (_InactiveRpcError)
import grpc._interceptor
import grpc.aio
import httpx
import pytest
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel

from chaos_rec import boundary
from chaos_rec.boundary import ERROR_MAP, GRPC_STATUS, is_foreign, translate, translating
from chaos_rec.errors import (
    ChaosRecError,
    ConfigError,
    DrillError,
    FaultError,
    LoadError,
    ProbeError,
    ProxyError,
    StackError,
)

DOMAINS = (ProxyError, StackError, FaultError, ProbeError, LoadError, DrillError)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _exported(module: ModuleType, family: str) -> set[type[BaseException]]:
    """Exception classes a module names that belong to ``family`` (not re-exported builtins)."""
    return {
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__.partition(".")[0] == family
    }


def _subclasses(roots: Iterable[type[BaseException]], family: str) -> set[type[BaseException]]:
    """Every subclass of the roots defined by ``family``, however deep."""
    found: set[type[BaseException]] = set()
    todo = list(roots)
    while todo:
        cls = todo.pop()
        if cls in found or cls.__module__.partition(".")[0] != family:
            continue
        found.add(cls)
        todo += cls.__subclasses__()
    return found


def third_party_exceptions() -> set[type[BaseException]]:
    """Every exception class of httpx, gRPC, Redis and chaoslib, and OSError's whole family."""
    found = _exported(httpx, "httpx")
    found |= _subclasses([httpx.HTTPError, httpx.StreamError, httpx.InvalidURL], "httpx")
    found |= _subclasses([httpx.CookieConflict], "httpx")
    found |= _exported(grpc, "grpc") | _exported(grpc.aio, "grpc")
    found |= _subclasses([grpc.RpcError], "grpc")
    found |= _exported(redis.exceptions, "redis")
    found |= _subclasses([redis.exceptions.RedisError], "redis")
    found |= _exported(chaoslib.exceptions, "chaoslib")
    found |= _subclasses([chaoslib.exceptions.ChaosException], "chaoslib")
    found |= _subclasses([OSError], "builtins")
    found |= {socket.gaierror, socket.herror} | _exported(ssl, "ssl")
    return found


def _instance(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` with the arguments it needs."""
    if issubclass(cls, httpx.HTTPStatusError):
        request = httpx.Request("GET", "http://127.0.0.1:1/x")
        return cls("boom", request=request, response=httpx.Response(503, request=request))
    if issubclass(cls, grpc.aio.AioRpcError):
        meta = grpc.aio.Metadata()
        return cls(grpc.StatusCode.UNAVAILABLE, meta, meta, details="boom")
    if issubclass(cls, grpc._channel._InactiveRpcError | grpc._channel._Rendezvous):
        state = grpc._channel._RPCState((), None, None, grpc.StatusCode.UNAVAILABLE, "boom")
        if issubclass(cls, grpc._channel._InactiveRpcError):
            return cls(state)
        return cls(state, None, None, None)  # type: ignore[arg-type]
    if issubclass(cls, grpc._interceptor._FailureOutcome):
        return cls(RuntimeError("boom"), None)  # type: ignore[arg-type]
    if issubclass(cls, redis.exceptions.AskError):  # parses "<slot> <host:port>"
        return cls("3999 127.0.0.1:6381")
    try:
        return cls("boom")
    except TypeError:  # httpx's stream errors take no argument
        return cls()


class FakeCall(grpc.RpcError):
    """A failed RPC as grpc raises it: an RpcError that is also a Call (code, details)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_every_third_party_exception_has_a_row() -> None:
    found = {_name(cls) for cls in third_party_exceptions()}
    assert len(found) > 100  # the walk really found the libraries' classes
    unmapped = sorted(found - set(ERROR_MAP))
    assert unmapped == [], f"add a row to chaos_rec.boundary.ERROR_MAP for {unmapped}"
    stale = sorted(set(ERROR_MAP) - found)
    assert stale == [], f"rows of classes the libraries no longer have: {stale}"


def test_every_grpc_status_code_has_a_reason() -> None:
    assert sorted(c.name for c in grpc.StatusCode) == sorted(GRPC_STATUS)


@pytest.mark.parametrize("cls", sorted(third_party_exceptions(), key=_name), ids=_name)
def test_each_maps_to_a_specific_error_with_one_clear_line(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    assert is_foreign(exc)
    reason = boundary.reason_for(exc)
    assert reason is not None and reason.words.strip()
    for into in DOMAINS:
        err = translate(exc, "GET http://127.0.0.1:1/x", into)
        assert type(err) is (reason.error or into)
        assert isinstance(err, ChaosRecError) and type(err) is not ChaosRecError
        text = str(err)
        assert text.startswith(f"GET http://127.0.0.1:1/x failed: {reason.words} (")
        assert cls.__name__ in text and "\n" not in text and len(text) < 400
    with (
        pytest.raises(reason.error or FaultError) as info,
        translating("drop the link", FaultError),
    ):
        raise exc
    assert info.value.__cause__ is exc


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_grpc_errors_are_worded_by_their_status_code(code: grpc.StatusCode) -> None:
    err = translate(FakeCall(code, "replica-1 said no"), "ModelInfer on replica-1", ProbeError)
    reason = GRPC_STATUS[code.name]
    assert type(err) is (reason.error or ProbeError)
    assert str(err) == (
        f"ModelInfer on replica-1 failed: {reason.words} (FakeCall: {code.name}: replica-1 said no)"
    )


def test_the_line_says_what_failed_and_why() -> None:
    err = translate(
        httpx.ConnectError("[Errno 111] Connection refused"),
        "toxiproxy GET http://127.0.0.1:1/version",
        ProxyError,
    )
    assert type(err) is ProxyError
    assert str(err) == (
        "toxiproxy GET http://127.0.0.1:1/version failed: cannot connect "
        "(ConnectError: [Errno 111] Connection refused)"
    )
    assert str(translate(TimeoutError(), "round trip", FaultError)) == (
        "round trip failed: timed out (TimeoutError)"
    )
    multi = httpx.RemoteProtocolError("\n  Server disconnected\nwithout a response\n")
    assert str(translate(multi, "POST /signal", StackError, verb="was cut short")) == (
        "POST /signal was cut short: the server broke the HTTP protocol "
        "(RemoteProtocolError: Server disconnected)"
    )
    assert str(translate(httpx.ReadTimeout(""), "x", ProbeError, verb="")) == (
        "x: no answer in time (ReadTimeout)"
    )


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.InvalidURL("Invalid port: 'x'"), "bad URL"),
        (httpx.UnsupportedProtocol("Request URL is missing an 'http://'"), "bad URL"),
        (chaoslib.exceptions.InvalidExperiment("no method"), "bad experiment"),
        (chaoslib.exceptions.InvalidActivity("no such function"), "bad activity"),
        (redis.exceptions.AuthenticationError("invalid password"), "not authorised"),
        (FakeCall(grpc.StatusCode.UNAUTHENTICATED, "no token"), "not authorised"),
    ],
)
def test_bad_input_is_a_config_error_whoever_called(exc: BaseException, words: str) -> None:
    for into in DOMAINS:
        err = translate(exc, "call", into)
        assert type(err) is ConfigError and str(err).startswith(f"call failed: {words}")


def test_transport_failures_are_the_callers_kind() -> None:
    cases: list[tuple[BaseException, str]] = [
        (httpx.ConnectError("refused"), "cannot connect"),
        (httpx.ReadTimeout("timed out"), "no answer in time"),
        (redis.exceptions.ConnectionError("Error 111"), "cannot connect"),
        (redis.exceptions.TimeoutError("Timeout reading"), "timed out"),
        (FakeCall(grpc.StatusCode.UNAVAILABLE, "connect failed"), "unavailable"),
        (FakeCall(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), "timed out"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (chaoslib.exceptions.ActivityFailed("kill failed"), "activity failed"),
    ]
    for exc, words in cases:
        err = translate(exc, "call", LoadError)
        assert type(err) is LoadError and str(err).startswith(f"call failed: {words} (")


def test_a_class_a_library_adds_later_still_maps_but_has_no_row() -> None:
    new_transport = type("BrandNewError", (httpx.TransportError,), {"__module__": "httpx"})
    moved = type("MovedAway", (Exception,), {"__module__": "redis._private"})
    for cls, words in ((new_transport, "network error"), (moved, "Redis error")):
        assert _name(cls) not in ERROR_MAP  # the coverage test would name it
        err = translate(cls("boom"), "call", ProbeError)
        assert (
            type(err) is ProbeError and str(err) == f"call failed: {words} ({cls.__name__}: boom)"
        )


def test_ours_and_plain_python_errors_pass_unchanged() -> None:
    for exc in (FaultError("mine"), ValueError("bad"), KeyError("k"), RuntimeError("bug")):
        assert not is_foreign(exc)
        with pytest.raises(type(exc)) as info, translating("call", ProxyError):
            raise exc
        assert info.value is exc
    with pytest.raises(TypeError, match="not a third-party error"):
        translate(ValueError("bad"), "call", ProxyError)


def test_rewrap_turns_another_layer_of_ours_into_the_callers() -> None:
    cause = ProxyError("toxiproxy POST /proxies/fs/toxics: 409 toxic already exists")
    with (
        pytest.raises(FaultError) as info,
        translating(
            "add_toxic latency on link fs", FaultError, verb="refused", rewrap=(ProxyError,)
        ),
    ):
        raise cause
    assert str(info.value) == (
        "add_toxic latency on link fs refused: "
        "toxiproxy POST /proxies/fs/toxics: 409 toxic already exists"
    )
    assert info.value.__cause__ is cause
    same = FaultError("already ours")
    with pytest.raises(FaultError) as info, translating("x", FaultError, rewrap=(ProxyError,)):
        raise same
    assert info.value is same
    other = StackError("not in rewrap")
    with pytest.raises(StackError) as info, translating("x", FaultError, rewrap=(ProxyError,)):
        raise other
    assert info.value is other


def test_into_must_be_a_specific_error() -> None:
    with pytest.raises(TypeError, match="subclass of ChaosRecError"):
        translate(httpx.ConnectError("x"), "call", ChaosRecError)
    with pytest.raises(TypeError, match="subclass of ChaosRecError"):
        translate(httpx.ConnectError("x"), "call", ValueError)  # type: ignore[arg-type]
