"""The ingest path's SQL (sync, psycopg 3): what the pipeline reads and writes inside the
one transaction of a batch, and the periodic checks it runs between batches.

Every statement is written once here; the pipeline calls these functions and never
composes SQL. Times cross this boundary as integer epoch milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from telemetry.model import DeadLetter, Fix, Position, Status
from telemetry.store.sql import ALERTS_CHANNEL, REGISTRY_CHANNEL, TS_FROM_MS, ms_of

Conn = psycopg.Connection[Any]
Row = dict[str, Any]
DEAD_LETTER_MAX_BYTES = 8192
_POSITION_COLUMNS = ("device_id, t_ms, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq, late,"
                     " flags")


@dataclass(frozen=True, slots=True)
class NewAlert:
    """One alert row. It is backed by a stored fix (``fix_ms``) or a stored status report
    (``status_ms``) of ``device_id``: the database refuses an alert with neither."""

    kind: str
    severity: str
    subject_id: str | None
    device_id: str
    details: dict[str, Any]
    zone_id: str | None = None
    violation_id: int | None = None
    fix_ms: int | None = None
    status_ms: int | None = None
    distance_m: float | None = None
    zone_revision: int | None = None  # the version of the zone in force


@dataclass(frozen=True, slots=True)
class NewViolation:
    subject_id: str
    device_id: str
    rule: str  # zone, crossing, victim
    open_ms: int
    zone_id: str | None = None
    victim_device_id: str | None = None
    close_ms: int | None = None  # the fix that closed it, when it is written closed
    closed: bool = False  # closed at once: a crossing, or a past violation proven by late fixes
    late: bool = False
    zone_revision: int | None = None  # the version of the zone in force


@dataclass(frozen=True, slots=True)
class RegistryRows:
    subjects: list[Row]
    zones: list[Row]
    devices: list[Row]
    absences: list[Row]
    victim_links: list[Row]
    terms: list[Row] = field(default_factory=list)
    assignments: list[Row] = field(default_factory=list)


# --- session ---------------------------------------------------------------------------
def prepare_session(conn: Conn) -> None:
    """The per-connection staging table for COPY, and the registry channel."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS incoming ("
        " device_id text, t_ms bigint, subject_id text, lat float8, lon float8, accuracy_m float8,"
        " speed_mps float8, heading_deg float8, source text, seq bigint, late boolean, flags text[])"
        " ON COMMIT DELETE ROWS"
    )
    conn.execute(f"LISTEN {REGISTRY_CHANNEL}")


def registry_changed(conn: Conn) -> bool:
    """Whether a registry change was announced since the last call. One round trip first:
    the server delivers a notification to an idle session as soon as the notifying
    transaction commits and psycopg collects those that arrive with a reply; without it a
    change committed a moment before a batch could miss that batch."""
    conn.execute("SELECT 1")
    conn.commit()
    changed = False
    for _notify in conn.notifies(timeout=0.0):
        changed = True
    return changed


def registry_rows(conn: Conn) -> RegistryRows:
    with conn.cursor(row_factory=dict_row) as cur:
        subjects = cur.execute("SELECT id, category, timezone, term_start, term_end FROM subjects ORDER BY id").fetchall()
        zones = cur.execute(
            "SELECT id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, dwell_open_fixes,"
            " dwell_open_s, dwell_close_fixes, dwell_close_s, version FROM zones WHERE active ORDER BY id"
        ).fetchall()
        devices = cur.execute(
            "SELECT d.id, d.kind, d.subject_id, p.battery_low, p.battery_critical, p.report_interval_s, p.grace_s,"
            " p.gps_loss_s, p.clock_skew_s FROM devices d JOIN device_profiles p ON p.name = d.profile").fetchall()
        # all absences: late fixes are judged by their own time
        absences = cur.execute("SELECT subject_id, zone_id, starts_at, ends_at FROM absences").fetchall()
        links = cur.execute("SELECT victim_device_id, subject_id, radius_m FROM victim_links").fetchall()
        terms = cur.execute("SELECT subject_id, starts_at, ends_at, status, ended_at FROM supervision_terms").fetchall()
        # the history of devices ever reassigned or removed, and each open assignment
        assignments = cur.execute(
            "SELECT device_id, subject_id, fitted_at, removed_at FROM device_assignments ORDER BY device_id, id"
        ).fetchall()
    return RegistryRows(subjects, zones, devices, absences, links, terms, assignments)


