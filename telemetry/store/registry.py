"""Registry reads and writes (subjects, devices, zones), async for the API.

Every write announces itself on the ``nazorat_registry`` channel in the same
transaction, so running ingest workers recompile their zone snapshot after commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from geofence import ZoneGeometryError, validate_zone
from telemetry.errors import ConflictError, InvalidInputError, NotFoundError
from telemetry.snapshot import REGISTRY_CHANNEL, zone_spec_from_row
from telemetry.store import audit as audit_store
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
_SUBJECT_COLS = "id, full_name, category, order_type, timezone, term_start, term_end, created_at"
_DEVICE_COLS = "id, kind, subject_id, created_at"
_ZONE_COLS = ("id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, active, created_at,"
              " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s")


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
        raise NotFoundError("subject", str(current.get("subject_id"))) from exc
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
    sql = f"INSERT INTO devices (id, kind, subject_id) VALUES (%(id)s, %(kind)s, %(subject_id)s) RETURNING {_DEVICE_COLS}"
    return (await _insert_announced(conn, "device", [(sql, data)]))[0]


async def list_devices(conn: psycopg.AsyncConnection[Any], limit: int, offset: int, *,
                       scope: Scope | None = None) -> list[Row]:
    cond, params = subject_filter(scope, "subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_DEVICE_COLS} FROM devices WHERE {cond} ORDER BY id LIMIT %s OFFSET %s",
                          (*params, limit, offset))
        return await cur.fetchall()


def _check_zone(data: Row) -> None:
    if data.get("subject_id") is not None and data.get("category") is not None:
        raise InvalidInputError("category", "a zone is either per subject or global for a category, not both")
    try:
        validate_zone(zone_spec_from_row({**data, "schedule": data.get("schedule") or []}))
    except ZoneGeometryError as exc:
        raise InvalidInputError("geometry", exc.reason) from exc


async def create_zones(conn: psycopg.AsyncConnection[Any], items: list[Row]) -> list[Row]:
    """Validate then insert zones in one transaction (all or none)."""
    for data in items:
        _check_zone(data)
    sql = (
        "INSERT INTO zones (id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule,"
        " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s)"
        " VALUES (%(id)s, %(name)s, %(kind)s, %(subject_id)s, %(category)s, %(geometry)s, %(radius_m)s,"
        " %(buffer_m)s, %(schedule)s, %(dwell_open_fixes)s, %(dwell_open_s)s, %(dwell_close_fixes)s,"
        f" %(dwell_close_s)s) RETURNING {_ZONE_COLS}"
    )
    return await _insert_announced(conn, "zone", [
        (sql, {"dwell_open_fixes": 1, "dwell_open_s": 0, "dwell_close_fixes": 2, "dwell_close_s": 0, **data,
               "geometry": Jsonb(data["geometry"]), "schedule": Jsonb(data.get("schedule") or [])})
        for data in items
    ])


async def create_absence(conn: psycopg.AsyncConnection[Any], data: Row) -> Row:
    if data["ends_at"] <= data["starts_at"]:
        raise InvalidInputError("ends_at", "must be after starts_at")
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
    conn: psycopg.AsyncConnection[Any], subject_id: str, since: datetime | None, limit: int
) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT device_id, device_time, received_at, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq, late"
            " FROM positions WHERE subject_id = %s AND (%s::timestamptz IS NULL OR device_time >= %s)"
            " ORDER BY device_time DESC LIMIT %s",
            (subject_id, since, since, limit),
        )
        return await cur.fetchall()


async def latest_positions(conn: psycopg.AsyncConnection[Any], limit: int, *, scope: Scope | None = None) -> list[Row]:
    """The latest fix of each device (for the live map), of devices within ``scope``."""
    cond, params = subject_filter(scope, "d.subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT DISTINCT ON (p.device_id) p.device_id, p.subject_id, p.device_time, p.lat, p.lon, p.accuracy_m"
            " FROM devices d JOIN LATERAL (SELECT * FROM positions WHERE device_id = d.id"
            f" ORDER BY device_time DESC LIMIT 1) p ON true WHERE {cond} ORDER BY p.device_id LIMIT %s",
            (*params, limit),
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
