"""The alert lifecycle's SQL (async, for the API and the escalation job).

States and transitions (each one a row of ``alert_history``, whose id is the live
feed's event id)::

    open ──acknowledge──▶ acknowledged ──resolve──▶ resolved ──reopen──▶ open
      └───────────────resolve──────────────────────▲
    assign: open or acknowledged, status unchanged
    escalate: open (unacknowledged) past its severity's first, then second, threshold

A transition locks the alert row, checks the current state, updates it and writes the
history row in one transaction; a transition from the wrong state is a ConflictError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from prometheus_client import Counter, Histogram
from psycopg.rows import dict_row

from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.store.alerts import BASE_COLUMNS, RESOLUTIONS, VICTIM_SENSITIVE
from telemetry.store.alerts import COLUMNS as ALERT_COLS
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Any]
SEVERITIES = ("critical", "high", "medium", "low")
_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 4 * 3600, 24 * 3600)
TIME_TO_ACK = Histogram("nazorat_alert_time_to_acknowledge_seconds", "From an alert's creation to its acknowledgement",
                        ["severity"], buckets=_BUCKETS)
TIME_TO_RESOLVE = Histogram("nazorat_alert_time_to_resolve_seconds", "From an alert's creation to its resolution",
                            ["severity"], buckets=_BUCKETS)
OUTCOMES_TOTAL = Counter("nazorat_alert_outcomes_total", "Alerts resolved, by outcome", ["severity", "outcome"])
OUTCOMES = RESOLUTIONS
_HISTORY_COLS = "h.id, h.alert_id, h.at, h.actor, h.action, h.from_status, h.to_status, h.note, h.outcome," \
                " h.assigned_to, h.level"
# which states each action may start from
_FROM = {"acknowledge": ("open",), "resolve": ("open", "acknowledged"), "reopen": ("resolved",),
         "assign": ("open", "acknowledged")}


def _observe(action: str, row: Row) -> None:
    """The alert burden on /metrics: time to acknowledge and to resolve, outcomes."""
    severity = row["severity"] if row["severity"] in SEVERITIES else "other"
    if action == "acknowledge" and row["acknowledged_at"] is not None:
        TIME_TO_ACK.labels(severity).observe((row["acknowledged_at"] - row["created_at"]).total_seconds())
    elif action == "resolve" and row["resolved_at"] is not None:
        TIME_TO_RESOLVE.labels(severity).observe((row["resolved_at"] - row["created_at"]).total_seconds())
        OUTCOMES_TOTAL.labels(severity, row["resolution"]).inc()


async def _locked(conn: Conn, alert_id: int, scope: Scope | None) -> Row:
    cond, params = subject_filter(scope, "a.subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {ALERT_COLS} FROM alerts a WHERE a.id = %s AND {cond} FOR UPDATE OF a",
                          (alert_id, *params))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("alert", str(alert_id))
    return row


async def _history(conn: Conn, alert_id: int, actor: str, action: str, from_status: str | None, to_status: str, *,
                   note: str | None = None, outcome: str | None = None, assigned_to: int | None = None,
                   level: int | None = None) -> None:
    await conn.execute("INSERT INTO alert_history (alert_id, actor, action, from_status, to_status, note, outcome,"
                       " assigned_to, level) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                       (alert_id, actor, action, from_status, to_status, note, outcome, assigned_to, level))


async def transition(conn: Conn, alert_id: int, action: str, actor: str, *, scope: Scope | None = None,
                     note: str | None = None, outcome: str | None = None, assigned_to: int | None = None) -> Row:
    """Apply one officer action (acknowledge, resolve, reopen, assign); returns the alert."""
    if action not in _FROM:
        raise InvalidInputError("action", f"unknown action {action!r}")
    if action == "resolve" and (outcome not in OUTCOMES or not (note or "").strip()):
        raise InvalidInputError("note" if outcome in OUTCOMES else "outcome",
                                f"resolving needs an outcome ({', '.join(OUTCOMES)}) and a note")
    if action == "reopen" and not (note or "").strip():
        raise InvalidInputError("reason", "reopening needs a reason")
    params: list[Any]
    async with conn.transaction():
        current = await _locked(conn, alert_id, scope)
        status = current["status"]
        if status not in _FROM[action]:
            raise ConflictError("alert", str(alert_id), f"cannot {action} an alert that is {status}")
        if action == "acknowledge":
            sql, params, to = ("status = 'acknowledged', acknowledged_at = now(), acknowledged_by = %s,"
                               " acknowledged_note = %s", [actor, note], "acknowledged")
        elif action == "resolve":
            sql, params, to = ("status = 'resolved', resolved_at = now(), resolved_by = %s, resolution = %s,"
                               " resolution_note = %s, acknowledged_at = coalesce(acknowledged_at, now()),"
                               " acknowledged_by = coalesce(acknowledged_by, %s)", [actor, outcome, note, actor],
                               "resolved")
        elif action == "reopen":
            sql, params, to = ("status = 'open', resolved_at = NULL, resolved_by = NULL, resolution = NULL,"
                               " resolution_note = NULL, acknowledged_at = NULL, acknowledged_by = NULL,"
                               " acknowledged_note = NULL, escalation_level = 0, escalated_at = NULL,"
                               " escalated_to = NULL", [], "open")
        else:
            sql, params, to = "assigned_to = %s", [assigned_to], status
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(f"UPDATE alerts a SET {sql} WHERE a.id = %s RETURNING {ALERT_COLS}".encode(),
                              [*params, alert_id])
            row = await cur.fetchone()
        assert row is not None
        _observe(action, row)
        await _history(conn, alert_id, actor, {"acknowledge": "acknowledged", "resolve": "resolved",
                                               "reopen": "reopened", "assign": "assigned"}[action],
                       status, to, note=note, outcome=outcome, assigned_to=assigned_to)
    return row


async def history(conn: Conn, alert_id: int, *, scope: Scope | None = None) -> list[Row]:
    cond, params = subject_filter(scope, "a.subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_HISTORY_COLS} FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
                          f" WHERE h.alert_id = %s AND {cond} ORDER BY h.id", (alert_id, *params))
        rows = await cur.fetchall()
    if not rows:
        raise NotFoundError("alert", str(alert_id))
    return rows


async def events_after(conn: Conn, after_id: int, *, scope: Scope | None, limit: int = 500) -> list[Row]:
    """Feed events (history rows with their alert) after ``after_id``, oldest first,
    within ``scope``."""
    cond, params = subject_filter(scope, "a.subject_id")
    cols = ", ".join(f"a.{c} AS alert_{c}" for c in BASE_COLUMNS) + f", {VICTIM_SENSITIVE} AS alert_victim_sensitive"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_HISTORY_COLS}, {cols} FROM alert_history h JOIN alerts a ON a.id = h.alert_id"
                          f" WHERE h.id > %s AND {cond} ORDER BY h.id LIMIT %s", (after_id, *params, limit))
        return await cur.fetchall()


async def last_event_id(conn: Conn) -> int:
    cur = await conn.execute("SELECT coalesce(max(id), 0) FROM alert_history")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def escalate_due(conn: Conn, now: datetime) -> list[Row]:
    """Escalate every open alert that ``now`` finds past its severity's next threshold
    to the supervisor of its subject's unit (the first by id); returns what changed.
    Safe with several API processes: rows are claimed with SKIP LOCKED and the update
    checks the level it read."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.id, a.subject_id, a.severity, a.escalation_level, s.unit_id,"
            " (SELECT min(acc.id) FROM accounts acc WHERE acc.role = 'supervisor' AND acc.unit_id = s.unit_id"
            "  AND NOT acc.disabled) AS supervisor_id"
            " FROM alerts a JOIN alert_escalation e ON e.severity = a.severity"
            " LEFT JOIN subjects s ON s.id = a.subject_id"
            " WHERE a.status = 'open' AND a.escalation_level < 2"
            " AND a.created_at + (CASE a.escalation_level WHEN 0 THEN e.first_s ELSE e.second_s END)"
            "     * interval '1 second' <= %s"
            " ORDER BY a.id FOR UPDATE OF a SKIP LOCKED", (now,))
        due = await cur.fetchall()
        out = []
        for row in due:
            level = row["escalation_level"] + 1
            await cur.execute("UPDATE alerts SET escalation_level = %s, escalated_at = %s, escalated_to = %s"
                              " WHERE id = %s AND escalation_level = %s",
                              (level, now, row["supervisor_id"], row["id"], level - 1))
            await _history(conn, row["id"], "system", "escalated", "open", "open", assigned_to=row["supervisor_id"],
                           level=level, note=f"unacknowledged past the {row['severity']} threshold")
            out.append({**row, "escalation_level": level})
        return out


__all__ = ["OUTCOMES", "escalate_due", "events_after", "history", "last_event_id", "transition"]
