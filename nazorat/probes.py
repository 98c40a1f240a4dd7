"""A probe port for a process without the API (``serve --no-api --health-port N``).

GET ``/healthz`` (liveness: the event loop answers) and GET ``/readyz`` (the same body and
status as the API's, from the same ``Health``; no database probe of its own, the ingest
worker reports the database) over a minimal HTTP/1.1 responder: one request per
connection, no body read, nothing else served. It holds no personal data, so it needs no
token; bind it to an internal address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from telemetry.health import Health

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
_MAX_HEADER_LINES = 100


def respond(health: Health, method: str, path: str) -> tuple[int, dict[str, Any]]:
    if method not in ("GET", "HEAD"):
        return 405, {"error": {"code": "method_not_allowed", "message": "GET only"}}
    if path.split("?", 1)[0] == "/healthz":
        return 200, {"status": "ok"}
    if path.split("?", 1)[0] == "/readyz":
        r = health.readiness()
        return (200 if r.ready else 503), r.as_json()
    return 404, {"error": {"code": "not_found", "message": "only /healthz and /readyz"}}


async def serve_probes(health: Health, host: str, port: int, stop: asyncio.Event,
                       started: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` (``started`` is set once listening); raises ``OSError`` when
    the port cannot be bound."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await asyncio.wait_for(reader.readline(), 5.0)).decode("latin-1").split()
            for _ in range(_MAX_HEADER_LINES):
                if (await asyncio.wait_for(reader.readline(), 5.0)) in (b"\r\n", b"\n", b""):
                    break
            method = request[0] if request else ""
            status, body = respond(health, method, request[1]) if len(request) >= 2 else (
                400, {"error": {"code": "bad_request", "message": "bad request line"}})
            data = json.dumps(body).encode()
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(head if method == "HEAD" else head + data)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port)
    async with server:
        if started is not None:
            started.set()
        await stop.wait()


__all__ = ["respond", "serve_probes"]
