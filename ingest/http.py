"""The HTTP ingest listener (default port 5055): OsmAnd / Traccar Client and OwnTracks HTTP
mode, on the ingest side (not the officers' API), into the same pipeline as MQTT.

Every answer comes after the pipeline's transaction: 200 means the fix is committed, so
the app's own retry queue gives at-least-once (a retry is a no-op: positions are unique
on (device, device time)). What a client can get wrong is answered with a 4xx and, where
something reached us, a dead letter with its reason (the secret is never in it):

=====================================  =====  ===============================================
request                                status dead-letter reason
=====================================  =====  ===============================================
OsmAnd without a secret                401    missing device secret
OsmAnd with a wrong or unknown secret  401    wrong device secret (unknown devices read the same)
OsmAnd body that does not decode       400    the decoder's reason
OwnTracks without/with wrong password  401    wrong OwnTracks password
OwnTracks user/device not bound        401    unbound OwnTracks identity
body over 256 KiB                      413    payload too large
database down                          503    (nothing stored; the app retries)
=====================================  =====  ===============================================

Routes: ``/`` and ``/t/{device_secret}`` (OsmAnd: GET or POST, query string, urlencoded
form, JSON object or array; the secret may also be the ``secret`` parameter), and
``/owntracks`` (``/pub`` too, the Recorder's path; POST of OwnTracks JSON with Basic auth).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ingest.connection import LazyConnection
from telemetry import osmand, owntracks
from telemetry.errors import DecodeError, StorageError
from telemetry.model import DeadLetter, Decoded, FixAttributes
from telemetry.pipeline import BatchOutcome, Pipeline
from telemetry.store import interop as store

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 256 * 1024
DEFAULT_PORT = 5055
OSMAND_TOPIC = "http/osmand"


class _RejectedError(Exception):
    def __init__(self, status: int, reason: str, dead: DeadLetter | None) -> None:
        self.status = status
        self.reason = reason
        self.dead = dead
        super().__init__(reason)


def _redacted(query: bytes) -> bytes:
    """A query string or form body without its secret parameter, for a dead letter."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, "***" if k in osmand.SECRET_KEYS else v) for k, v in pairs]).encode()


def _digest_matches(given: str, stored: bytes | None) -> bool:
    # compared in constant time; an unknown device compares against a dummy digest, so
    # both cases take the same work
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), stored or b"\0" * 32) and stored is not None


