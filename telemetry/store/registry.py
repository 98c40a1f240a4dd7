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
from telemetry.store.devices import DEVICE_COLS
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
_SUBJECT_COLS = ("id, full_name, category, order_type, timezone, term_start, term_end, created_at, pinfl,"
                 " date_of_birth, sex, address, phone, status, exemptions, officer_id, unit_id, updated_at,"
                 " EXISTS (SELECT 1 FROM subject_photos p WHERE p.subject_id = subjects.id) AS has_photo")
_DEVICE_COLS = DEVICE_COLS
_ZONE_FIELDS = ("name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, active,"
                " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive")
_ZONE_COLS = f"id, {_ZONE_FIELDS}, created_at, version, updated_at"
_SUBJECT_EDITABLE = ("full_name", "category", "order_type", "timezone", "pinfl", "date_of_birth", "sex", "address",
                     "phone", "status", "exemptions")
_FK_DETAIL = re.compile(r'Key \((?P<col>[^)]+)\)=\((?P<val>.*)\) is not present in table "(?P<table>[^"]+)"')
_ENTITY = {"subjects": "subject", "zones": "zone", "devices": "device", "device_profiles": "device profile"}


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


async def create_subject(conn: psycopg.AsyncConnection[Any], data: Row, *, by: str = "api") -> Row:
    """The subject and its first supervision term (from ``term_start``/``term_end`` and
    the order type: every subject created here has a term row, which then governs)."""
    return (await create_subjects(conn, [data], by=by))[0]


def _subject_statements(data: Row, by: str) -> list[tuple[str, Row]]:
    """The subject's row, its first supervision term and that term's creation amendment."""
    params = {"pinfl": None, "date_of_birth": None, "sex": None, "address": None, "phone": None, "status": "active",
              **data, "exemptions": Jsonb(data.get("exemptions") or []), "by": by}
    sql = (
        "INSERT INTO subjects (id, full_name, category, order_type, timezone, term_start, term_end, pinfl,"
        " date_of_birth, sex, address, phone, status, exemptions)"
        " VALUES (%(id)s, %(full_name)s, %(category)s, %(order_type)s, %(timezone)s, %(term_start)s,"
        " %(term_end)s, %(pinfl)s, %(date_of_birth)s, %(sex)s, %(address)s, %(phone)s, %(status)s, %(exemptions)s)"
        f" RETURNING {_SUBJECT_COLS}"
    )
    term = ("INSERT INTO supervision_terms (subject_id, order_type, starts_at, ends_at, status, created_by)"
            " VALUES (%(id)s, %(order_type)s, %(term_start)s, %(term_end)s, 'active', %(by)s) RETURNING id, version,"
            " to_jsonb(supervision_terms) AS after")
    amendment = ("INSERT INTO term_amendments (term_id, version, change, reason, after, amended_by)"
                 " SELECT id, 1, 'create', 'created with the subject', to_jsonb(t), %(by)s FROM supervision_terms t"
                 " WHERE subject_id = %(id)s RETURNING id")
    return [(sql, params), (term, params), (amendment, params)]


async def create_subjects(conn: psycopg.AsyncConnection[Any], items: list[Row], *, by: str = "api") -> list[Row]:
    """Subjects, each with its first term, in one transaction: all or none. Returns the
    subjects' rows, in order. A duplicate PINFL (within ``items`` or with an existing
    subject) is a ConflictError saying so."""
    statements = [st for data in items for st in _subject_statements(data, by)]
    try:
        rows = await _insert_announced(conn, "subject", statements)
    except ConflictError as exc:
        pinfls = [d["pinfl"] for d in items if d.get("pinfl") is not None]
        if len(set(pinfls)) < len(pinfls):
            raise ConflictError("subject", exc.key, "two subjects of the import have the same PINFL") from exc
        if pinfls:  # the import was rolled back: a match is an existing subject
            async with conn.cursor() as cur:
                await cur.execute("SELECT id FROM subjects WHERE pinfl = ANY(%s) AND NOT id = ANY(%s) LIMIT 1",
                                  (pinfls, [d["id"] for d in items]))
                if await cur.fetchone() is not None:
                    raise ConflictError("subject", exc.key, "another subject has this PINFL") from exc
        raise
    return rows[::3]


async def create_devices(conn: psycopg.AsyncConnection[Any], items: list[Row], *, by: str = "api") -> list[Row]:
    """Devices (each with its open assignment when it names a subject) in one
    transaction: all or none. A duplicate serial or IMEI is a ConflictError saying so."""
    statements: list[tuple[str, Row]] = []
    firsts = []
    for data in items:
        check_device_id(data["id"])
        firsts.append(len(statements))
        statements += _device_statements(data, by)
    try:
        rows = await _insert_announced(conn, "device", statements)
    except ConflictError as exc:
        ids = [d["id"] for d in items]
        imeis = [d["imei"] for d in items if d.get("imei") is not None]
        serials = [d["serial"] for d in items if d.get("serial") is not None]
        if len(set(imeis)) < len(imeis) or len(set(serials)) < len(serials):
            raise ConflictError("device", exc.key, "two devices of the import have the same serial or IMEI") from exc
        if imeis or serials:  # the import was rolled back: a match is an existing device
            async with conn.cursor() as cur:
                await cur.execute("SELECT 1 FROM devices WHERE NOT id = ANY(%s) AND (imei = ANY(%s) OR serial = ANY(%s))"
                                  " LIMIT 1", (ids, imeis, serials))
                if await cur.fetchone() is not None:
                    raise ConflictError("device", exc.key, "another device has this serial or IMEI") from exc
        raise
    return [rows[i] for i in firsts]