# --- rule state ------------------------------------------------------------------------
def open_violations(conn: Conn) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT device_id, coalesce(zone_id, 'victim:' || victim_device_id), id FROM violations"
        " WHERE closed_at IS NULL").fetchall()
    return {(d, r): int(i) for d, r, i in rows}


def pending_dwells(conn: Conn) -> dict[tuple[str, str], tuple[int, int]]:
    """(device, rule) -> (consecutive fixes counted, first fix's epoch ms)."""
    rows = conn.execute("SELECT device_id, rule, pending_count, pending_first_ms FROM rule_state").fetchall()
    return {(d, r): (int(c), int(t)) for d, r, c, t in rows}


def save_pending_dwells(conn: Conn, changes: dict[tuple[str, str], tuple[int, int] | None]) -> None:
    """Write the dwell counters a batch changed (None: no counter any more)."""
    gone = [k for k, v in changes.items() if v is None]
    kept = [(k, v) for k, v in changes.items() if v is not None]
    with conn.cursor() as cur:
        if gone:
            cur.execute("DELETE FROM rule_state WHERE (device_id, rule) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                        ([d for d, _ in gone], [r for _, r in gone]))
        if kept:
            cur.execute(
                "INSERT INTO rule_state (device_id, rule, pending_count, pending_first_ms)"
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::bigint[])"
                " ON CONFLICT (device_id, rule) DO UPDATE SET pending_count = excluded.pending_count,"
                " pending_first_ms = excluded.pending_first_ms, updated_at = now()",
                ([k[0] for k, _ in kept], [k[1] for k, _ in kept], [v[0] for _, v in kept], [v[1] for _, v in kept]))


