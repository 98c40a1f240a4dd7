"""Operations routes: health, readiness, Prometheus metrics, dead letters, the live map feed."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool

from api.deps import DbConn, LocationReader, Officer, Principal, may_see_victims, require
from api.errors import responses
from api.privacy import audit_read
from api.schemas import DeadLetterPublic, LatestPositionPublic
from telemetry.health import DATABASE, Health, Part, Readiness
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses=responses(503))
async def healthz(db: DbConn) -> dict[str, str]:
    """Liveness and database reachability. Unauthenticated so probes can call it; it
    returns no personal data."""
    await db.execute("SELECT 1")
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: ingest stuck or down (same body)",
                                        "content": {"application/json": {"schema": {"type": "object"}}}}})
async def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Readiness of each part of this process (``telemetry.health``): database, broker
    session, ingest loop (last turn, last batch age, backlog), zone compile errors, and
    the supervised tasks. 200 when ready; 503 with the same body when a critical part
    fails (ingest not connected, restarting, or stuck with a backlog). Unauthenticated so
    probes can call it: it holds states, counts, ages and zone ids, no personal data."""
    health: Health = request.app.state.health
    probe = await _probe_database(request.app.state.pool)
    readiness = health.readiness()
    parts = dict(readiness.parts)
    reported = parts.get(DATABASE)
    if probe is not None:  # the API's own pool fails: that wins over an older success of ingest
        parts[DATABASE] = Part(False, f"API pool: {probe}", since=time.time(), updated=time.time())
    elif reported is None:
        parts[DATABASE] = Part(True, "reachable", since=time.time(), updated=time.time())
    result = Readiness(all(p.ok for p in parts.values() if p.critical), parts)
    response.status_code = 200 if result.ready else 503
    return result.as_json()


async def _probe_database(pool: AsyncConnectionPool) -> str | None:
    """``SELECT 1`` through the API's pool, bounded in time; the failure's kind, or None."""
    try:
        async with asyncio.timeout(3.0), pool.connection() as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, TimeoutError) as exc:
        return type(exc).__name__
    return None


@router.get("/metrics", response_class=PlainTextResponse, responses=responses(401, 403))
async def metrics(_user: Annotated[Principal, Depends(require("supervisor", "auditor"))]) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/dead-letters", response_model=list[DeadLetterPublic], responses=responses(401, 403, 422, 503))
async def dead_letters(db: DbConn, user: Officer, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Rejected messages, newest first. Payloads hold coordinates: audited, and a victim's
    phone's payload is masked for roles that may not see victims."""
    rows = await alert_store.list_dead_letters(db, limit, include_victims=may_see_victims(user))
    await audit_read(db, user, "dead_letters.read", rows=len(rows), masked=sum(r["masked"] for r in rows))
    return rows


@router.get("/map/latest", response_model=list[LatestPositionPublic], responses=responses(401, 403, 422, 503))
async def latest_positions(db: DbConn, user: LocationReader,
                           limit: int = Query(5000, ge=1, le=50_000)) -> list[dict[str, Any]]:
    """Latest fix per device within the caller's scope, for the live map. Audited as a
    location read; victims' phones are left out for roles that may not see victims."""
    rows = await registry.latest_positions(db, limit, include_victims=may_see_victims(user), scope=user.scope)
    await audit_read(db, user, "positions.read_latest", rows=len(rows))
    return rows
