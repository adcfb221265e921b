"""A real HTTP receiver (``http.server`` in a thread) that verifies Standard Webhooks
signatures with the ``standardwebhooks`` library, for the webhook tests and the bench."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as the receiver saw it."""

    at: float
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any = None


@dataclass
class Receiver:
    """A local webhook receiver on 127.0.0.1.

    ``secret`` verifies every request (``verified`` on each ``Received``); ``script`` is a
    list of responses to give first — a status, ``(status, headers)``, or ``"hang"`` (no
    answer for ``hang_s``) — after which it answers 200. ``received`` keeps every request.
    """

    secret: str | None = None
    script: list = field(default_factory=list)
    hang_s: float = 10.0
    port: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified, payload = False, None
                if receiver.secret:
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        payload = json.loads(body or b"null")
                with receiver.lock:
                    receiver.received.append(
                        Received(time.monotonic(), headers, body, verified, payload)
                    )
                    step = receiver.script.pop(0) if receiver.script else 200
                if step == "hang":
                    receiver._stop.wait(receiver.hang_s)
                    return
                status, extra = (step, {}) if isinstance(step, int) else step
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._stop = threading.Event()

    def of_type(self, event_type: str) -> list[Received]:
        """The requests whose JSON body has this ``type``."""
        with self.lock:
            return [r for r in self.received if json.loads(r.body).get("type") == event_type]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