async def update_subject(conn: psycopg.AsyncConnection[Any], subject_id: str, changes: Row, *,
                         scope: Scope | None = None) -> tuple[Row, Row]:
    """Change the subject's details; returns (before, after)."""
    async with conn.transaction():
        before = await get_subject(conn, subject_id, scope=scope)
        merged = {**before, **{k: v for k, v in changes.items() if k in _SUBJECT_EDITABLE}}
        sets = ", ".join(f"{k} = %({k})s" for k in _SUBJECT_EDITABLE)
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(f"UPDATE subjects SET {sets}, updated_at = now() WHERE id = %(id)s"
                                  f" RETURNING {_SUBJECT_COLS}".encode(),
                                  {**merged, "exemptions": Jsonb(merged["exemptions"] or [])})
                after = await cur.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError("subject", subject_id, "another subject has this PINFL") from exc
        assert after is not None
        await _announce(conn)
    return before, after


async def put_photo(conn: psycopg.AsyncConnection[Any], subject_id: str, *, content_type: str, data: bytes,
                    sha256: str, by: str) -> Row:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO subject_photos (subject_id, content_type, size_bytes, sha256, data, uploaded_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (subject_id) DO UPDATE SET content_type ="
            " excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, data = excluded.data,"
            " uploaded_by = excluded.uploaded_by, uploaded_at = now()"
            " RETURNING subject_id, content_type, size_bytes, sha256, uploaded_by, uploaded_at",
            (subject_id, content_type, len(data), sha256, data, by))
        row = await cur.fetchone()
    assert row is not None
    return row


async def get_photo(conn: psycopg.AsyncConnection[Any], subject_id: str) -> Row:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT content_type, data, sha256 FROM subject_photos WHERE subject_id = %s", (subject_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("photo", subject_id)
    return row


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


def _device_statements(data: Row, by: str) -> list[tuple[str, Row]]:
    params = {"serial": None, "imei": None, "model": None, "firmware": None, "profile": "default", **data, "by": by}
    sql = ("INSERT INTO devices (id, kind, subject_id, serial, imei, model, firmware, profile, state)"
           " VALUES (%(id)s, %(kind)s, %(subject_id)s, %(serial)s, %(imei)s, %(model)s, %(firmware)s, %(profile)s,"
           f" CASE WHEN %(subject_id)s::text IS NULL THEN 'in_stock' ELSE 'fitted' END) RETURNING {_DEVICE_COLS}")
    statements = [(sql, params)]
    if data.get("subject_id") is not None:
        statements.append(("INSERT INTO device_assignments (device_id, subject_id, fitted_at, fitted_by, reason)"
                           " VALUES (%(id)s, %(subject_id)s, NULL, %(by)s, 'registered fitted') RETURNING id", params))
    return statements


async def create_device(conn: psycopg.AsyncConnection[Any], data: Row, *, by: str = "api") -> Row:
    """A device, and when it names a subject, the open assignment (since the device's
    records began: fixes it stored before are the subject's too)."""
    return (await create_devices(conn, [data], by=by))[0]


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


async def _zone_actor(conn: psycopg.AsyncConnection[Any], by: str, change: str) -> None:
    """Who makes the zone change of this transaction, for the version rows (migration 0016)."""
    await conn.execute("SELECT set_config('nazorat.actor', %s, true), set_config('nazorat.zone_change', %s, true)",
                       (by, change))


async def create_zones(conn: psycopg.AsyncConnection[Any], items: list[Row], *, by: str = "api") -> list[Row]:
    """Validate then insert zones in one transaction (all or none); each is version 1."""
    for data in items:
        check_zone(data)
    async with conn.transaction():
        await _zone_actor(conn, by, "create")
        return await _insert_zones(conn, items)


async def _insert_zones(conn: psycopg.AsyncConnection[Any], items: list[Row]) -> list[Row]:
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


_ZONE_SET = ("name = %(name)s, kind = %(kind)s, subject_id = %(subject_id)s, category = %(category)s,"
             " geometry = %(geometry)s, radius_m = %(radius_m)s, buffer_m = %(buffer_m)s, schedule = %(schedule)s,"
             " active = %(active)s, dwell_open_fixes = %(dwell_open_fixes)s, dwell_open_s = %(dwell_open_s)s,"
             " dwell_close_fixes = %(dwell_close_fixes)s, dwell_close_s = %(dwell_close_s)s,"
             " victim_sensitive = coalesce(%(victim_sensitive)s::boolean, victim_sensitive)")