class HttpIngest:
    """The ASGI app and its state; ``serve`` runs it under uvicorn until ``stop``."""

    def __init__(self, *, pipeline: Pipeline, database_url: str) -> None:
        self._pipeline = pipeline
        self._lookups = LazyConnection(database_url, "HTTP ingest lookup failed")
        self._sent_regions: dict[tuple[str, str], str] = {}  # binding -> digest of the last setWaypoints sent
        self.app = Starlette(routes=[
            Route("/", self._osmand, methods=["GET", "POST"]),
            Route("/t/{secret}", self._osmand, methods=["GET", "POST"]),
            Route("/owntracks", self._owntracks, methods=["POST"]),
            Route("/pub", self._owntracks, methods=["POST"]),
        ])

    # --- plumbing ----------------------------------------------------------------------
    async def _body(self, request: Request, topic: str) -> bytes:
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BODY_BYTES:
            raise _RejectedError(413, "payload too large", DeadLetter(topic, f"payload too large ({size} bytes)", b""))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise _RejectedError(413, "payload too large",
                                DeadLetter(topic, f"payload too large (> {MAX_BODY_BYTES} bytes)", b""))
        return body

    async def _commit(self, decoded: Decoded) -> BatchOutcome:
        return await asyncio.to_thread(self._pipeline.process_decoded, decoded)

    async def _answer(self, work: Callable[[], Any]) -> Response:
        try:
            return await work()  # type: ignore[no-any-return]
        except _RejectedError as exc:
            if exc.dead is not None:
                try:
                    await self._commit(Decoded(dead=[exc.dead]))
                except StorageError:
                    log.warning("dead letter not stored (database down): %s", exc.dead.reason)
            return JSONResponse({"error": exc.reason}, status_code=exc.status)
        except StorageError as exc:
            log.warning("HTTP ingest: %s", exc)
            return JSONResponse({"error": "storage unavailable, retry later"}, status_code=503,
                                headers={"Retry-After": "5"})

    # --- OsmAnd / Traccar Client ----------------------------------------------------------
    async def _osmand(self, request: Request) -> Response:
        return await self._answer(lambda: self._osmand_work(request))

    async def _osmand_work(self, request: Request) -> Response:
        body = await self._body(request, OSMAND_TOPIC)
        query = request.url.query.encode()
        json_body = "json" in request.headers.get("content-type", "")
        query_params = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        # as Traccar: the query string's parameters, else the body's; a query string that
        # carries only the secret leaves the report to the body
        in_query = [p for p in query_params if p[0] not in osmand.SECRET_KEYS]
        params: list[tuple[str, str]] = []
        raw = _redacted(query) if in_query else (body[:4096] if json_body else _redacted(body))
        reports: list[osmand.OsmAndReport | DecodeError]
        try:
            if in_query:
                params = query_params
                reports = [osmand.decode_params(params)]
            elif json_body:
                reports = osmand.decode_json(_json(body))
            else:
                try:
                    params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise DecodeError("body is neither an urlencoded form nor JSON") from exc
                reports = [osmand.decode_params(params)]
        except DecodeError as exc:
            raise _RejectedError(400, exc.reason, DeadLetter(OSMAND_TOPIC, exc.reason, raw)) from exc
        given = {**dict(params), **dict(query_params)}
        secret = request.path_params.get("secret") or given.get("secret") or given.get("key")
        good = [r for r in reports if isinstance(r, osmand.OsmAndReport)]
        bad = [r for r in reports if isinstance(r, DecodeError)]
        if not good:
            reason = bad[0].reason if bad else "no report"
            raise _RejectedError(400, reason, DeadLetter(OSMAND_TOPIC, reason, raw))
        if not secret:
            raise _RejectedError(401, "missing device secret", DeadLetter(OSMAND_TOPIC, "missing device secret", raw))
        devices = sorted({r.device_id for r in good})
        stored = await asyncio.to_thread(self._lookups.run, lambda c: [store.http_secret_hash(c, d) for d in devices])
        if not all([_digest_matches(secret, h) for h in stored]):
            raise _RejectedError(401, "wrong device secret",
                                 DeadLetter(OSMAND_TOPIC, "wrong device secret (or unknown device)", raw))
        decoded = Decoded(dead=[DeadLetter(OSMAND_TOPIC, f"report[{i}]: {e.reason}", raw)
                                for i, e in enumerate(reports) if isinstance(e, DecodeError)])
        for r in good:
            if r.fix is not None:
                decoded.fixes.append(r.fix)
            if r.status is not None:
                decoded.statuses.append(r.status)
            if r.attributes:
                decoded.attributes.append(_attrs(r))
        out = await self._commit(decoded)
        return JSONResponse({"stored": out.stored, "duplicates": out.duplicates, "rejected": len(bad)})

    # --- OwnTracks HTTP mode --------------------------------------------------------------
    async def _owntracks(self, request: Request) -> Response:
        return await self._answer(lambda: self._owntracks_work(request))

    async def _owntracks_work(self, request: Request) -> Response:
        user = request.headers.get("x-limit-u") or request.query_params.get("u") or ""
        device = request.headers.get("x-limit-d") or request.query_params.get("d") or ""
        named = bool(owntracks.NAME_RE.match(user) and owntracks.NAME_RE.match(device))
        topic = f"http/owntracks/{user}/{device}" if named else "http/owntracks"
        body = await self._body(request, topic)
        if not body:
            return JSONResponse([])  # a deleted friend: zero-length bodies are ignored
        login, password = _basic(request.headers.get("authorization", ""))
        if not named:
            raise _RejectedError(400, "X-Limit-U/X-Limit-D (or ?u=&d=) must name the user and device",
                            DeadLetter(topic, "bad OwnTracks topic (user/device)", body[:4096]))
        binding = await asyncio.to_thread(self._lookups.run, lambda c: store.owntracks_binding(c, user, device))
        if binding is None:
            raise _RejectedError(401, "unbound OwnTracks identity",
                            DeadLetter(topic, "unbound OwnTracks identity", body[:4096]))
        if login != user or not _digest_matches(password, bytes(binding["secret_hash"])):
            raise _RejectedError(401, "wrong OwnTracks password", DeadLetter(topic, "wrong OwnTracks password", body[:4096]))
        try:
            decoded = owntracks.decode_object(binding["device_id"], _json(body))
        except DecodeError as exc:
            raise _RejectedError(400, exc.reason, DeadLetter(topic, exc.reason, body[:4096])) from exc
        await self._commit(decoded)
        reply: list[dict[str, Any]] = []
        if binding["push_zones"]:
            cmd = await asyncio.to_thread(self._lookups.run,
                                          lambda c: owntracks.set_waypoints(store.regions_for(c, binding["device_id"])))
            digest = hashlib.sha256(json.dumps(cmd, sort_keys=True).encode()).hexdigest()
            if self._sent_regions.get((user, device)) != digest:
                reply.append(cmd)
                self._sent_regions[(user, device)] = digest
        return JSONResponse(reply)

    # --- serving --------------------------------------------------------------------------
    async def serve(self, host: str, port: int, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        server = _Server(uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off"))
        # bound here, not by uvicorn, which calls sys.exit when it cannot bind: a taken port
        # is then a task failure the supervisor restarts with backoff, not the engine's end
        try:
            sock = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise RuntimeError(f"the HTTP ingest listener could not serve on {host}:{port}: {exc}") from exc
        waiter = asyncio.ensure_future(stop.wait())
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn sets a flag, no event)
                await asyncio.sleep(0.05)
            if started is not None and server.started:
                started.set()
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            await task
        finally:
            sock.close()
            waiter.cancel()
            await asyncio.to_thread(self._lookups.close)
        if not stop.is_set():
            raise RuntimeError("the HTTP ingest server stopped on its own")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity), as the wire format reads it."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"not valid JSON: {str(exc)[:120]}") from exc


def _attrs(r: osmand.OsmAndReport) -> FixAttributes:
    return FixAttributes(r.device_id, r.time_ms, r.attributes)


def _basic(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        login, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    return login, password


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


__all__ = ["DEFAULT_PORT", "MAX_BODY_BYTES", "HttpIngest"]
