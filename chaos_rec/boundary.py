"""Third-party exceptions become ours here, once: httpx, gRPC, Redis, Chaos Toolkit and OSError.

::

    with translating("toxiproxy GET http://127.0.0.1:8474/proxies", ProxyError):
        httpx.request(...)

raises, from the httpx error, one line that says what failed and why::

    ProxyError: toxiproxy GET http://127.0.0.1:8474/proxies failed: cannot connect
    (ConnectError: [Errno 111] Connection refused)

Each third-party class has its own row in :data:`ERROR_MAP`, keyed by its qualified name (so
this module imports none of those libraries). A row says what went wrong in a few words and,
for bad input whoever called (a malformed URL, an invalid experiment, wrong credentials), that
the error is a :class:`ConfigError`; every other row is the caller's kind of failure (``into``:
a ``ProxyError`` for the fault proxy, a ``StackError`` for the supervisor, …). gRPC errors are
worded by their status code (:data:`GRPC_STATUS`). A class a library adds later still maps
through its base class (else through its library's row in :data:`FAMILIES`), and
``tests/unit/test_boundary.py`` fails until it has a row of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Final, NamedTuple

from chaos_rec.errors import ChaosRecError, ConfigError

__all__ = [
    "ERROR_MAP",
    "FAMILIES",
    "GRPC_STATUS",
    "Reason",
    "is_foreign",
    "reason_for",
    "translate",
    "translating",
]


class Reason(NamedTuple):
    """What went wrong in words, and the error class when it does not depend on the caller."""

    words: str
    error: type[ChaosRecError] | None = None  # None: the caller's ``into``


CONNECT: Final = Reason("cannot connect")
RESOLVE: Final = Reason("cannot resolve the host name")
TIMEOUT: Final = Reason("timed out")
LOST: Final = Reason("the connection broke")
PROTOCOL: Final = Reason("protocol error")
TLS: Final = Reason("TLS error")
ANSWER: Final = Reason("unreadable answer")
REFUSED: Final = Reason("refused by the server")
BUSY: Final = Reason("the server is busy or still loading; retry later")
NOT_FOUND: Final = Reason("not found")
DENIED: Final = Reason("permission denied")
CANCELLED: Final = Reason("cancelled")
MISUSE: Final = Reason("client misused; a bug in chaos_rec")
NETWORK: Final = Reason("network error")
SYSTEM: Final = Reason("system error")
BAD_URL: Final = Reason("bad URL; check the configured address", ConfigError)
BAD_CREDENTIALS: Final = Reason("not authorised; check the credentials", ConfigError)
INVALID: Final = Reason("invalid", ConfigError)

ERROR_MAP: Final[Mapping[str, Reason]] = {
    # httpx (every class httpx exports)
    "httpx.HTTPError": NETWORK,
    "httpx.RequestError": NETWORK,
    "httpx.TransportError": NETWORK,
    "httpx.TimeoutException": TIMEOUT,
    "httpx.ConnectTimeout": Reason("connect timed out"),
    "httpx.ReadTimeout": Reason("no answer in time"),
    "httpx.WriteTimeout": Reason("send timed out"),
    "httpx.PoolTimeout": Reason("no free connection in time"),
    "httpx.NetworkError": NETWORK,
    "httpx.ConnectError": CONNECT,
    "httpx.ReadError": LOST,
    "httpx.WriteError": LOST,
    "httpx.CloseError": LOST,
    "httpx.ProtocolError": PROTOCOL,
    "httpx.LocalProtocolError": Reason("malformed request"),
    "httpx.RemoteProtocolError": Reason("the server broke the HTTP protocol"),
    "httpx.ProxyError": Reason("the HTTP proxy of HTTP_PROXY/HTTPS_PROXY failed"),
    "httpx.UnsupportedProtocol": BAD_URL,
    "httpx.InvalidURL": BAD_URL,
    "httpx.DecodingError": ANSWER,
    "httpx.TooManyRedirects": Reason("too many redirects"),
    "httpx.HTTPStatusError": REFUSED,
    "httpx.CookieConflict": MISUSE,
    "httpx.StreamError": MISUSE,
    "httpx.StreamConsumed": MISUSE,
    "httpx.StreamClosed": MISUSE,
    "httpx.ResponseNotRead": MISUSE,
    "httpx.RequestNotRead": MISUSE,
    # gRPC (what grpc and grpc.aio export, every RpcError; one with a status code is worded
    # by GRPC_STATUS)
    "grpc.RpcError": Reason("RPC failed"),
    "grpc.aio._call.AioRpcError": Reason("RPC failed"),
    "grpc._channel._InactiveRpcError": Reason("RPC failed"),
    "grpc._channel._Rendezvous": Reason("RPC failed"),
    "grpc._channel._MultiThreadedRendezvous": Reason("RPC failed"),
    "grpc._channel._SingleThreadedRendezvous": Reason("RPC failed"),
    "grpc._interceptor._FailureOutcome": Reason("RPC failed"),
    "grpc.FutureTimeoutError": TIMEOUT,
    "grpc.FutureCancelledError": CANCELLED,
    "grpc._cython.cygrpc.BaseError": Reason("gRPC error"),
    "grpc._cython.cygrpc.AbortError": Reason("RPC aborted"),
    "grpc._cython.cygrpc.InternalError": Reason("gRPC internal error"),
    "grpc._cython.cygrpc.UsageError": MISUSE,
    # Redis (every class of redis.exceptions, every RedisError)
    "redis.exceptions.RedisError": Reason("Redis error"),
    "redis.exceptions.ConnectionError": CONNECT,
    "redis.exceptions.TimeoutError": TIMEOUT,
    "redis.exceptions.BusyLoadingError": BUSY,
    "redis.exceptions.MaxConnectionsError": Reason("too many connections"),
    "redis.exceptions.MaxClientsReachedError": Reason("the server is at its maxclients limit"),
    "redis.sentinel.MasterNotFoundError": Reason("no Redis master found by the sentinels"),
    "redis.sentinel.SlaveNotFoundError": Reason("no Redis replica found by the sentinels"),
    "redis.asyncio.sentinel.MasterNotFoundError": Reason("no Redis master found by the sentinels"),
    "redis.asyncio.sentinel.SlaveNotFoundError": Reason("no Redis replica found by the sentinels"),
    "redis.exceptions.AuthenticationError": BAD_CREDENTIALS,
    "redis.exceptions.AuthorizationError": BAD_CREDENTIALS,
    "redis.exceptions.AuthenticationWrongNumberOfArgsError": BAD_CREDENTIALS,
    "redis.exceptions.ExternalAuthProviderError": BAD_CREDENTIALS,
    "redis.exceptions.NoPermissionError": BAD_CREDENTIALS,
    "redis.exceptions.ResponseError": REFUSED,
    "redis.exceptions.ReadOnlyError": Reason("the server is read-only; is it a replica?"),
    "redis.exceptions.OutOfMemoryError": Reason("the server is out of memory"),
    "redis.exceptions.TryAgainError": BUSY,
    "redis.exceptions.NoScriptError": REFUSED,
    "redis.exceptions.ExecAbortError": REFUSED,
    "redis.exceptions.ModuleError": REFUSED,
    "redis.exceptions.NoSuchFieldsetError": REFUSED,
    "redis.exceptions.InvalidResponse": ANSWER,
    "redis.exceptions.DataError": MISUSE,
    "redis.exceptions.PubSubError": MISUSE,
    "redis.exceptions.WatchError": Reason("a watched key changed"),
    "redis.exceptions.LockError": Reason("lock error"),
    "redis.exceptions.LockNotOwnedError": Reason("lock not owned"),
    "redis.exceptions.ChildDeadlockedError": MISUSE,
    "redis.exceptions.IncorrectPolicyType": MISUSE,
    "redis.exceptions.ClusterError": Reason("Redis cluster error"),
    "redis.exceptions.ClusterDownError": BUSY,
    "redis.exceptions.MasterDownError": BUSY,
    "redis.exceptions.ClusterCrossSlotError": REFUSED,
    "redis.exceptions.AskError": Reason("Redis cluster redirect"),
    "redis.exceptions.MovedError": Reason("Redis cluster redirect"),
    "redis.exceptions.RedisClusterException": Reason("Redis cluster error"),
    "redis.exceptions.RedisClusterUnreachableError": Reason("no node of the Redis cluster answers"),
    "redis.exceptions.CrossSlotTransactionError": REFUSED,
    "redis.exceptions.SlotNotCoveredError": BUSY,
    "redis.exceptions.InvalidPipelineStack": MISUSE,
    # Chaos Toolkit (every class of chaoslib.exceptions)
    "chaoslib.exceptions.ChaosException": Reason("Chaos Toolkit error"),
    "chaoslib.exceptions.ActivityFailed": Reason("activity failed"),
    "chaoslib.exceptions.InterruptExecution": Reason("execution interrupted"),
    "chaoslib.exceptions.ExperimentExitedException": Reason("the experiment exited"),
    "chaoslib.exceptions.DiscoveryFailed": Reason("discovery failed", ConfigError),
    "chaoslib.exceptions.InvalidExperiment": Reason("bad experiment", ConfigError),
    "chaoslib.exceptions.InvalidActivity": Reason("bad activity", ConfigError),
    "chaoslib.exceptions.InvalidControl": Reason("bad control", ConfigError),
    "chaoslib.exceptions.InvalidSource": Reason("bad source", ConfigError),
    "chaoslib.exceptions.ControlPythonFunctionLoadingError": Reason(
        "cannot load the control", ConfigError
    ),
    # OSError (sockets, files, processes)
    "builtins.OSError": SYSTEM,
    "builtins.BlockingIOError": Reason("would block"),
    "builtins.ChildProcessError": Reason("no such child process"),
    "builtins.ConnectionError": LOST,
    "builtins.BrokenPipeError": LOST,
    "builtins.ConnectionAbortedError": LOST,
    "builtins.ConnectionResetError": Reason("connection reset"),
    "builtins.ConnectionRefusedError": Reason("connection refused"),
    "builtins.TimeoutError": TIMEOUT,
    "builtins.FileExistsError": Reason("already exists"),
    "builtins.FileNotFoundError": NOT_FOUND,
    "builtins.IsADirectoryError": Reason("is a directory"),
    "builtins.NotADirectoryError": Reason("not a directory"),
    "builtins.PermissionError": DENIED,
    "builtins.ProcessLookupError": Reason("no such process"),
    "builtins.InterruptedError": Reason("interrupted by a signal"),
    "socket.gaierror": RESOLVE,
    "socket.herror": RESOLVE,
    "ssl.SSLError": TLS,
    "ssl.SSLCertVerificationError": Reason("TLS certificate not trusted"),
    "ssl.SSLEOFError": TLS,
    "ssl.SSLSyscallError": TLS,
    "ssl.SSLWantReadError": TLS,
    "ssl.SSLWantWriteError": TLS,
    "ssl.SSLZeroReturnError": TLS,
}

# gRPC status code name -> reason (grpc.StatusCode)
GRPC_STATUS: Final[Mapping[str, Reason]] = {
    "OK": Reason("RPC failed"),
    "CANCELLED": CANCELLED,
    "UNKNOWN": Reason("the server failed"),
    "INVALID_ARGUMENT": REFUSED,
    "DEADLINE_EXCEEDED": TIMEOUT,
    "NOT_FOUND": NOT_FOUND,
    "ALREADY_EXISTS": Reason("already exists"),
    "PERMISSION_DENIED": BAD_CREDENTIALS,
    "RESOURCE_EXHAUSTED": Reason("the server is overloaded"),
    "FAILED_PRECONDITION": Reason("not ready; failed precondition"),
    "ABORTED": Reason("aborted"),
    "OUT_OF_RANGE": REFUSED,
    "UNIMPLEMENTED": Reason("not implemented by the server"),
    "INTERNAL": Reason("the server failed"),
    "UNAVAILABLE": Reason("unavailable"),
    "DATA_LOSS": Reason("data loss"),
    "UNAUTHENTICATED": BAD_CREDENTIALS,
}

# the reason of an exception of these libraries that no row names (a class added later)
FAMILIES: Final[Mapping[str, Reason]] = {
    "httpx": NETWORK,
    "httpcore": NETWORK,
    "grpc": Reason("gRPC error"),
    "redis": Reason("Redis error"),
    "chaoslib": Reason("Chaos Toolkit error"),
    "kubernetes": Reason("Kubernetes API error"),
    "urllib3": NETWORK,
    "websocket": Reason("the exec stream broke"),
}


def _key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _grpc_status(exc: BaseException) -> tuple[str, str] | None:
    """(status code name, details) of a gRPC error that carries them."""
    if "grpc.RpcError" not in {_key(c) for c in type(exc).__mro__}:
        return None
    try:
        code = exc.code()  # type: ignore[attr-defined]
        details = exc.details()  # type: ignore[attr-defined]
    except Exception:  # a bare RpcError has neither
        return None
    return str(getattr(code, "name", code)), str(details or "")


def reason_for(exc: BaseException) -> Reason | None:
    """The row that words ``exc``; None when it is not a third-party error we translate."""
    status = _grpc_status(exc)
    if status is not None and status[0] in GRPC_STATUS:
        return GRPC_STATUS[status[0]]
    mro = type(exc).__mro__
    for cls in mro:
        reason = ERROR_MAP.get(_key(cls))
        if reason is not None:
            return reason
    for cls in mro:
        family = FAMILIES.get(cls.__module__.partition(".")[0])
        if family is not None:
            return family
    return None


def is_foreign(exc: BaseException) -> bool:
    """True for an exception of httpx, gRPC, Redis, Chaos Toolkit, or an OSError."""
    return not isinstance(exc, ChaosRecError) and reason_for(exc) is not None


def _detail(exc: BaseException) -> str:
    status = _grpc_status(exc)
    try:
        text = f"{status[0]}: {status[1]}" if status is not None else str(exc)
    except Exception:  # an exception whose str() fails still gets its type named
        text = ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    name = type(exc).__name__
    return f"{name}: {first[:200]}" if first else name


def translate(
    exc: BaseException, what: str, into: type[ChaosRecError], *, verb: str = "failed"
) -> ChaosRecError:
    """Our error for a third-party one: ``<what> <verb>: <reason> (<Type>: <first line>)``."""
    if into is ChaosRecError or not issubclass(into, ChaosRecError):
        raise TypeError(f"into must be a subclass of ChaosRecError, got {into!r}")
    reason = reason_for(exc)
    if reason is None:
        raise TypeError(f"{type(exc).__name__} is not a third-party error chaos_rec translates")
    head = f"{what} {verb}" if verb else what
    error = reason.error or into
    return error(f"{head}: {reason.words} ({_detail(exc)})")


@contextlib.contextmanager
def translating(
    what: str,
    into: type[ChaosRecError],
    *,
    verb: str = "failed",
    rewrap: tuple[type[ChaosRecError], ...] = (),
) -> Iterator[None]:
    """Raise a third-party error of the block as ours (see :func:`translate`), ``from`` it.

    Our own errors pass unchanged, except those of a class in ``rewrap`` (say a
    ``ProxyError`` where the caller reports a ``FaultError``): they become
    ``into("<what> <verb>: <their message>")``.
    """
    try:
        yield
    except ChaosRecError as exc:
        if isinstance(exc, rewrap) and not isinstance(exc, into):
            head = f"{what} {verb}" if verb else what
            raise into(f"{head}: {exc}") from exc
        raise
    except Exception as exc:
        if not is_foreign(exc):
            raise
        raise translate(exc, what, into, verb=verb) from exc
