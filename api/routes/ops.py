"""Operations routes: health, Prometheus metrics, dead letters, the live map feed, the dashboard."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Admin, DbConn, LocationReader, Principal, require
from api.schemas import DeadLetterPublic
from telemetry.store import alerts as alert_store
from telemetry.store import registry

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(db: DbConn) -> dict[str, str]:
    """Liveness and database reachability. Unauthenticated so probes can call it; it
    returns no personal data."""
    await db.execute("SELECT 1")
    return {"status": "ok"}


@router.get("/metrics")
async def metrics(_user: Annotated[Principal, Depends(require("supervisor", "auditor"))]) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/dead-letters", response_model=list[DeadLetterPublic])
async def dead_letters(db: DbConn, _user: Admin, limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    return await alert_store.list_dead_letters(db, limit)


@router.get("/map/latest")
async def latest_positions(db: DbConn, user: LocationReader,
                           limit: int = Query(5000, ge=1, le=50_000)) -> list[dict[str, Any]]:
    """Latest fix per device (within the caller's scope) for the live map. Audited as a location read."""
    rows = await registry.latest_positions(db, limit, scope=user.scope)
    await registry.audit(db, actor=user.name, action="positions.read_latest", remote_addr=user.remote_addr,
                         details={"rows": len(rows)})
    return rows


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The officers' dashboard page. It holds no data: its script asks the API with the
    officer's token, kept in the browser's session storage."""
    return HTMLResponse(resources.files("api.static").joinpath("dashboard.html").read_text())