def last_positions(conn: Conn, devices: Sequence[str]) -> dict[str, Position]:
    """Each device's latest evaluated fix: in order (not late) and plausible (no flags)."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (device_id) device_id, {ms_of('device_time')}, lon, lat, accuracy_m, source FROM positions"
        " WHERE device_id = ANY(%s) AND NOT late AND flags = '{}' ORDER BY device_id, device_time DESC",
        (list(devices),),
    ).fetchall()
    return {d: Position(int(ms), lon, lat, acc, src) for d, ms, lon, lat, acc, src in rows}


# --- positions ---------------------------------------------------------------------------
def copy_positions(conn: Conn, fixes: Sequence[Fix], subjects: Sequence[str | None], late: Sequence[bool],
                   flags: Sequence[list[str]]) -> set[tuple[str, int]]:
    """COPY into the staging table, then insert what is new (idempotent on
    (device_id, device_time)); returns the (device, epoch ms) keys newly stored. The
    sequences run in parallel: each fix with its subject, late mark and plausibility flags
    (no object per row on this path: it carries every fix)."""
    if not fixes:
        return set()
    with conn.cursor() as cur:
        with cur.copy(f"COPY incoming ({_POSITION_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int8", "text", "float8", "float8", "float8", "float8", "float8",
                            "text", "int8", "bool", "text[]"])
            for f, subject, is_late, fl in zip(fixes, subjects, late, flags, strict=True):
                copy.write_row((f.device_id, f.time_ms, subject, f.lat, f.lon, f.accuracy_m, f.speed_mps,
                                f.heading_deg, f.source, f.seq, is_late, fl))
        stored = cur.execute(
            "INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, speed_mps,"
            " heading_deg, source, seq, late, flags)"
            " SELECT device_id, timestamptz 'epoch' + t_ms * interval '1 millisecond', subject_id, lat, lon,"
            " accuracy_m, speed_mps, heading_deg, source, seq, late, flags FROM incoming"
            " ON CONFLICT (device_id, device_time) DO NOTHING"
            f" RETURNING device_id, {ms_of('device_time')}"
        ).fetchall()
    return {(d, int(ms)) for d, ms in stored}


# --- violations and alerts ---------------------------------------------------------------
def insert_violation(conn: Conn, v: NewViolation) -> int:
    row = conn.execute(
        "INSERT INTO violations (subject_id, device_id, zone_id, victim_device_id, rule, opened_at, open_fix_time,"
        f" closed_at, close_fix_time, late, zone_revision) VALUES (%s, %s, %s, %s, %s, now(), {TS_FROM_MS},"
        f" CASE WHEN %s THEN now() END, {TS_FROM_MS}, %s, %s) RETURNING id",
        (v.subject_id, v.device_id, v.zone_id, v.victim_device_id, v.rule, v.open_ms, v.closed, v.close_ms, v.late,
         v.zone_revision),
    ).fetchone()
    assert row is not None
    return int(row[0])


def close_violation(conn: Conn, violation_id: int, close_ms: int) -> None:
    conn.execute(f"UPDATE violations SET closed_at = now(), close_fix_time = {TS_FROM_MS} WHERE id = %s",
                 (close_ms, violation_id))


def violation_overlaps(conn: Conn, device_id: str, rule: str, from_ms: int, to_ms: int | None) -> bool:
    """Whether a violation of this (device, rule) already covers part of [from, to]
    (to None: open-ended), so that late evidence does not report it twice."""
    row = conn.execute(
        "SELECT 1 FROM violations WHERE device_id = %s AND coalesce(zone_id, 'victim:' || victim_device_id) = %s"
        f" AND open_fix_time <= coalesce({TS_FROM_MS}, 'infinity')"
        f" AND coalesce(close_fix_time, 'infinity') >= {TS_FROM_MS} LIMIT 1",
        (device_id, rule, to_ms, from_ms),
    ).fetchone()
    return row is not None


def insert_alert(conn: Conn, a: NewAlert) -> int:
    """The one alert insert of the ingest path."""
    row = conn.execute(
        "INSERT INTO alerts (kind, severity, subject_id, device_id, zone_id, violation_id, fix_time, status_time,"
        f" distance_m, details, zone_revision) VALUES (%s, %s, %s, %s, %s, %s, {TS_FROM_MS}, {TS_FROM_MS}, %s, %s, %s)"
        " RETURNING id",
        (a.kind, a.severity, a.subject_id, a.device_id, a.zone_id, a.violation_id, a.fix_ms, a.status_ms,
         a.distance_m, Jsonb(a.details), a.zone_revision),
    ).fetchone()
    assert row is not None
    return int(row[0])


def notify_alerts(conn: Conn, alert_ids: Sequence[int]) -> None:
    if alert_ids:
        conn.execute("SELECT pg_notify(%s, %s)", (ALERTS_CHANNEL, json.dumps(list(alert_ids))))


def raise_communication_loss(conn: Conn) -> list[int]:
    """``communication_loss`` for devices not heard from within their profile's reporting
    interval plus grace (one open alert per device), each backed by the device's latest
    stored fix or status report. Returns the new alert ids (already announced)."""
    rows = conn.execute(
        "INSERT INTO alerts (kind, severity, subject_id, device_id, fix_time, status_time, details)"
        " SELECT 'communication_loss', 'high', d.subject_id, d.id, lp.t, CASE WHEN lp.t IS NULL THEN ls.t END,"
        "  jsonb_build_object('last_heard_at', pr.last_heard_at,"
        "   'silent_s', round(extract(epoch FROM now() - pr.last_heard_at)))"
        " FROM device_presence pr JOIN devices d ON d.id = pr.device_id"
        " JOIN device_profiles pf ON pf.name = d.profile"
        " LEFT JOIN LATERAL (SELECT max(device_time) AS t FROM positions WHERE device_id = d.id) lp ON true"
        " LEFT JOIN LATERAL (SELECT max(device_time) AS t FROM device_status WHERE device_id = d.id) ls ON true"
        " WHERE pr.last_heard_at < now() - make_interval(secs => pf.report_interval_s + pf.grace_s)"
        "  AND (lp.t IS NOT NULL OR ls.t IS NOT NULL)"
        " ON CONFLICT DO NOTHING RETURNING id").fetchall()
    ids = [int(r[0]) for r in rows]
    notify_alerts(conn, ids)
    return ids


def flag_reporting_after_term(conn: Conn, reports: Sequence[tuple[str, str, int]]) -> None:
    """(device, subject, latest fix epoch ms) of devices that report after every term of
    their subject ended: the open ``remove_device`` task of the device is flagged
    ``still_reporting`` with the latest fix time (one is opened when there is none)."""
    if reports:
        conn.execute(
            "INSERT INTO registry_tasks (kind, device_id, subject_id, reason, still_reporting, last_fix_at)"
            " SELECT 'remove_device', d, s, 'device reports after the supervision term ended', true,"
            "  timestamptz 'epoch' + t * interval '1 millisecond'"
            " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS n(d, s, t)"
            " ON CONFLICT (kind, device_id) WHERE done_at IS NULL DO UPDATE SET still_reporting = true,"
            "  last_fix_at = greatest(registry_tasks.last_fix_at, excluded.last_fix_at)",
            ([d for d, _, _ in reports], [s for _, s, _ in reports], [t for _, _, t in reports]))


# shared with the API's term routes (telemetry.store.terms)
REMOVE_DEVICE_TASKS = (
    "INSERT INTO registry_tasks (kind, subject_id, device_id, term_id, reason)"
    " SELECT 'remove_device', %(subject)s, d.id, %(term)s, %(reason)s FROM devices d WHERE d.subject_id = %(subject)s"
    " ON CONFLICT (kind, device_id) WHERE done_at IS NULL DO NOTHING")


def end_expired_terms(conn: Conn) -> int:
    """Active terms whose end has passed become ``ended`` (an amendment by ``system``), and
    each device still fitted to their subject gets a ``remove_device`` task. Returns how
    many terms ended (the registry change is announced when any did)."""
    rows = conn.execute(
        "UPDATE supervision_terms SET status = 'ended', ended_at = ends_at, version = version + 1, updated_at = now()"
        " WHERE status = 'active' AND ends_at <= now() RETURNING id, version, subject_id, to_jsonb(supervision_terms)"
    ).fetchall()
    for term_id, version, subject_id, after in rows:
        conn.execute("INSERT INTO term_amendments (term_id, version, change, reason, after, amended_by)"
                     " VALUES (%s, %s, 'end', 'the term reached its end', %s, 'system')", (term_id, version, Jsonb(after)))
        open_remove_device_tasks(conn, subject_id, term_id, "the supervision term ended")
    if rows:
        conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")
    return len(rows)


def open_remove_device_tasks(conn: Conn, subject_id: str, term_id: int | None, reason: str) -> None:
    """A ``remove_device`` task for each device fitted to the subject (one open per device)."""
    conn.execute(REMOVE_DEVICE_TASKS, {"subject": subject_id, "term": term_id, "reason": reason})


# --- status reports ------------------------------------------------------------------------
def insert_statuses(conn: Conn, statuses: Sequence[Status]) -> set[tuple[str, int]]:
    """Store status reports (idempotent on (device, time)); returns the keys newly stored.
    A last will (``online`` false) that carries the time of a stored report (the connect
    time, as the wire format has it) marks that report offline instead, once: it is news."""
    new: set[tuple[str, int]] = set()
    with conn.cursor() as cur:
        for s in statuses:
            row = cur.execute(
                "INSERT INTO device_status (device_id, device_time, battery_pct, charging, strap, case_open,"
                f" gsm_dbm, gps_fix, online) VALUES (%s, {TS_FROM_MS}, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (device_id, device_time) DO UPDATE SET online = false"
                "  WHERE excluded.online IS false AND device_status.online IS DISTINCT FROM false"
                " RETURNING 1",
                (s.device_id, s.time_ms, s.battery_pct, s.charging, s.strap, s.case_open, s.gsm_dbm, s.gps_fix,
                 s.online)).fetchone()
            if row is not None:
                new.add((s.device_id, s.time_ms))
    return new


def latest_statuses(conn: Conn, devices: Sequence[str], excluding: Iterable[tuple[str, int]]) -> list[Status]:
    """Each device's latest stored status report, leaving out the keys given (the ones
    this batch just stored): after a restart, the previous report."""
    skip = list(excluding)
    rows = conn.execute(
        f"SELECT DISTINCT ON (device_id) device_id, {ms_of('device_time')},"
        " battery_pct, charging, strap, case_open, gsm_dbm, gps_fix, online FROM device_status"
        " WHERE device_id = ANY(%s) AND NOT ((device_id, device_time) IN"
        "  (SELECT d, timestamptz 'epoch' + t * interval '1 millisecond' FROM unnest(%s::text[], %s::bigint[])"
        "   AS n(d, t)))"
        " ORDER BY device_id, device_time DESC",
        (list(devices), [d for d, _ in skip], [t for _, t in skip])).fetchall()
    return [Status(r[0], int(r[1]), *r[2:]) for r in rows]


def condition_flags(conn: Conn, devices: Sequence[str]) -> dict[str, tuple[bool, int | None, bool]]:
    """Device -> (clock_off, gps_lost_since_ms, gps_alerted) as last committed (migration 0023)."""
    if not devices:
        return {}
    rows = conn.execute("SELECT device_id, clock_off, gps_lost_since_ms, gps_alerted FROM device_conditions"
                        " WHERE device_id = ANY(%s)", (list(devices),)).fetchall()
    return {r[0]: (bool(r[1]), None if r[2] is None else int(r[2]), bool(r[3])) for r in rows}


def save_condition_flags(conn: Conn, flags: dict[str, tuple[bool, int | None, bool]]) -> None:
    """Upsert the changed devices' (clock_off, gps_lost_since_ms, gps_alerted)."""
    if not flags:
        return
    ids = sorted(flags)
    conn.execute(
        "INSERT INTO device_conditions (device_id, clock_off, gps_lost_since_ms, gps_alerted)"
        " SELECT * FROM unnest(%s::text[], %s::bool[], %s::int8[], %s::bool[])"
        " ON CONFLICT (device_id) DO UPDATE SET clock_off = excluded.clock_off,"
        "  gps_lost_since_ms = excluded.gps_lost_since_ms, gps_alerted = excluded.gps_alerted, updated_at = now()",
        (ids, [flags[d][0] for d in ids], [flags[d][1] for d in ids], [flags[d][2] for d in ids]))