async def get_zone(conn: psycopg.AsyncConnection[Any], zone_id: str, *, scope: Scope | None = None,
                   lock: bool = False) -> Row:
    """The zone (a global one, or a subject's within ``scope``), or NotFoundError."""
    cond, params = subject_filter(scope, "subject_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_ZONE_COLS} FROM zones WHERE id = %s AND (subject_id IS NULL OR {cond})"
                          f"{' FOR UPDATE' if lock else ''}", (zone_id, *params))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("zone", zone_id)
    return row


async def update_zone(conn: psycopg.AsyncConnection[Any], zone_id: str, data: Row, *, by: str,
                      change: str = "update", scope: Scope | None = None) -> tuple[Row, Row]:
    """Replace the zone's definition: a new version (the old one stays readable); the
    running evaluators rebuild their snapshot on the announcement. Returns (before, after)."""
    check_zone({**data, "id": zone_id})
    async with conn.transaction():
        before = await get_zone(conn, zone_id, scope=scope, lock=True)
        await _zone_actor(conn, by, change)
        params = {"dwell_open_fixes": 1, "dwell_open_s": 0, "dwell_close_fixes": 2, "dwell_close_s": 0,
                  "victim_sensitive": None, "active": True, "radius_m": None, "buffer_m": 0.0, "category": None,
                  "subject_id": None, **data, "id": zone_id,
                  "geometry": Jsonb(data["geometry"]), "schedule": Jsonb(data.get("schedule") or [])}
        try:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(f"UPDATE zones SET {_ZONE_SET} WHERE id = %(id)s RETURNING {_ZONE_COLS}".encode(),
                                  params)
                after = await cur.fetchone()
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError("subject", str(data.get("subject_id"))) from exc
        assert after is not None
        await _announce(conn)
    return before, after


async def set_zone_active(conn: psycopg.AsyncConnection[Any], zone_id: str, active: bool, *, by: str,
                          scope: Scope | None = None) -> tuple[Row, Row]:
    """Retire (or restore) a zone: a new version with ``active`` changed."""
    before = await get_zone(conn, zone_id, scope=scope)
    data = {k: before[k] for k in _ZONE_FIELDS.replace(" ", "").split(",")}
    return await update_zone(conn, zone_id, {**data, "active": active}, by=by,
                             change="retire" if not active else "restore", scope=scope)


_VERSION_COLS = (f"zone_id, version, {_ZONE_FIELDS}, change, changed_by, valid_from,"
                 " lead(valid_from) OVER (PARTITION BY zone_id ORDER BY version) AS valid_until")


async def zone_versions(conn: psycopg.AsyncConnection[Any], zone_id: str, *, scope: Scope | None = None) -> list[Row]:
    await get_zone(conn, zone_id, scope=scope)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_VERSION_COLS} FROM zone_versions WHERE zone_id = %s ORDER BY version", (zone_id,))
        return await cur.fetchall()


async def zone_version(conn: psycopg.AsyncConnection[Any], zone_id: str, version: int, *,
                       scope: Scope | None = None) -> Row:
    for row in await zone_versions(conn, zone_id, scope=scope):
        if row["version"] == version:
            return row
    raise NotFoundError("zone version", f"{zone_id}@{version}")


async def subject_zones(conn: psycopg.AsyncConnection[Any], subject_id: str) -> list[Row]:
    """The subject's own zones (active or not), for export."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_ZONE_COLS} FROM zones WHERE subject_id = %s ORDER BY id", (subject_id,))
        return await cur.fetchall()


async def import_subject_zones(conn: psycopg.AsyncConnection[Any], subject_id: str, items: list[Row], *,
                               by: str) -> tuple[list[Row], list[Row], list[Row]]:
    """Create or replace (a new version of) each zone of the subject, all or none.
    Returns (created, updated, unchanged: the same definition, no new version); a zone id
    of another subject or a global one is refused."""
    for data in items:
        check_zone(data)
    created: list[Row] = []
    updated: list[Row] = []
    unchanged: list[Row] = []
    async with conn.transaction():
        for data in items:
            async with conn.cursor() as cur:
                await cur.execute("SELECT subject_id FROM zones WHERE id = %s FOR UPDATE", (data["id"],))
                existing = await cur.fetchone()
            if existing is None:
                await _zone_actor(conn, by, "import")
                created += await _insert_zones(conn, [data])
            elif existing[0] != subject_id:
                raise ConflictError("zone", data["id"], "belongs to another subject (or is global)")
            else:
                before, after = await update_zone(conn, data["id"], data, by=by, change="import")
                (updated if after["version"] != before["version"] else unchanged).append(after)
    return created, updated, unchanged


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
    "create_devices",
    "create_subject",
    "create_subjects",
    "create_victim_link",
    "create_zones",
    "get_subject",
    "latest_positions",
    "list_devices",
    "list_subjects",
    "list_zones",
    "subject_positions",
]
