"""A real HTTP receiver for webhook tests: records each delivery, answers as told."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int  # what the receiver answered

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str) -> dict:
        """The payload, verified with ``standardwebhooks`` (raises if the signature fails)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """On 127.0.0.1; ``answers``: statuses to give first, then ``default``."""

    def __init__(self, answers: list[int] | None = None, default: int = 200,
                 delay: float = 0.0):
        self.answers = list(answers or [])
        self.default = default
        self.delay = delay  # seconds before each answer
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.default
                    receiver.deliveries.append(Delivery(
                        {k.lower(): v for k, v in self.headers.items()}, body,
                        time.monotonic(), status))
                time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks?token=t"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def types(self, secret: str) -> list[str]:
        return [d.verified(secret)["type"] for d in self.accepted()]
