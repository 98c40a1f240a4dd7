"""A registry for the interop tests and the HTTP ingest listener served for real (uvicorn
on a free port, in a thread with its own event loop) on the test's pipeline."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from ingest.http import HttpIngest
from nazorat.services import free_port
from telemetry.pipeline import Pipeline
from telemetry.store.interop import secret_hash

CENTRE = (69.2401, 41.2995)  # lon, lat: the exclusion circle's centre; the captured fixes lie within 5 m of it
SECRET = "d1-secret-0123456789abcdef"
OT_PASSWORD = "aziza-password-0123456789"


def setup_registry(url: str) -> None:
    """Subject s1 wears d1 (OsmAnd) and d2 (native); s2's phone d3 is bound to OwnTracks
    aziza/phone; every subject has the same exclusion circle of 300 m around CENTRE (plus a
    school circle of s1 that is not victim-sensitive)."""
    with psycopg.connect(url) as conn:
        for s in ("s1", "s2", "s3"):
            conn.execute("INSERT INTO subjects (id, full_name) VALUES (%s, 'P')", (s,))
        for dev, subj in (("d1", "s1"), ("d2", "s2"), ("d3", "s3")):
            conn.execute("INSERT INTO devices (id, subject_id) VALUES (%s, %s)", (dev, subj))
        for s in ("s1", "s2", "s3"):
            conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry, radius_m) VALUES"
                         " (%s, 'market', 'exclusion', %s, %s, 300)",
                         (f"market-{s}", s, json.dumps({"type": "Point", "coordinates": list(CENTRE)})))
        conn.execute("INSERT INTO device_http_secrets (device_id, secret_hash, created_by) VALUES ('d1', %s, 'test')",
                     (secret_hash(SECRET),))
        conn.execute("INSERT INTO owntracks_bindings (ot_user, ot_device, device_id, secret_hash, push_zones,"
                     " created_by) VALUES ('aziza', 'phone', 'd3', %s, true, 'test')", (secret_hash(OT_PASSWORD),))


@dataclass
class Listener:
    url: str
    pipeline: Pipeline
    stop: asyncio.Event
    loop: asyncio.AbstractEventLoop


@contextmanager
def serve_listener(database_url: str) -> Iterator[Listener]:
    pipeline = Pipeline(database_url)
    port = free_port()
    started = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        box["loop"], box["stop"] = loop, stop
        ready = asyncio.Event()

        async def main() -> None:
            task = asyncio.ensure_future(HttpIngest(pipeline=pipeline, database_url=database_url)
                                         .serve("127.0.0.1", port, stop, ready))
            await ready.wait()
            started.set()
            await task

        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30), "the HTTP ingest listener did not start"
    loop, stop = box["loop"], box["stop"]
    assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
    try:
        yield Listener(f"http://127.0.0.1:{port}", pipeline, stop, loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        pipeline.close()


def count(url: str, sql: str, *args: object) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql.encode(), args).fetchone()
        assert row is not None
        return int(row[0])


__all__ = ["CENTRE", "OT_PASSWORD", "SECRET", "Listener", "count", "serve_listener", "setup_registry"]
