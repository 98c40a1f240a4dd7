"""The live feed: Server-Sent Events of alert events in the caller's scope.

``GET /feed`` streams every alert event (``raised``, ``acknowledged``, ``assigned``,
``resolved``, ``reopened``, ``escalated``) as an SSE event whose id is the event's id
and whose data is the event with its alert. A client that reconnects with
``Last-Event-ID`` first receives, from the database, every event after that id (in
order), then live ones; without it the stream starts at the present. Every stream
opens with an event that has an ``id`` and no data (a comment): the point it starts
from, so that a client that has seen no event yet also resumes without a gap (a
browser's ``EventSource`` keeps it as its last event id; it dispatches nothing). Keep-alive
comments every 15 s. Authentication: a bearer token (programs), or for a browser
``EventSource`` the short-lived HttpOnly cookie set by ``POST /auth/stream-token``;
never a token in the URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from psycopg_pool import AsyncConnectionPool

from api.deps import Principal, StreamUser
from api.errors import responses
from api.feed import FeedHub
from telemetry.store import alert_lifecycle as lifecycle
from telemetry.store import audit as audit_store

_ERRORS = responses(401, 403, 404, 409, 422, 429, 503)
router = APIRouter(tags=["alerts"], responses=_ERRORS)
_BATCH = 500
_ALERT_FIELDS = ("id", "kind", "severity", "subject_id", "device_id", "zone_id", "status", "created_at",
                 "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "resolution", "assigned_to",
                 "escalation_level", "escalated_to", "distance_m")


def _event(row: dict[str, Any]) -> ServerSentEvent:
    alert = {f: row.get(f"alert_{f}") for f in _ALERT_FIELDS}
    data = {"event_id": row["id"], "action": row["action"], "at": row["at"], "actor": row["actor"],
            "from_status": row["from_status"], "to_status": row["to_status"], "note": row["note"],
            "outcome": row["outcome"], "level": row["level"], "alert": alert}
    return ServerSentEvent(id=str(row["id"]), event="alert", data=data)


async def _reader(user: StreamUser) -> Principal:
    """Checked before the stream starts (a generator cannot answer 403 once it runs)."""
    if user.role not in ("admin", "supervisor", "officer"):
        raise HTTPException(403, "requires role officer or supervisor")
    if not user.allows("alerts:read"):
        raise HTTPException(403, "this API key lacks the scope alerts:read")
    return user


async def _after(last_event_id: Annotated[str | None, Header(pattern=r"^\d{1,18}$")] = None) -> int | None:
    return int(last_event_id) if last_event_id else None


@router.get("/feed", response_class=EventSourceResponse)
async def feed(request: Request, user: Annotated[Principal, Depends(_reader)],
               after: Annotated[int | None, Depends(_after)]) -> AsyncIterator[ServerSentEvent]:
    """Alert events in the caller's scope (officers, supervisors, admins; API keys with
    ``alerts:read``). Send ``Last-Event-ID`` to replay what came after that event."""
    pool: AsyncConnectionPool = request.app.state.pool
    hub: FeedHub = request.app.state.feed
    scope = user.scope
    async with pool.connection() as conn:
        if after is None:
            after = await lifecycle.last_event_id(conn)
        await audit_store.append(conn, actor=user.name, role=user.role, scope=str(scope), action="feed.connect",
                                 remote_addr=user.remote_addr, details={"after": after})
    last = after
    yield ServerSentEvent(id=str(after), comment="resume point")
    while True:
        generation = hub.generation
        async with pool.connection() as conn:
            rows = await lifecycle.events_after(conn, last, scope=scope, limit=_BATCH)
        for row in rows:
            yield _event(row)
            last = row["id"]
        if len(rows) < _BATCH:
            await hub.wait(generation)
