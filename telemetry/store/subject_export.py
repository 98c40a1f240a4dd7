"""Everything stored about one subject, as one JSON archive (a lawful access request).

:data:`EXPORT_SECTIONS` is the one list of what the archive holds: a section name and a
query that returns one ``jsonb`` value per row (``to_jsonb(t)`` of the table's rows, so a
column added later is exported without a change here). A table added by another part of
the registry joins the archive with one line. Queries take two parameters:
``%(subject)s`` (the subject's id) and ``%(victims)s`` (whether victim-sensitive data may
be included). A section with ``requires`` is skipped (and listed in ``skipped``) while
that table does not exist, so the list can name tables of migrations not yet applied.

Victim-sensitive data (a victim's phone and its positions, a victim-sensitive zone's
geometry, the details of an alert about a victim) is redacted unless ``victims``: the
archive is handed to the subject, and a victim's whereabouts are not the subject's data.
The queries build the JSON in PostgreSQL and the archive is assembled from their text,
so a subject with years of fixes costs the JSON's size in memory, not Python objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

FORMAT = "nazorat.subject-export.v1"

_VICTIM_PHONE = "EXISTS (SELECT 1 FROM devices vd WHERE vd.id = {}.device_id AND vd.kind = 'victim_phone')"
# the alert (a) is about a victim: the same test as telemetry.store.alerts.VICTIM_SENSITIVE
_ALERT_ABOUT_VICTIM = (
    "(a.kind = 'victim_proximity' OR a.details ? 'victim_device_id'"
    " OR EXISTS (SELECT 1 FROM zones z WHERE z.id = a.zone_id AND z.victim_sensitive)"
    f" OR {_VICTIM_PHONE.format('a')})"
)
_SUBJECT_ALERTS = "SELECT id FROM alerts WHERE subject_id = %(subject)s"
_EVIDENCE_KEYS = (
    "SELECT device_id, fix_time FROM alerts WHERE subject_id = %(subject)s"
    " UNION SELECT device_id, open_fix_time FROM violations WHERE subject_id = %(subject)s"
    " UNION SELECT device_id, close_fix_time FROM violations WHERE subject_id = %(subject)s"
)


@dataclass(frozen=True, slots=True)
class ExportSection:
    name: str
    sql: str
    requires: str | None = None  # a table that must exist for the section to be exported


EXPORT_SECTIONS: tuple[ExportSection, ...] = (
    ExportSection("subject", "SELECT to_jsonb(s) FROM subjects s WHERE s.id = %(subject)s"),
    ExportSection("assignments",
                  "SELECT to_jsonb(a) FROM subject_assignments a WHERE a.subject_id = %(subject)s ORDER BY a.id"),
    ExportSection("devices",
                  "SELECT to_jsonb(d) FROM devices d WHERE (d.subject_id = %(subject)s OR d.id IN (SELECT device_id"
                  " FROM positions WHERE subject_id = %(subject)s) OR d.id IN (SELECT device_id FROM device_assignments"
                  " WHERE subject_id = %(subject)s)) AND (%(victims)s OR d.kind <> 'victim_phone')"
                  " ORDER BY d.id"),
    ExportSection("zones",
                  "SELECT to_jsonb(z) || CASE WHEN z.victim_sensitive AND NOT %(victims)s"
                  " THEN jsonb_build_object('geometry', NULL, 'masked', true) ELSE '{}' END"
                  " FROM zones z WHERE z.subject_id = %(subject)s ORDER BY z.id"),
    ExportSection("zone_versions",
                  "SELECT to_jsonb(v) || CASE WHEN v.victim_sensitive AND NOT %(victims)s"
                  " THEN jsonb_build_object('geometry', NULL, 'masked', true) ELSE '{}' END"
                  " FROM zone_versions v WHERE v.subject_id = %(subject)s ORDER BY v.zone_id, v.version"),
    ExportSection("terms",
                  "SELECT to_jsonb(t) FROM supervision_terms t WHERE t.subject_id = %(subject)s ORDER BY t.id"),
    ExportSection("term_amendments",
                  "SELECT to_jsonb(m) FROM term_amendments m JOIN supervision_terms t ON t.id = m.term_id"
                  " WHERE t.subject_id = %(subject)s ORDER BY m.id"),
    ExportSection("device_assignments",
                  "SELECT to_jsonb(a) FROM device_assignments a WHERE a.subject_id = %(subject)s ORDER BY a.id"),
    ExportSection("registry_tasks",
                  "SELECT to_jsonb(t) FROM registry_tasks t WHERE t.subject_id = %(subject)s ORDER BY t.id"),
    # the photo itself is readable through the registry API; the archive names it by hash
    ExportSection("photo",
                  "SELECT to_jsonb(p) - 'data' FROM subject_photos p WHERE p.subject_id = %(subject)s"),
    ExportSection("absences", "SELECT to_jsonb(a) FROM absences a WHERE a.subject_id = %(subject)s ORDER BY a.id"),
    ExportSection("victim_links",
                  "SELECT to_jsonb(v) FROM victim_links v WHERE v.subject_id = %(subject)s ORDER BY v.created_at"),
    ExportSection("positions",
                  "SELECT to_jsonb(p) FROM positions p WHERE p.subject_id = %(subject)s"
                  f" AND (%(victims)s OR NOT {_VICTIM_PHONE.format('p')}) ORDER BY p.device_time, p.device_id"),
    # a device's status reports while it reported fixes for the subject (first to last fix),
    # and all of those of a device assigned to the subject now: one time window per device,
    # read through the (device_id, device_time) key
    ExportSection("device_status",
                  "SELECT to_jsonb(s) FROM (SELECT device_id, min(lo) AS lo, max(hi) AS hi FROM ("
                  " SELECT id AS device_id, '-infinity'::timestamptz AS lo, 'infinity'::timestamptz AS hi FROM devices"
                  " WHERE subject_id = %(subject)s UNION ALL SELECT device_id, min(device_time), max(device_time)"
                  " FROM positions WHERE subject_id = %(subject)s GROUP BY device_id) AS w0 GROUP BY device_id) AS w"
                  " JOIN device_status s ON s.device_id = w.device_id AND s.device_time BETWEEN w.lo AND w.hi"
                  f" WHERE %(victims)s OR NOT {_VICTIM_PHONE.format('s')} ORDER BY s.device_time, s.device_id"),
    ExportSection("violations", "SELECT to_jsonb(v) FROM violations v WHERE v.subject_id = %(subject)s ORDER BY v.id"),
    ExportSection("alerts",
                  f"SELECT to_jsonb(a) || CASE WHEN {_ALERT_ABOUT_VICTIM} AND NOT %(victims)s"
                  " THEN jsonb_build_object('details', jsonb_build_object('masked', true), 'masked', true)"
                  " ELSE '{}' END FROM alerts a WHERE a.subject_id = %(subject)s ORDER BY a.id"),
    ExportSection("alert_history",
                  f"SELECT to_jsonb(h) FROM alert_history h WHERE h.alert_id IN ({_SUBJECT_ALERTS}) ORDER BY h.id"),
    ExportSection("evidence_positions",
                  f"SELECT to_jsonb(e) FROM evidence_positions e WHERE (e.device_id, e.device_time) IN ({_EVIDENCE_KEYS})"
                  f" AND (%(victims)s OR NOT {_VICTIM_PHONE.format('e')}) ORDER BY e.device_time, e.device_id"),
    ExportSection("evidence_status",
                  "SELECT to_jsonb(e) FROM evidence_status e WHERE (e.device_id, e.device_time) IN"
                  " (SELECT device_id, status_time FROM alerts WHERE subject_id = %(subject)s)"
                  f" AND (%(victims)s OR NOT {_VICTIM_PHONE.format('e')}) ORDER BY e.device_time, e.device_id"),
    ExportSection("appellant_accounts",
                  "SELECT jsonb_build_object('id', id, 'username', username, 'role', role, 'disabled', disabled,"
                  " 'created_at', created_at) FROM accounts WHERE subject_id = %(subject)s ORDER BY id"),
    # records about the subject: those naming it, and location queries whose answer held it
    # (their list of the other subjects found is left out)
    ExportSection("audit",
                  "SELECT to_jsonb(l) - 'prev_hash' - 'hash' - 'details' || jsonb_build_object('hash',"
                  " encode(l.hash, 'hex'), 'details', l.details - 'subjects') FROM audit_log l"
                  " WHERE l.subject_id = %(subject)s OR l.details -> 'subjects' ? %(subject)s ORDER BY l.id"),
    ExportSection("appeals", "SELECT to_jsonb(a) FROM appeals a WHERE a.subject_id = %(subject)s ORDER BY a.id",
                  requires="appeals"),
    ExportSection("appeal_events",
                  "SELECT to_jsonb(e) FROM appeal_events e JOIN appeals a ON a.id = e.appeal_id"
                  " WHERE a.subject_id = %(subject)s ORDER BY e.id", requires="appeal_events"),
    ExportSection("appeal_notices",
                  "SELECT to_jsonb(n) FROM appeal_notices n JOIN appeals a ON a.id = n.appeal_id"
                  " WHERE a.subject_id = %(subject)s ORDER BY n.id", requires="appeal_notices"),
    # a contest's bundle about a victim (proximity, a victim's zone) may hold the victim's
    # whereabouts: masked like the alert itself
    ExportSection("appeal_evidence",
                  "SELECT to_jsonb(v) || CASE WHEN NOT %(victims)s AND EXISTS (SELECT 1 FROM alerts a"
                  f" WHERE a.id = p.alert_id AND {_ALERT_ABOUT_VICTIM})"
                  " THEN jsonb_build_object('bundle', jsonb_build_object('masked', true)) ELSE '{}' END"
                  " FROM appeal_evidence v JOIN appeals p ON p.id = v.appeal_id"
                  " WHERE p.subject_id = %(subject)s ORDER BY v.appeal_id", requires="appeal_evidence"),
    # the files themselves stay in the store (readable through the appeals API); the
    # archive names each with its SHA-256, so a copy handed over can be checked
    ExportSection("appeal_attachments",
                  "SELECT to_jsonb(t) - 'content' - 'sha256' || jsonb_build_object('sha256', encode(t.sha256, 'hex'))"
                  " FROM appeal_attachments t JOIN appeals a ON a.id = t.appeal_id"
                  " WHERE a.subject_id = %(subject)s ORDER BY t.id", requires="appeal_attachments"),
)


@dataclass(frozen=True, slots=True)
class Archive:
    """The archive's JSON text and how many rows each section holds."""

    text: str
    counts: dict[str, int]
    skipped: list[str]


