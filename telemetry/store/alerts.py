"""Alert reads and the officer's lifecycle actions: open -> acknowledged -> resolved.

Each alert row carries ``victim_sensitive``: the alert is about a victim (bilateral
proximity, a victim's phone, or a zone flagged victim-sensitive), so its location details
are for roles that may see victims; the API masks them for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.errors import NotFoundError
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
RESOLUTIONS = ("confirmed_violation", "false_alarm", "technical", "excused")
#: resolutions an appellant may contest
CONTESTABLE = ("confirmed", "confirmed_violation")
#: the plain columns of an alert (every read returns them, from ``alerts a``)
BASE_COLUMNS = (
    "id", "kind", "severity", "subject_id", "device_id", "zone_id", "violation_id", "fix_time", "status_time",
    "distance_m", "details", "status", "created_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    "resolved_by", "resolution", "assigned_to", "acknowledged_note", "resolution_note", "escalation_level",
    "escalated_at", "escalated_to", "zone_version", "zone_revision",
)
#: whether an alert (``a``) is about a victim
VICTIM_SENSITIVE = (
    "(a.kind = 'victim_proximity' OR a.details ? 'victim_device_id'"
    " OR EXISTS (SELECT 1 FROM zones z WHERE z.id = a.zone_id AND z.victim_sensitive)"
    " OR EXISTS (SELECT 1 FROM devices d WHERE d.id = a.device_id AND d.kind = 'victim_phone'))"
)
_COLS = ", ".join(f"a.{c}" for c in BASE_COLUMNS) + f", {VICTIM_SENSITIVE} AS victim_sensitive"
#: the columns every alert read returns (from ``alerts a``)
COLUMNS = _COLS


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What ``list_alerts`` selects; ``None`` leaves a field unfiltered. ``since`` and
    ``until`` bound ``created_at`` (``since <= created_at < until``)."""

    status: str | None = None
    subject_id: str | None = None
    kind: str | None = None
    severity: str | None = None
    assigned_to: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_alerts(
    conn: psycopg.AsyncConnection[Any], *, limit: int, after_id: int | None = None, before_id: int | None = None,
    where: AlertFilter | None = None, scope: Scope | None = None,
) -> list[Row]:
    """Alerts newest first, paged by keyset on the id (no OFFSET: a page stays right
    while alerts arrive). ``before_id``: the page of older ones (the next page back is
    ``before_id`` = the smallest id returned). ``after_id``: the ``limit`` alerts that
    follow it, so a poller that goes on from the largest id returned misses none even
    when more than ``limit`` arrived between two polls (the page is still returned
    newest first)."""
    f = where or AlertFilter()
    cond, params = subject_filter(scope, "a.subject_id")
    forward = after_id is not None and before_id is None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLS} FROM alerts a WHERE (%s::text IS NULL OR a.status = %s)"
            " AND (%s::text IS NULL OR a.subject_id = %s)"
            " AND (%s::text IS NULL OR a.kind = %s) AND (%s::text IS NULL OR a.severity = %s)"
            " AND (%s::bigint IS NULL OR a.assigned_to = %s)"
            " AND (%s::timestamptz IS NULL OR a.created_at >= %s) AND (%s::timestamptz IS NULL OR a.created_at < %s)"
            " AND (%s::bigint IS NULL OR a.id > %s) AND (%s::bigint IS NULL OR a.id < %s)"
            f" AND {cond} ORDER BY a.id {'ASC' if forward else 'DESC'} LIMIT %s",
            (f.status, f.status, f.subject_id, f.subject_id, f.kind, f.kind, f.severity, f.severity, f.assigned_to,
             f.assigned_to, f.since, f.since, f.until, f.until, after_id, after_id, before_id, before_id, *params,
             limit),
        )
        rows = await cur.fetchall()
    return rows[::-1] if forward else rows


async def get_alert(conn: psycopg.AsyncConnection[Any], alert_id: int, *, scope: Scope | None = None) -> Row:
    """The alert, or NotFoundError when it does not exist or is outside ``scope``."""
    cond, params = subject_filter(scope, "a.subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_COLS} FROM alerts a WHERE a.id = %s AND {cond}", (alert_id, *params))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("alert", str(alert_id))
    return row


async def list_dead_letters(conn: psycopg.AsyncConnection[Any], limit: int, *, include_victims: bool) -> list[Row]:
    """Newest first. A payload sent under a victim's phone's topic holds the victim's
    coordinates: ``payload_head`` is NULL (and ``masked`` true) unless ``include_victims``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, received_at, topic, reason, payload_size, CASE WHEN %(victims)s OR NOT victim"
            " THEN encode(substring(payload from 1 for 512), 'escape') END AS payload_head,"
            " (victim AND NOT %(victims)s) AS masked"
            " FROM (SELECT l.*, EXISTS (SELECT 1 FROM devices d WHERE d.id = split_part(l.topic, '/', 4)"
            " AND d.kind = 'victim_phone') AS victim FROM dead_letters l ORDER BY l.id DESC LIMIT %(limit)s) t"
            " ORDER BY id DESC", {"victims": include_victims, "limit": limit})
        return await cur.fetchall()


__all__ = ["BASE_COLUMNS", "COLUMNS", "CONTESTABLE", "RESOLUTIONS", "VICTIM_SENSITIVE", "AlertFilter", "get_alert",
           "list_alerts",           "list_dead_letters"]
