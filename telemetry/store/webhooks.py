"""SQL of the signed webhooks (migration 0022): subscriptions, deliveries and their attempts.
Sync functions for the engine's delivery loop, async ones for the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.errors import NotFoundError
from telemetry.store import audit

Row = dict[str, Any]
Conn = psycopg.Connection[Any]
AConn = psycopg.AsyncConnection[Any]
_PUBLIC = "id, name, url, event_types, max_attempts, active, created_by, created_at"
_DELIVERY = ("id, subscription_id, event_id, event_type, status, attempts, next_attempt_at, last_status, last_error,"
             " created_at, delivered_at")


@dataclass(frozen=True, slots=True)
class Due:
    delivery_id: int
    subscription: str
    url: str
    secret: str
    event_id: str
    subject_id: str | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


# --- the delivery loop -------------------------------------------------------------------
def claim_due(conn: Conn, limit: int, lease_s: float) -> list[Due]:
    """Up to ``limit`` due deliveries, oldest first, leased for ``lease_s`` (a loop that dies
    mid-send leaves them due again once the lease ends: at-least-once)."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE webhook_deliveries d SET next_attempt_at = now() + %s * interval '1 second'"
            " FROM webhook_subscriptions s WHERE s.id = d.subscription_id AND d.id IN ("
            "   SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= now()"
            "   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING d.id, s.name, s.url, s.secret, d.event_id, d.payload->'data'->>'subject_id', d.payload,"
            " d.attempts, s.max_attempts", (lease_s, limit)).fetchall()
    return sorted((Due(*r) for r in rows), key=lambda d: d.delivery_id)


def record_attempt(conn: Conn, due: Due, *, status_code: int | None, error: str | None, duration_ms: int,
                   retry_in_s: float) -> str:
    """Log one attempt and move the delivery on: ``delivered``, ``dead`` after its last
    allowed attempt, else ``pending`` again in ``retry_in_s``. Returns the new status. A
    delivered event is audited (alerts carry coordinates to another system)."""
    ok = error is None and status_code is not None and 200 <= status_code < 300
    attempts = due.attempts + 1
    status = "delivered" if ok else ("dead" if attempts >= due.max_attempts else "pending")
    with conn.transaction():
        conn.execute("INSERT INTO webhook_attempts (delivery_id, status_code, error, duration_ms) VALUES (%s, %s, %s, %s)",
                     (due.delivery_id, status_code, None if error is None else error[:500], duration_ms))
        conn.execute("UPDATE webhook_deliveries SET attempts = %s, status = %s, last_status = %s, last_error = %s,"
                     " next_attempt_at = now() + %s * interval '1 second',"
                     " delivered_at = CASE WHEN %s THEN now() END WHERE id = %s",
                     (attempts, status, status_code, None if error is None else error[:500], retry_in_s, ok,
                      due.delivery_id))
        if ok:
            audit.append_sync(conn, actor=f"webhook:{due.subscription}"[:100], action="webhook.delivered",
                              subject_id=due.subject_id, target=due.event_id, details={"url": due.url})
    return status


# --- the API -------------------------------------------------------------------------------
async def create_subscription(conn: AConn, *, name: str, url: str, event_types: list[str], secret: str,
                              max_attempts: int, by: str) -> Row:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("INSERT INTO webhook_subscriptions (name, url, event_types, secret, max_attempts, created_by)"
                      f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_PUBLIC}",
                      (name, url, event_types, secret, max_attempts, by))
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_subscriptions(conn: AConn) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_PUBLIC} FROM webhook_subscriptions ORDER BY id")
    return await cur.fetchall()


async def deactivate(conn: AConn, subscription_id: int) -> None:
    cur = await conn.execute("UPDATE webhook_subscriptions SET active = false WHERE id = %s RETURNING id",
                             (subscription_id,))
    if await cur.fetchone() is None:
        raise NotFoundError("webhook", str(subscription_id))


async def deliveries(conn: AConn, subscription_id: int, status: str | None, limit: int) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT 1 FROM webhook_subscriptions WHERE id = %s", (subscription_id,))
    if await cur.fetchone() is None:
        raise NotFoundError("webhook", str(subscription_id))
    await cur.execute(f"SELECT {_DELIVERY} FROM webhook_deliveries WHERE subscription_id = %s"
                      " AND (%s::text IS NULL OR status = %s) ORDER BY id DESC LIMIT %s",
                      (subscription_id, status, status, limit))
    return await cur.fetchall()


async def attempts(conn: AConn, subscription_id: int, delivery_id: int) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT 1 FROM webhook_deliveries WHERE id = %s AND subscription_id = %s",
                      (delivery_id, subscription_id))
    if await cur.fetchone() is None:
        raise NotFoundError("webhook delivery", str(delivery_id))
    await cur.execute("SELECT id, at, status_code, error, duration_ms FROM webhook_attempts WHERE delivery_id = %s"
                      " ORDER BY id", (delivery_id,))
    return await cur.fetchall()


__all__ = ["Due", "attempts", "claim_due", "create_subscription", "deactivate", "deliveries", "list_subscriptions",
           "record_attempt"]
