"""A webhook receiver for trying outbound events locally (and for the tests): it records every
POST, verifies it with the `standardwebhooks` library when it knows the endpoint's secret, and
answers the statuses it is told (200 by default).

    python -m devserver.receiver --port 8765 [--secret whsec_...] [--fail 2]

then register http://127.0.0.1:8765/hooks with `billing-admin webhooks create` (the local stack
allows loopback http targets). Each delivery is printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool | None = None  # None: no secret to check with

    def json(self) -> Any:
        return json.loads(self.body)


def _every(_body: Any) -> bool:
    return True


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


@dataclass
class Receiver:
    """Serves on 127.0.0.1:`port` (0 = a free one) in a thread. `statuses` are answered in turn
    (then 200), to the deliveries `answering` accepts (every one by default); `secret` makes it
    verify each delivery."""

    port: int = 0
    secret: str | None = None
    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    answering: Callable[[Any], bool] = field(default_factory=lambda: _every)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._record(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread: threading.Thread | None = None

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified = None
        if self.secret:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._arrived:
            status = self.statuses.pop(0) if self.statuses and self.answering(_json(body)) else 200
            self.deliveries.append(Delivery(path, headers, body, status, verified))
            self._arrived.notify_all()
        return status

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float) -> list[Delivery]:
        """The first `count` deliveries, waiting up to `timeout` seconds for them."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def of_type(self, event_type: str) -> Iterator[Delivery]:
        with self._lock:
            found = list(self.deliveries)
        return (d for d in found if d.json().get("type") == event_type)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.receiver", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--secret", help="the endpoint's whsec_... secret: verify every delivery")
    parser.add_argument("--fail", type=int, default=0, help="answer the first N deliveries 500")
    args = parser.parse_args(argv)
    receiver = Receiver(port=args.port, secret=args.secret, statuses=[500] * args.fail).start()
    print(f"receiving webhooks at {receiver.url} (Ctrl-C to stop)", flush=True)
    seen = 0
    try:
        while True:
            deliveries = receiver.wait_for(seen + 1, 1.0)
            for delivery in deliveries[seen:]:
                print(json.dumps({"status": delivery.status, "verified": delivery.verified,
                                  "webhook-id": delivery.headers.get("webhook-id"), "body": delivery.json()}),
                      flush=True)
            seen = len(deliveries)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