def mark_heard(conn: Conn, devices: Sequence[str]) -> None:
    if devices:
        conn.execute(
            "INSERT INTO device_presence (device_id, last_heard_at) SELECT unnest(%s::text[]), now()"
            " ON CONFLICT (device_id) DO UPDATE SET last_heard_at = excluded.last_heard_at",
            (list(devices),))


# --- dead letters and operational errors ------------------------------------------------------
def insert_dead_letters(conn: Conn, dead: Sequence[DeadLetter]) -> None:
    if not dead:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letters (topic, reason, payload, payload_size) VALUES (%s, %s, %s, %s)",
            [(d.topic[:512], d.reason[:500], d.payload[:DEAD_LETTER_MAX_BYTES], len(d.payload)) for d in dead],
        )


def sync_compile_errors(conn: Conn, errors: dict[str, str]) -> None:
    """Make the open ``zone_compile`` records match ``errors`` (zone id -> reason): new
    ones opened, repeated ones counted, those that compile again marked resolved."""
    ids, reasons = list(errors), [errors[z] for z in errors]
    conn.execute(
        "UPDATE operational_errors SET resolved_at = now() WHERE kind = 'zone_compile' AND resolved_at IS NULL"
        " AND (entity, reason) NOT IN (SELECT * FROM unnest(%s::text[], %s::text[]))", (ids, reasons))
    if errors:
        conn.execute(
            "INSERT INTO operational_errors (kind, entity, reason) SELECT 'zone_compile', e, r"
            " FROM unnest(%s::text[], %s::text[]) AS n(e, r)"
            " ON CONFLICT (kind, entity, reason) WHERE kind = 'zone_compile' AND resolved_at IS NULL"
            " DO UPDATE SET last_seen = now(), occurrences = operational_errors.occurrences + 1",
            (ids, reasons))


def record_rule_errors(conn: Conn, errors: Sequence[tuple[str, int, str]]) -> None:
    """(device, fix epoch ms, reason) of fixes whose evaluation raised: stored, not evaluated."""
    if errors:
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO operational_errors (kind, entity, fix_time, reason) VALUES ('rule_error', %s, {TS_FROM_MS},"
                " %s)", [(d, ms, reason[:500]) for d, ms, reason in errors])


__all__ = [
    "DEAD_LETTER_MAX_BYTES",
    "REMOVE_DEVICE_TASKS",
    "NewAlert",
    "NewViolation",
    "RegistryRows",
    "close_violation",
    "condition_flags",
    "copy_positions",
    "end_expired_terms",
    "flag_reporting_after_term",
    "insert_alert",
    "insert_dead_letters",
    "insert_statuses",
    "insert_violation",
    "last_positions",
    "latest_statuses",
    "mark_heard",
    "notify_alerts",
    "open_remove_device_tasks",
    "open_violations",
    "pending_dwells",
    "prepare_session",
    "raise_communication_loss",
    "record_rule_errors",
    "registry_changed",
    "registry_rows",
    "save_condition_flags",
    "save_pending_dwells",
    "sync_compile_errors",
    "violation_overlaps",
]
