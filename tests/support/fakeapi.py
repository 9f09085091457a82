"""A tiny programmable HTTP server standing in for the billing API in the CLI's tests.

Routes are (method, regex) -> handler(request) -> Reply. Unknown routes answer the API's
404 ROUTE_NOT_FOUND. Every request is recorded (method, path, query, headers, JSON body).
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    match: re.Match[str] | None = None

    @property
    def token(self) -> str | None:
        value = self.headers.get("authorization", "")
        return value[7:] if value.startswith("Bearer ") else None


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str = "refused", details: dict | None = None, **headers: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message, "details": details or {}}},
                 {k.replace("_", "-"): v for k, v in headers.items()})


Handler = Callable[[Request], Reply]


class FakeApi:
    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                split = urllib.parse.urlsplit(self.path)
                request = Request(self.command, split.path, dict(urllib.parse.parse_qsl(split.query)),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                reply = fake.dispatch(request)
                payload = reply.body if isinstance(reply.body, bytes) else (
                    reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode())
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, method: str, pattern: str, handler: Handler | Reply | dict) -> None:
        if isinstance(handler, Reply):
            reply = handler
            handler = lambda request: reply  # noqa: E731
        elif isinstance(handler, dict):
            data = handler
            handler = lambda request: Reply(200, data)  # noqa: E731
        self.routes.insert(0, (method, re.compile(pattern), handler))

    def dispatch(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            for method, pattern, handler in self.routes:
                match = pattern.fullmatch(request.path)
                if method == request.method and match:
                    request.match = match
                    return handler(request)
        return error(404, "ROUTE_NOT_FOUND", "no such route")

    def sent(self, method: str | None = None, path_prefix: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(path_prefix)]
