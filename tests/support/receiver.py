"""A local HTTP receiver for notification tests: records every POST, answers as told."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """``url`` takes POSTs; ``answers`` is a list of status codes used in turn (then 200)."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until ``count`` requests have arrived (a condition, not a sleep)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(f"{len(self.requests)} requests arrived, expected {count}")
            return list(self.requests)


@contextlib.contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 and a free port, for the duration of the block."""
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = box[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.arrived:
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.requests.append(
                    Received("POST", self.path, dict(self.headers.items()), body)
                )
                receiver.arrived.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
