"""Registry reads and writes (subjects, devices, zones), async for the API.

Every write announces itself on the ``nazorat_registry`` channel in the same
transaction, so running ingest workers recompile their zone snapshot after commit.

Victim-sensitive data: a victim's phone (device kind ``victim_phone``) and a zone flagged
``victim_sensitive``. The reads here take ``include_victims``; the API decides it from the
caller's role. What a caller may see at all is its ``scope`` (``telemetry.store.scope``):
outside it a subject, device, zone or position does not exist.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from geofence import ZoneGeometryError, validate_zone
from telemetry.device_ids import device_id_problem
from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.snapshot import REGISTRY_CHANNEL, zone_spec_from_row
from telemetry.store import audit as audit_store
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
_SUBJECT_COLS = "id, full_name, category, order_type, timezone, term_start, term_end, created_at"
_DEVICE_COLS = "id, kind, subject_id, created_at"
_ZONE_COLS = ("id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, active, created_at,"
              " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive")
_FK_DETAIL = re.compile(r'Key \((?P<col>[^)]+)\)=\((?P<val>.*)\) is not present in table "(?P<table>[^"]+)"')
_ENTITY = {"subjects": "subject", "zones": "zone", "devices": "device"}


def check_device_id(device_id: str) -> None:
    """Raise InvalidInputError unless ``device_id`` may name a device (``telemetry.device_ids``)."""
    problem = device_id_problem(device_id)
    if problem is not None:
        raise InvalidInputError("id", problem)


async def _announce(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")


async def _insert_announced(
    conn: psycopg.AsyncConnection[Any], entity: str, rows: list[tuple[str, Row]]
) -> list[Row]:
    """Run INSERT ... RETURNING statements in one transaction that also announces the
    registry change; a duplicate id is a ConflictError, a missing subject NotFoundError."""
    out: list[Row] = []
    current: Row = {}
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            for sql, params in rows:
                current = params
                await cur.execute(sql.encode(), params)
                row = await cur.fetchone()
                assert row is not None
                out.append(row)
            await _announce(conn)
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError(entity, str(current.get("id")), "already exists") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        m = _FK_DETAIL.search(exc.diag.message_detail or "")
        if m is None:
            raise NotFoundError("referenced row", str(current.get("id"))) from exc
        raise NotFoundError(_ENTITY.get(m["table"], m["table"]), m["val"]) from exc
    return out


async def create_subject(conn: psycopg.AsyncConnection[Any], data: Row) -> Row:
    sql = (
        "INSERT INTO subjects (id, full_name, category, order_type, timezone, term_start, term_end)"
        " VALUES (%(id)s, %(full_name)s, %(category)s, %(order_type)s, %(timezone)s, %(term_start)s,"
        f" %(term_end)s) RETURNING {_SUBJECT_COLS}"
    )
    return (await _insert_announced(conn, "subject", [(sql, data)]))[0]


async def list_subjects(conn: psycopg.AsyncConnection[Any], limit: int, offset: int, *,
                        scope: Scope | None = None) -> list[Row]:
    cond, params = subject_filter(scope, "id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SUBJECT_COLS} FROM subjects WHERE {cond} ORDER BY id LIMIT %s OFFSET %s",
                          (*params, limit, offset))
        return await cur.fetchall()


async def get_subject(conn: psycopg.AsyncConnection[Any], subject_id: str, *, scope: Scope | None = None) -> Row:
    """The subject, or NotFoundError when it does not exist or is outside ``scope``
    (existence does not leak)."""
    cond, params = subject_filter(scope, "id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_SUBJECT_COLS} FROM subjects WHERE id = %s AND {cond}", (subject_id, *params))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("subject", subject_id)
    return row


async def create_device(conn: psycopg.AsyncConnection[Any], data: Row) -> Row:
    check_device_id(data["id"])
    sql = f"INSERT INTO devices (id, kind, subject_id) VALUES (%(id)s, %(kind)s, %(subject_id)s) RETURNING {_DEVICE_COLS}"
    return (await _insert_announced(conn, "device", [(sql, data)]))[0]


async def list_devices(conn: psycopg.AsyncConnection[Any], limit: int, offset: int, *,
                       scope: Scope | None = None) -> list[Row]:
    cond, params = subject_filter(scope, "subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_DEVICE_COLS} FROM devices WHERE {cond} ORDER BY id LIMIT %s OFFSET %s",
                          (*params, limit, offset))
        return await cur.fetchall()


def check_zone(data: Row) -> None:
    """Raise InvalidInputError unless the zone row can be compiled by the evaluator."""
    if data.get("subject_id") is not None and data.get("category") is not None:
        raise InvalidInputError("category", "a zone is either per subject or global for a category, not both")
    try:
        validate_zone(zone_spec_from_row({**data, "schedule": data.get("schedule") or []}))
    except ZoneGeometryError as exc:
        raise InvalidInputError("geometry", exc.reason) from exc


async def create_zones(conn: psycopg.AsyncConnection[Any], items: list[Row]) -> list[Row]:
    """Validate then insert zones in one transaction (all or none)."""
    for data in items:
        check_zone(data)
    # victim_sensitive unset: an exclusion zone of a subject under a restraining order or
    # with a linked victim is around a victim (home, work)
    sql = (
        "INSERT INTO zones (id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule,"
        " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive)"
        " VALUES (%(id)s, %(name)s, %(kind)s, %(subject_id)s, %(category)s, %(geometry)s, %(radius_m)s,"
        " %(buffer_m)s, %(schedule)s, %(dwell_open_fixes)s, %(dwell_open_s)s, %(dwell_close_fixes)s,"
        " %(dwell_close_s)s, coalesce(%(victim_sensitive)s::boolean, %(kind)s = 'exclusion' AND ("
        " EXISTS (SELECT 1 FROM subjects s WHERE s.id = %(subject_id)s AND s.order_type = 'restraining_order')"
        f" OR EXISTS (SELECT 1 FROM victim_links v WHERE v.subject_id = %(subject_id)s)))) RETURNING {_ZONE_COLS}"
    )
    return await _insert_announced(conn, "zone", [
        (sql, {"dwell_open_fixes": 1, "dwell_open_s": 0, "dwell_close_fixes": 2, "dwell_close_s": 0,
               "victim_sensitive": None, **data,
               "geometry": Jsonb(data["geometry"]), "schedule": Jsonb(data.get("schedule") or [])})
        for data in items
    ])


async def create_absence(conn: psycopg.AsyncConnection[Any], data: Row) -> Row:
    """An absence names one of the subject's rules (its own zone, or a global zone of its
    category) or, without ``zone_id``, all of them. Another subject's zone is refused: it
    would be an absence that excuses nothing, while the officer believes it does."""
    if data["ends_at"] <= data["starts_at"]:
        raise InvalidInputError("ends_at", "must be after starts_at")
    if data.get("zone_id") is not None:
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT z.subject_id, z.category, s.category FROM zones z LEFT JOIN subjects s ON s.id = %s"
                " WHERE z.id = %s", (data["subject_id"], data["zone_id"]))
            zone = await cur.fetchone()
        if zone is None:
            raise NotFoundError("zone", data["zone_id"])
        z_subject, z_category, s_category = zone
        applies = z_subject == data["subject_id"] or (z_subject is None and z_category in (None, s_category))
        if not applies:
            raise InvalidInputError("zone_id", f"zone {data['zone_id']!r} does not apply to subject "
                                               f"{data['subject_id']!r}")
    sql = ("INSERT INTO absences (subject_id, zone_id, starts_at, ends_at, reason, created_by)"
           " VALUES (%(subject_id)s, %(zone_id)s, %(starts_at)s, %(ends_at)s, %(reason)s, %(created_by)s)"
           " RETURNING id, subject_id, zone_id, starts_at, ends_at, reason, created_by, created_at")
    return (await _insert_announced(conn, "absence", [(sql, data)]))[0]


async def create_victim_link(conn: psycopg.AsyncConnection[Any], data: Row) -> Row:
    async with conn.cursor() as cur:
        await cur.execute("SELECT kind FROM devices WHERE id = %s", (data["victim_device_id"],))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("device", data["victim_device_id"])
    if row[0] != "victim_phone":
        raise InvalidInputError("victim_device_id", "must be a device of kind victim_phone")
    sql = ("INSERT INTO victim_links (victim_device_id, subject_id, radius_m)"
           " VALUES (%(victim_device_id)s, %(subject_id)s, %(radius_m)s)"
           " RETURNING victim_device_id, subject_id, radius_m, created_at")
    return (await _insert_announced(conn, "victim link", [(sql, data)]))[0]


async def list_zones(conn: psycopg.AsyncConnection[Any], subject_id: str | None, limit: int, offset: int, *,
                     scope: Scope | None = None) -> list[Row]:
    """Zones (a subject's and the global ones); per-subject zones only within ``scope``."""
    cond, params = subject_filter(scope, "subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        if subject_id is None:
            await cur.execute(f"SELECT {_ZONE_COLS} FROM zones WHERE (subject_id IS NULL OR {cond}) ORDER BY id"
                              " LIMIT %s OFFSET %s", (*params, limit, offset))
        else:
            await cur.execute(
                f"SELECT {_ZONE_COLS} FROM zones WHERE (subject_id = %s AND {cond} OR subject_id IS NULL) ORDER BY id"
                " LIMIT %s OFFSET %s", (subject_id, *params, limit, offset))
        return await cur.fetchall()


async def subject_positions(
    conn: psycopg.AsyncConnection[Any], subject_id: str, since: datetime | None, until: datetime | None, limit: int,
    *, include_victims: bool,
) -> list[Row]:
    """A subject's fixes with ``since <= device_time < until``, newest first. A victim's
    phone is never part of a subject's history unless ``include_victims``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT p.device_id, p.device_time, p.received_at, p.lat, p.lon, p.accuracy_m, p.speed_mps, p.heading_deg,"
            " p.source, p.seq, p.late FROM positions p"
            " WHERE p.subject_id = %(subject)s"
            " AND (%(since)s::timestamptz IS NULL OR p.device_time >= %(since)s)"
            " AND (%(until)s::timestamptz IS NULL OR p.device_time < %(until)s)"
            " AND (%(victims)s OR NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = p.device_id"
            " AND d.kind = 'victim_phone'))"
            " ORDER BY p.device_time DESC LIMIT %(limit)s",
            {"subject": subject_id, "since": since, "until": until, "victims": include_victims, "limit": limit},
        )
        return await cur.fetchall()


async def latest_positions(conn: psycopg.AsyncConnection[Any], limit: int, *, include_victims: bool,
                           scope: Scope | None = None) -> list[Row]:
    """The latest fix of each device within ``scope`` (for the live map); victims'
    phones only when ``include_victims``."""
    cond, params = subject_filter(scope, "d.subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT DISTINCT ON (p.device_id) p.device_id, d.kind, p.subject_id, p.device_time, p.lat, p.lon,"
            " p.accuracy_m FROM devices d JOIN LATERAL (SELECT * FROM positions WHERE device_id = d.id"
            f" ORDER BY device_time DESC LIMIT 1) p ON true WHERE (%s OR d.kind <> 'victim_phone') AND {cond}"
            " ORDER BY p.device_id LIMIT %s",
            (include_victims, *params, limit),
        )
        return await cur.fetchall()


async def audit(
    conn: psycopg.AsyncConnection[Any], *, actor: str, action: str, subject_id: str | None = None,
    target: str | None = None, remote_addr: str | None = None, details: Row | None = None,
    role: str | None = None, scope: str | None = None,
) -> None:
    """One record of the hash-chained audit log (kept here for its callers; see
    :mod:`telemetry.store.audit`)."""
    await audit_store.append(conn, actor=actor, action=action, role=role, subject_id=subject_id, target=target,
                             remote_addr=remote_addr, scope=scope, details=details)


__all__ = [
    "audit",
    "check_device_id",
    "check_zone",
    "create_absence",
    "create_device",
    "create_subject",
    "create_victim_link",
    "create_zones",
    "get_subject",
    "latest_positions",
    "list_devices",
    "list_subjects",
    "list_zones",
    "subject_positions",
]
