"""Supervision terms, their amendments, and the officers' task list (async, for the API).

A term is a court order's supervision: order type, court, order number and date, start
and end, conditions, status (planned, active, suspended, ended). Every change writes a
``term_amendments`` row with the whole term before and after, and announces the registry
change, so running ingest workers rebuild their gate (``telemetry.snapshot.term_gate``)
within a batch. Ending a term opens a ``remove_device`` task for each device still
fitted to the subject. The subject's legacy ``term_start``/``term_end`` follow the
envelope of its terms in force, for old readers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.store.ingest import REMOVE_DEVICE_TASKS
from telemetry.store.scope import Scope, subject_filter
from telemetry.store.sql import REGISTRY_CHANNEL

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]
STATUSES = ("planned", "active", "suspended", "ended")
_COLS = ("id, subject_id, order_type, court, order_number, order_date, starts_at, ends_at, conditions, status,"
         " ended_at, version, created_by, created_at, updated_at")
_TASK_COLS = ("id, kind, subject_id, device_id, term_id, reason, still_reporting, last_fix_at, created_at, done_at,"
              " done_by")
_EDITABLE = ("order_type", "court", "order_number", "order_date", "starts_at", "ends_at", "conditions", "status")


async def _one(conn: Conn, sql: str, params: Any) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchone()


async def _all(conn: Conn, sql: str, params: Any) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchall()


def _check_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInputError("ends_at", "must be after starts_at")


async def _after_change(conn: Conn, subject_id: str) -> None:
    """Keep the legacy columns as the envelope of the terms in force; announce."""
    await conn.execute(
        "UPDATE subjects s SET term_start = e.lo, term_end = e.hi FROM ("
        " SELECT CASE WHEN bool_or(starts_at IS NULL) THEN NULL ELSE min(starts_at) END AS lo,"
        "  CASE WHEN bool_or(ends_at IS NULL AND status = 'active') THEN NULL"
        "   ELSE max(least(ends_at, ended_at)) END AS hi"  # least() ignores NULLs
        " FROM supervision_terms WHERE subject_id = %s AND status IN ('active', 'ended')) e"
        " WHERE s.id = %s", (subject_id, subject_id))
    await conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")


async def create_term(conn: Conn, subject_id: str, data: Row, *, by: str) -> Row:
    _check_window(data.get("starts_at"), data.get("ends_at"))
    params = {"conditions": {}, "court": None, "order_number": None, "order_date": None, "starts_at": None,
              "ends_at": None, "status": "active", **data}
    params["conditions"] = Jsonb(params["conditions"])
    async with conn.transaction():
        if await _one(conn, "SELECT 1 FROM subjects WHERE id = %s FOR UPDATE", (subject_id,)) is None:
            raise NotFoundError("subject", subject_id)
        row = await _one(
            conn,
            "INSERT INTO supervision_terms (subject_id, order_type, court, order_number, order_date, starts_at, ends_at,"
            " conditions, status, ended_at, created_by) VALUES (%(subject)s, %(order_type)s, %(court)s,"
            " %(order_number)s, %(order_date)s, %(starts_at)s, %(ends_at)s, %(conditions)s, %(status)s,"
            f" CASE WHEN %(status)s = 'ended' THEN coalesce(%(ends_at)s, now()) END, %(by)s) RETURNING {_COLS}",
            {**params, "subject": subject_id, "by": by})
        assert row is not None
        await _amendment(conn, row, None, "create", data.get("reason"), by)
        if row["status"] == "ended":
            await conn.execute(REMOVE_DEVICE_TASKS.encode(), {"subject": subject_id, "term": row["id"],
                                                              "reason": "the supervision term ended"})
        await _after_change(conn, subject_id)
    return row


async def _amendment(conn: Conn, after: Row, before: Row | None, change: str, reason: str | None, by: str) -> None:
    await conn.execute(
        "INSERT INTO term_amendments (term_id, version, change, reason, before, after, amended_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (after["id"], after["version"], change, reason, Jsonb(_jsonable(before)) if before else None,
         Jsonb(_jsonable(after)), by))


def _jsonable(row: Row | None) -> Row | None:
    if row is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


async def list_terms(conn: Conn, subject_id: str) -> list[Row]:
    return await _all(conn, f"SELECT {_COLS} FROM supervision_terms WHERE subject_id = %s ORDER BY id", (subject_id,))


async def get_term(conn: Conn, subject_id: str, term_id: int) -> Row:
    row = await _one(conn, f"SELECT {_COLS} FROM supervision_terms WHERE id = %s AND subject_id = %s",
                     (term_id, subject_id))
    if row is None:
        raise NotFoundError("term", str(term_id))
    return row


async def amend_term(conn: Conn, subject_id: str, term_id: int, changes: Row, *, reason: str, by: str
                     ) -> tuple[Row, Row]:
    """Apply ``changes`` (a subset of the editable fields) as one amendment; returns
    (before, after). Ending a term records when (now, or its end if that has passed) and
    opens the ``remove_device`` tasks; an ended term is final."""
    async with conn.transaction():
        before = await _one(conn, f"SELECT {_COLS} FROM supervision_terms WHERE id = %s AND subject_id = %s"
                                  " FOR UPDATE", (term_id, subject_id))
        if before is None:
            raise NotFoundError("term", str(term_id))
        if before["status"] == "ended":
            raise InvalidInputError("status", "an ended term is final: record a new term instead")
        merged = {**before, **{k: v for k, v in changes.items() if k in _EDITABLE}}
        _check_window(merged["starts_at"], merged["ends_at"])
        ending = merged["status"] == "ended"
        after = await _one(
            conn,
            "UPDATE supervision_terms SET order_type = %(order_type)s, court = %(court)s, order_number = %(order_number)s,"
            " order_date = %(order_date)s, starts_at = %(starts_at)s, ends_at = %(ends_at)s,"
            " conditions = %(conditions)s, status = %(status)s,"
            " ended_at = CASE WHEN %(ending)s THEN least(now(), coalesce(%(ends_at)s, now())) END,"
            f" version = version + 1, updated_at = now() WHERE id = %(id)s RETURNING {_COLS}",
            {**merged, "conditions": Jsonb(merged["conditions"]), "ending": ending})
        assert after is not None
        change = "end" if ending else ("status" if before["status"] != after["status"] else "amend")
        await _amendment(conn, after, before, change, reason, by)
        if ending:
            await conn.execute(REMOVE_DEVICE_TASKS.encode(), {"subject": subject_id, "term": term_id,
                                                              "reason": "the supervision term ended"})
        await _after_change(conn, subject_id)
    return before, after


async def amendments(conn: Conn, subject_id: str, term_id: int) -> list[Row]:
    await get_term(conn, subject_id, term_id)
    return await _all(conn, "SELECT id, term_id, version, change, reason, before, after, amended_by, amended_at"
                            " FROM term_amendments WHERE term_id = %s ORDER BY version", (term_id,))


async def list_tasks(conn: Conn, *, open_only: bool, limit: int, offset: int, scope: Scope | None = None
                     ) -> list[Row]:
    cond, params = subject_filter(scope, "subject_id")
    return await _all(conn, f"SELECT {_TASK_COLS} FROM registry_tasks WHERE (NOT %s OR done_at IS NULL) AND {cond}"
                            " ORDER BY id LIMIT %s OFFSET %s", (open_only, *params, limit, offset))


async def complete_task(conn: Conn, task_id: int, *, by: str, scope: Scope | None = None) -> Row:
    """Mark the task done (ConflictError when it already is)."""
    cond, params = subject_filter(scope, "subject_id")
    current = await _one(conn, f"SELECT done_at FROM registry_tasks WHERE id = %s AND {cond}", (task_id, *params))
    if current is None:
        raise NotFoundError("task", str(task_id))
    row = await _one(conn, f"UPDATE registry_tasks SET done_at = now(), done_by = %s WHERE id = %s AND done_at IS NULL"
                           f" RETURNING {_TASK_COLS}", (by, task_id))
    if row is None:
        raise ConflictError("task", str(task_id), "is already done")
    return row


__all__ = ["STATUSES", "amend_term", "amendments", "complete_task", "create_term", "get_term", "list_tasks",
           "list_terms"]