async def _exists(conn: psycopg.AsyncConnection[Any], table: str) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def export_subject(conn: psycopg.AsyncConnection[Any], subject_id: str, *, include_victims: bool,
                         generated_at: datetime, generated_by: str,
                         sections: tuple[ExportSection, ...] = EXPORT_SECTIONS) -> Archive:
    """The archive of ``subject_id`` (which the caller has checked exists and is in scope).
    Called outside a transaction, it reads one repeatable-read snapshot, so the sections
    agree with each other; the caller writes its audit record afterwards."""
    params = {"subject": subject_id, "victims": include_victims}
    parts: list[str] = []
    counts: dict[str, int] = {}
    skipped: list[str] = []
    fresh = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    async with conn.transaction():
        if fresh:  # else the caller's transaction (its statements each see their own snapshot)
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for section in sections:
            if section.requires is not None and not await _exists(conn, section.requires):
                skipped.append(section.name)
                continue
            cur = await conn.execute(f"SELECT q.x::text FROM ({section.sql}) AS q(x)".encode(), params)
            rows = [r[0] for r in await cur.fetchall()]
            counts[section.name] = len(rows)
            body = (rows[0] if rows else "null") if section.name == "subject" else "[" + ",".join(rows) + "]"
            parts.append(f"{json.dumps(section.name)}:{body}")
    head = {"format": FORMAT, "subject_id": subject_id, "generated_at": generated_at.isoformat(),
            "generated_by": generated_by, "victim_sensitive": "included" if include_victims else "redacted",
            "counts": counts, "skipped": skipped}
    text = json.dumps(head)[:-1] + ',"sections":{' + ",".join(parts) + "}}"
    return Archive(text, counts, skipped)


__all__ = ["EXPORT_SECTIONS", "FORMAT", "Archive", "ExportSection", "export_subject"]
