"""A local webhook receiver for the tests: it verifies every signature, can fail its first
requests, and can be stopped and started again on the same port (an outage)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ingest.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


@dataclass
class Received:
    event_id: str
    signed: bool
    body: dict[str, Any]


@dataclass
class Receiver:
    port: int
    secret: str = ""
    fail_first: int = 0
    requests: int = 0
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests += 1
                signed = verify(outer.secret, self.headers.get(TIMESTAMP_HEADER, ""), body,
                                self.headers.get(SIGNATURE_HEADER, ""))
                if outer.requests <= outer.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append(Received(self.headers.get("Idempotency-Key", ""), signed, json.loads(body)))
                self.send_response(204 if signed else 401)
                self.end_headers()

            def log_message(self, *_a: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
