"""Setting up a fleet's registry, and reading alerts back, through the public HTTP API.

Idempotent: an entity that already exists (409) is fine, so a run can be repeated
against the same stack. Subjects and devices go in through ``POST /subjects/import`` and
``POST /devices/import`` (5,000 a request), zones through ``POST /zones/import`` (one
GeoJSON FeatureCollection per 2,000 zones); a chunk that meets an existing entity, and
the victim links, go one request each, over a few keep-alive connections in parallel.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlparse

from simulator.background import BackgroundConfig
from simulator.background import registry as background_registry
from simulator.scenarios import Plan


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


class Api:
    """A small client of the public API with the configured bearer token; one keep-alive
    connection per thread."""

    def __init__(self, api_url: str, token: str, *, timeout_s: float = 30.0) -> None:
        u = urlparse(api_url)
        self._host, self._port = u.hostname or "127.0.0.1", u.port or 80
        self._base = u.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._timeout = timeout_s
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this client opened (in any thread)."""
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, method: str, path: str, body: Any = None, *, ok_conflict: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            conn = self._conn()
            try:
                conn.request(method, self._base + path, body=data, headers=self._headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
                continue
            if resp.status == 409 and ok_conflict:
                return None
            if resp.status >= 400:
                raise ApiError(method, path, resp.status, raw.decode(errors="replace"))
            return json.loads(raw) if raw else None
        return None

    def get(self, path: str, **params: Any) -> Any:
        q = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path + ("?" + urlencode(q) if q else ""))


def _parallel(api: Api, calls: Iterable[tuple[str, str, Any]], workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(api.request, m, p, b, ok_conflict=True) for m, p, b in calls]:
            f.result()


def _import(api: Api, path: str, body: Callable[[list[dict[str, Any]]], Any], items: list[dict[str, Any]],
            single: str, workers: int, chunk: int) -> None:
    """``POST {path}`` with ``body(chunk)`` per chunk of ``items`` (all or none each); a
    chunk with some items there already (a repeated run: 409) goes one at a time to
    ``single``, the existing ones skipped."""
    for i in range(0, len(items), chunk):
        part = items[i : i + chunk]
        try:
            api.request("POST", path, body(part))
        except ApiError as exc:
            if exc.status != 409:
                raise
            _parallel(api, (("POST", single, x) for x in part), workers)


def _feature_collection(zones: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": z["geometry"], "properties": {k: v for k, v in z.items() if k != "geometry"}}
        for z in zones]}


def _register(api: Api, subjects: list[dict[str, Any]], zones: list[dict[str, Any]], devices: list[dict[str, Any]],
              workers: int) -> None:
    _import(api, "/subjects/import", lambda part: {"subjects": part}, subjects, "/subjects", workers, 5000)
    _import(api, "/zones/import", _feature_collection, zones, "/zones", workers, 2000)
    _import(api, "/devices/import", lambda part: {"devices": part}, devices, "/devices", workers, 5000)


def register(api: Api, plan: Plan, *, workers: int = 4) -> None:
    """Create the plan's subjects, zones, devices and victim links (idempotent)."""
    _register(api, plan.subjects, plan.zones, plan.devices, workers)
    _parallel(api, (("POST", f"/subjects/{sid}/victims", body) for sid, body in plan.victim_links), workers)


def register_background(api: Api, cfg: BackgroundConfig, *, workers: int = 4, chunk: int = 5000) -> None:
    """Create the background fleet's subjects, zones and devices (idempotent), a chunk at
    a time: the registry of 100,000 devices is never all in memory."""
    for start in range(0, cfg.devices, chunk):
        rows = list(background_registry(cfg, range(start, min(cfg.devices, start + chunk))))
        _register(api, [s for s, _, _ in rows], [z for _, zs, _ in rows for z in zs], [d for _, _, d in rows], workers)


def fetch_alerts(api: Api, *, after_id: int = 0) -> list[dict[str, Any]]:
    """All alerts newer than ``after_id``, oldest first: ``GET /alerts?after_id=`` pages
    forward by keyset, so a full page is followed by the next one and none is missed."""
    seen: list[dict[str, Any]] = []
    while True:
        page = api.get("/alerts", after_id=after_id, limit=1000)
        seen += page
        if len(page) < 1000:
            return sorted(seen, key=lambda a: a["id"])
        after_id = max(a["id"] for a in page)


__all__ = ["Api", "ApiError", "fetch_alerts", "register", "register_background"]
