"""Appeals' SQL (async, for the API): contests of alerts and general appeals, their
steps, notices and evidence snapshots. The rules (states, transitions, deadlines) are
:mod:`telemetry.appeals`; every function here that changes an appeal locks its row,
asks the pure module whether the step is allowed, then updates the row and writes the
step to ``appeal_events`` in one transaction. Times come from the caller's clock.

Who sees an appeal (:class:`Viewer`): an appellant only the appeals they filed; anyone
else those of subjects in their scope, plus those they were assigned to review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from telemetry import appeals as workflow
from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.store import alert_lifecycle
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Any]
_COLS = ("ap.id, ap.track, ap.kind, ap.subject_id, ap.appellant_id, ap.alert_id, ap.violation_id, ap.body,"
         " ap.language, ap.state, ap.submitted_at, ap.needs_study, ap.due_on, ap.due_at, ap.reviewer_id,"
         " ap.assigned_by, ap.assigned_at, ap.extended_at, ap.extended_by, ap.extension_reason, ap.decided_at,"
         " ap.decided_by, ap.decision_reason")


@dataclass(frozen=True, slots=True)
class Viewer:
    """Whose eyes a read is for: ``scope`` (subjects), ``account_id`` and whether the
    account is an appellant (who sees only their own appeals)."""

    scope: Scope | None
    account_id: int | None = None
    appellant: bool = False

    def condition(self) -> tuple[str, list[Any]]:
        if self.appellant:
            return "ap.appellant_id = %s", [self.account_id if self.account_id is not None else -1]
        cond, params = subject_filter(self.scope, "ap.subject_id")
        if self.account_id is None:
            return cond, params
        return f"({cond} OR ap.reviewer_id = %s)", [*params, self.account_id]


async def _one(conn: Conn, sql: str, params: list[Any] | tuple[Any, ...]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchone()


async def _all(conn: Conn, sql: str, params: list[Any] | tuple[Any, ...]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchall()


# ---- settings ----------------------------------------------------------------------

async def get_settings(conn: Conn) -> Row:
    row = await _one(conn, "SELECT contest_days, timezone FROM appeal_settings", ())
    return row or {"contest_days": workflow.DEFAULT_CONTEST_DAYS, "timezone": workflow.DEFAULT_TIMEZONE}


async def set_contest_days(conn: Conn, days: int) -> Row:
    if not 1 <= days <= 365:
        raise InvalidInputError("contest_days", "between 1 and 365")
    row = await _one(conn, "UPDATE appeal_settings SET contest_days = %s RETURNING contest_days, timezone", (days,))
    assert row is not None
    return row


# ---- submission --------------------------------------------------------------------

async def _event(conn: Conn, appeal_id: int, at: datetime, actor: str, action: str, from_state: str | None,
                 to_state: str, *, note: str | None = None, due_on: date | None = None) -> None:
    await conn.execute("INSERT INTO appeal_events (appeal_id, at, actor, action, from_state, to_state, note, due_on)"
                       " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                       (appeal_id, at, actor, action, from_state, to_state, note, due_on))


async def contestable_alert(conn: Conn, alert_id: int, subject_id: str) -> Row:
    """The alert of ``subject_id`` that may be contested (resolved as a confirmed
    violation), or NotFoundError (an appellant learns nothing of other alerts)."""
    row = await _one(conn, "SELECT a.id, a.subject_id, a.violation_id, a.status, a.resolution, a.resolved_by"
                     " FROM alerts a WHERE a.id = %s AND a.subject_id = %s AND a.resolution = ANY(%s)",
                     (alert_id, subject_id, ["confirmed", "confirmed_violation"]))
    if row is None:
        raise NotFoundError("alert", str(alert_id))
    return row


async def create(conn: Conn, *, track: str, kind: str, subject_id: str, appellant_id: int, actor: str, body: str,
                 language: str, now: datetime, alert_id: int | None = None, violation_id: int | None = None) -> Row:
    """File an appeal (its deadline from the settings and the pure rules) and its first step."""
    settings = await get_settings(conn)
    deadline = workflow.initial_deadline(track, now, kind=kind, contest_days=settings["contest_days"],
                                         tz=settings["timezone"])
    try:
        async with conn.transaction():
            row = await _one(
                conn, "INSERT INTO appeals AS ap (track, kind, subject_id, appellant_id, alert_id, violation_id, body,"
                " language, submitted_at, due_on, due_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLS}", (track, kind, subject_id, appellant_id, alert_id, violation_id, body, language,
                                        now, deadline.due_on, deadline.due_at))
            assert row is not None
            await _event(conn, row["id"], now, actor, "submitted", None, "submitted", due_on=deadline.due_on)
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError("alert", str(alert_id), "a contest of this alert is already in progress") from exc
    return row


async def save_evidence(conn: Conn, appeal_id: int, captured_at: datetime, bundle: Row) -> None:
    await conn.execute("INSERT INTO appeal_evidence (appeal_id, captured_at, bundle) VALUES (%s, %s, %s)",
                       (appeal_id, captured_at, Jsonb(bundle)))


async def evidence(conn: Conn, appeal_id: int, viewer: Viewer) -> Row:
    await get(conn, appeal_id, viewer)
    row = await _one(conn, "SELECT captured_at, bundle FROM appeal_evidence WHERE appeal_id = %s", (appeal_id,))
    if row is None:
        raise NotFoundError("appeal evidence", str(appeal_id))
    return row


# ---- reads ---------------------------------------------------------------------------

async def get(conn: Conn, appeal_id: int, viewer: Viewer, *, lock: bool = False) -> Row:
    cond, params = viewer.condition()
    row = await _one(conn, f"SELECT {_COLS} FROM appeals ap WHERE ap.id = %s AND {cond}"
                     + (" FOR UPDATE OF ap" if lock else ""), (appeal_id, *params))
    if row is None:
        raise NotFoundError("appeal", str(appeal_id))
    return row


async def list_appeals(conn: Conn, viewer: Viewer, *, state: str | None, track: str | None,
                       subject_id: str | None, overdue_at: datetime | None, limit: int, offset: int) -> list[Row]:
    """Newest first; ``overdue_at``: only those undecided past their deadline at that time
    (oldest deadline first)."""
    cond, params = viewer.condition()
    overdue = "ap.state IN ('submitted', 'under_review') AND ap.due_at <= %s" if overdue_at is not None else "TRUE"
    order = "ap.due_at, ap.id" if overdue_at is not None else "ap.id DESC"
    return await _all(
        conn, f"SELECT {_COLS} FROM appeals ap WHERE {cond} AND (%s::text IS NULL OR ap.state = %s)"
        " AND (%s::text IS NULL OR ap.track = %s) AND (%s::text IS NULL OR ap.subject_id = %s)"
        f" AND {overdue} ORDER BY {order} LIMIT %s OFFSET %s",
        [*params, state, state, track, track, subject_id, subject_id,
         *([overdue_at] if overdue_at is not None else []), limit, offset])


async def events(conn: Conn, appeal_id: int) -> list[Row]:
    return await _all(conn, "SELECT id, at, actor, action, from_state, to_state, note, due_on FROM appeal_events"
                      " WHERE appeal_id = %s ORDER BY id", (appeal_id,))


async def notices(conn: Conn, appeal_id: int) -> list[Row]:
    return await _all(conn, "SELECT id, at, kind, due_on, reason, decision, read_at FROM appeal_notices"
                      " WHERE appeal_id = %s ORDER BY id", (appeal_id,))


async def mark_notices_read(conn: Conn, appeal_id: int, now: datetime) -> int:
    cur = await conn.execute("UPDATE appeal_notices SET read_at = %s WHERE appeal_id = %s AND read_at IS NULL",
                             (now, appeal_id))
    return cur.rowcount


async def _notice(conn: Conn, appeal_id: int, at: datetime, kind: str, *, due_on: date | None = None,
                  reason: str | None = None, decision: str | None = None) -> None:
    await conn.execute("INSERT INTO appeal_notices (appeal_id, at, kind, due_on, reason, decision)"
                       " VALUES (%s, %s, %s, %s, %s, %s)", (appeal_id, at, kind, due_on, reason, decision))


# ---- steps -----------------------------------------------------------------------------

async def _update(conn: Conn, appeal_id: int, sets: str, params: list[Any]) -> Row:
    row = await _one(conn, f"UPDATE appeals ap SET {sets} WHERE ap.id = %s RETURNING {_COLS}", [*params, appeal_id])
    assert row is not None
    return row


async def reviewer_candidate(conn: Conn, account_id: int) -> Row | None:
    return await _one(conn, "SELECT id, username, role, unit_id, disabled FROM accounts WHERE id = %s", (account_id,))


async def alert_resolver(conn: Conn, alert_id: int) -> str | None:
    row = await _one(conn, "SELECT resolved_by FROM alerts WHERE id = %s", (alert_id,))
    return row["resolved_by"] if row else None


async def assign(conn: Conn, appeal_id: int, viewer: Viewer, *, reviewer: Row, by: str, now: datetime) -> Row:
    """Give the appeal to ``reviewer`` (an officer's or supervisor's account, never the
    officer who resolved a contested alert): submitted (or under review) -> under review."""
    if reviewer["role"] not in ("officer", "supervisor") or reviewer["disabled"]:
        raise InvalidInputError("reviewer_id", "must be an enabled officer's or supervisor's account")
    async with conn.transaction():
        current = await get(conn, appeal_id, viewer, lock=True)
        to = workflow.check_assign(appeal_id, current["state"])
        if current["alert_id"] is not None and reviewer["username"] == await alert_resolver(conn, current["alert_id"]):
            raise InvalidInputError("reviewer_id", "the officer who resolved the alert cannot review its contest")
        row = await _update(conn, appeal_id, "state = %s, reviewer_id = %s, assigned_by = %s, assigned_at = %s",
                            [to, reviewer["id"], by, now])
        await _event(conn, appeal_id, now, by, "assigned", current["state"], to, note=reviewer["username"])
    return row


async def mark_study(conn: Conn, appeal_id: int, viewer: Viewer, *, by: str, now: datetime) -> Row:
    """A general appeal needs further study: its term becomes one month from receipt."""
    settings = await get_settings(conn)
    async with conn.transaction():
        current = await get(conn, appeal_id, viewer, lock=True)
        workflow.check_study(appeal_id, current["track"], current["state"], current["extended_at"] is not None)
        deadline = workflow.initial_deadline("general", current["submitted_at"], kind=current["kind"],
                                             needs_study=True, tz=settings["timezone"])
        row = await _update(conn, appeal_id, "needs_study = true, due_on = %s, due_at = %s",
                            [deadline.due_on, deadline.due_at])
        await _event(conn, appeal_id, now, by, "study", current["state"], current["state"], due_on=deadline.due_on)
    return row


async def extend(conn: Conn, appeal_id: int, viewer: Viewer, *, reason: str, until: date | None, by: str,
                 now: datetime) -> Row:
    """The one extension of a general appeal, with its reason and a notice to the appellant."""
    settings = await get_settings(conn)
    async with conn.transaction():
        current = await get(conn, appeal_id, viewer, lock=True)
        workflow.check_extend(appeal_id, current["track"], current["state"], current["extended_at"] is not None,
                              reason)
        deadline = workflow.extended_deadline(current["due_on"], until, tz=settings["timezone"])
        row = await _update(conn, appeal_id, "due_on = %s, due_at = %s, extended_at = %s, extended_by = %s,"
                            " extension_reason = %s", [deadline.due_on, deadline.due_at, now, by, reason])
        await _event(conn, appeal_id, now, by, "extended", current["state"], current["state"], note=reason,
                     due_on=deadline.due_on)
        await _notice(conn, appeal_id, now, "extension", due_on=deadline.due_on, reason=reason)
    return row


async def decide(conn: Conn, appeal_id: int, viewer: Viewer, *, decision: str, reason: str, by: str,
                 now: datetime) -> Row:
    """The reviewer's reasoned decision. An upheld contest resolves its alert as
    ``excused`` through the alert lifecycle (reopened first if it was resolved) and marks
    the violation ``upheld``; a rejected one marks the violation ``rejected``."""
    async with conn.transaction():
        current = await get(conn, appeal_id, viewer, lock=True)
        to = workflow.check_decide(appeal_id, current["track"], current["state"], decision, reason)
        if current["track"] == "contest":
            await _settle_contest(conn, current, decision, reason, by)
        row = await _update(conn, appeal_id, "state = %s, decided_at = %s, decided_by = %s, decision_reason = %s",
                            [to, now, by, reason])
        await _event(conn, appeal_id, now, by, "decided", current["state"], to, note=reason)
        await _notice(conn, appeal_id, now, "decision", decision=to, reason=reason)
    return row


async def _settle_contest(conn: Conn, appeal: Row, decision: str, reason: str, by: str) -> None:
    alert_id = appeal["alert_id"]
    if decision == "upheld":
        note = f"contest {appeal['id']} upheld: {reason}"
        status = (await _one(conn, "SELECT status FROM alerts WHERE id = %s", (alert_id,)) or {}).get("status")
        if status == "resolved":
            await alert_lifecycle.transition(conn, alert_id, "reopen", by, note=note)
        await alert_lifecycle.transition(conn, alert_id, "resolve", by, outcome="excused", note=note)
    if appeal["violation_id"] is not None:
        await conn.execute("UPDATE violations SET contest = %s WHERE id = %s", (decision, appeal["violation_id"]))


async def violation_contest(conn: Conn, violation_id: int) -> str | None:
    row = await _one(conn, "SELECT contest FROM violations WHERE id = %s", (violation_id,))
    return row["contest"] if row else None


__all__ = [
    "Viewer",
    "assign",
    "contestable_alert",
    "create",
    "decide",
    "events",
    "evidence",
    "extend",
    "get",
    "get_settings",
    "list_appeals",
    "mark_notices_read",
    "mark_study",
    "notices",
    "reviewer_candidate",
    "save_evidence",
    "set_contest_days",
    "violation_contest",
]
