"""The supervisor's loopback control API (tiny JSON-over-HTTP, stdlib server).

Every request must carry the stack's admin token (``Authorization: Bearer <token>``): any
local user can reach a loopback port, only the stack's owner can read the token file.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ControlServer", "Handler"]

# (method, path, json body) -> (status code, json reply)
Handler = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any]]]


class ControlServer:
    """Serve ``handler`` on 127.0.0.1 (a free port) in a daemon thread, for ``token`` holders."""

    def __init__(self, handler: Handler, token: str) -> None:
        outer = handler
        expected = f"Bearer {token}".encode()

        class _Req(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                given = self.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    self._send(401, {"error": "the control API needs the stack's admin token"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self.close_connection = True  # the body's end is unknown
                    self._send(400, {"error": "Content-Length must be a whole number of bytes"})
                    return
                body: dict[str, Any] = {}
                if length:
                    try:
                        parsed = json.loads(self.rfile.read(length))
                    except (ValueError, RecursionError):
                        parsed = None
                    if not isinstance(parsed, dict):
                        self._send(400, {"error": "body must be a JSON object"})
                        return
                    body = parsed
                try:
                    code, reply = outer(method, self.path, body)
                except Exception as exc:  # report, never kill the server thread
                    code, reply = 500, {"error": f"{type(exc).__name__}: {exc}"}
                self._send(code, reply)

            def _send(self, code: int, reply: dict[str, Any]) -> None:
                data = json.dumps(reply).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Req)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
