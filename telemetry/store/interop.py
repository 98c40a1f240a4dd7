"""SQL of the off-the-shelf app integrations (migration 0021): OwnTracks bindings, per-device
HTTP secrets, recorded OwnTracks messages and fix attributes. Sync functions for the
pipeline and the HTTP listener, async ones for the API.

Secrets are stored as their SHA-256 (they are random 24-byte tokens, so a plain hash is
enough: there is nothing to brute-force); the listener fetches the stored hash by the
device the request names and compares digests with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.errors import ConflictError, NotFoundError
from telemetry.model import FixAttributes, InteropEvent
from telemetry.owntracks import Region
from telemetry.store.scope import Scope, subject_filter
from telemetry.store.sql import TS_FROM_MS

Row = dict[str, Any]
Conn = psycopg.Connection[Any]
AConn = psycopg.AsyncConnection[Any]


def _clean(value: Any) -> Any:
    """A decoded JSON value jsonb accepts: no NUL characters (jsonb refuses ``\\u0000``) and
    no non-finite numbers (``1e400`` parses as infinity). Another app's text must never make
    a batch's transaction fail: the MQTT worker would retry that batch for ever."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {_clean(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(_clean(value), default=str)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# --- the pipeline ------------------------------------------------------------------------
def owntracks_devices(conn: Conn, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(user, device) -> bound device id, for the pairs that have a binding."""
    rows = conn.execute("SELECT b.ot_user, b.ot_device, b.device_id FROM owntracks_bindings b"
                        " JOIN unnest(%s::text[], %s::text[]) AS p(u, d) ON b.ot_user = p.u AND b.ot_device = p.d",
                        ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    return {(u, d): dev for u, d, dev in rows}


def push_zone_bindings(conn: Conn, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Those of these (user, device) bindings that may be pushed zones."""
    rows = conn.execute("SELECT b.ot_user, b.ot_device FROM owntracks_bindings b"
                        " JOIN unnest(%s::text[], %s::text[]) AS p(u, d) ON b.ot_user = p.u AND b.ot_device = p.d"
                        " WHERE b.push_zones", ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()
    return [(u, d) for u, d in rows]


def insert_events(conn: Conn, events: Sequence[InteropEvent]) -> None:
    if events:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO interop_events (device_id, source, kind, device_time, payload)"
                            f" VALUES (%s, %s, %s, {TS_FROM_MS}, %s)",
                            [(e.device_id, e.source, e.kind, e.time_ms, _json(e.payload)) for e in events])


def insert_attributes(conn: Conn, attributes: Sequence[FixAttributes]) -> None:
    if attributes:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO position_attributes (device_id, device_time, attributes)"
                            f" VALUES (%s, {TS_FROM_MS}, %s) ON CONFLICT DO NOTHING",
                            [(a.device_id, a.time_ms, _json(a.attributes)) for a in attributes])


# --- the HTTP listener --------------------------------------------------------------------
def http_secret_hash(conn: Conn, device_id: str) -> bytes | None:
    row = conn.execute("SELECT secret_hash FROM device_http_secrets WHERE device_id = %s", (device_id,)).fetchone()
    return None if row is None else bytes(row[0])


def device_of_secret(conn: Conn, digest: bytes) -> str | None:
    """The device whose secret has this SHA-256 (for requests that name no device)."""
    row = conn.execute("SELECT device_id FROM device_http_secrets WHERE secret_hash = %s", (digest,)).fetchone()
    return None if row is None else str(row[0])


def owntracks_binding(conn: Conn, user: str, device: str) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT device_id, secret_hash, push_zones FROM owntracks_bindings"
                    " WHERE ot_user = %s AND ot_device = %s", (user, device))
        return cur.fetchone()


def regions_for(conn: Conn, device_id: str) -> list[Region]:
    """The circles a bound phone may be shown (docs/interop.md, "Zones pushed back"):

    - the device worn by a subject: that subject's own exclusion circles that are not
      victim-sensitive (a school, a border post), never a victim's home;
    - a victim's phone: the exclusion circles of the subjects it is linked to that are
      victim-sensitive (the victim's own places, which she knows).
    Polygons are left out: OwnTracks regions are circles."""
    rows = conn.execute(
        "SELECT z.id, z.name, z.geometry, z.radius_m, extract(epoch FROM z.created_at)::bigint FROM zones z"
        " JOIN devices d ON d.id = %(dev)s"
        " WHERE z.active AND z.kind = 'exclusion' AND z.radius_m IS NOT NULL AND z.geometry->>'type' = 'Point'"
        "   AND ((d.kind = 'ankle_monitor' AND z.subject_id = d.subject_id AND NOT z.victim_sensitive)"
        "     OR (d.kind = 'victim_phone' AND z.victim_sensitive AND z.subject_id IN"
        "         (SELECT v.subject_id FROM victim_links v WHERE v.victim_device_id = %(dev)s)))"
        " ORDER BY z.id", {"dev": device_id}).fetchall()
    out = []
    for zid, name, geom, radius, created in rows:
        lon, lat = geom["coordinates"][:2]
        out.append(Region(zid, name, float(lat), float(lon), float(radius), int(created)))
    return out


# --- the API ---------------------------------------------------------------------------------
async def _device_exists(conn: AConn, device_id: str) -> None:
    cur = await conn.execute("SELECT 1 FROM devices WHERE id = %s", (device_id,))
    if await cur.fetchone() is None:
        raise NotFoundError("device", device_id)


async def device_in_scope(conn: AConn, device_id: str, scope: Scope, *, victims: bool) -> str:
    """The device's kind when the scope may manage it (its subject in scope; a victim's
    phone, through its linked subject, only when ``victims``), else NotFoundError (a device
    out of scope reads as absent)."""
    cond, params = subject_filter(scope, "s.sid")
    cur = await conn.execute(
        "SELECT d.kind FROM devices d, LATERAL (SELECT d.subject_id AS sid UNION ALL"
        " SELECT v.subject_id FROM victim_links v WHERE v.victim_device_id = d.id) s"
        f" WHERE d.id = %s AND ({cond} OR %s) LIMIT 1", [device_id, *params, scope.everything])
    row = await cur.fetchone()
    if row is None or (row[0] == "victim_phone" and not victims):
        raise NotFoundError("device", device_id)
    return str(row[0])


async def create_binding(conn: AConn, *, ot_user: str, ot_device: str, device_id: str, secret: str,
                         push_zones: bool, by: str) -> Row:
    await _device_exists(conn, device_id)
    try:
        async with conn.transaction():
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "INSERT INTO owntracks_bindings (ot_user, ot_device, device_id, secret_hash, push_zones, created_by)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " RETURNING ot_user, ot_device, device_id, push_zones, created_by, created_at",
                (ot_user, ot_device, device_id, secret_hash(secret), push_zones, by))
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError("owntracks binding", f"{ot_user}/{ot_device}",
                            "this identity or this device is already bound") from exc
    assert row is not None
    return row


async def list_bindings(conn: AConn, device_ids: Sequence[str] | None) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT ot_user, ot_device, device_id, push_zones, created_by, created_at FROM owntracks_bindings"
                      " WHERE %(all)s OR device_id = ANY(%(ids)s) ORDER BY ot_user, ot_device",
                      {"all": device_ids is None, "ids": list(device_ids or [])})
    return await cur.fetchall()


async def delete_binding(conn: AConn, ot_user: str, ot_device: str) -> str:
    cur = await conn.execute("DELETE FROM owntracks_bindings WHERE ot_user = %s AND ot_device = %s RETURNING device_id",
                             (ot_user, ot_device))
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError("owntracks binding", f"{ot_user}/{ot_device}")
    return str(row[0])


async def binding_device(conn: AConn, ot_user: str, ot_device: str) -> str | None:
    cur = await conn.execute("SELECT device_id FROM owntracks_bindings WHERE ot_user = %s AND ot_device = %s",
                             (ot_user, ot_device))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def set_http_secret(conn: AConn, device_id: str, secret: str, by: str) -> None:
    await _device_exists(conn, device_id)
    await conn.execute("INSERT INTO device_http_secrets (device_id, secret_hash, created_by) VALUES (%s, %s, %s)"
                       " ON CONFLICT (device_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash,"
                       " created_by = EXCLUDED.created_by, created_at = now()", (device_id, secret_hash(secret), by))


__all__ = ["binding_device", "create_binding", "delete_binding", "device_in_scope", "device_of_secret", "http_secret_hash",
           "insert_attributes", "insert_events", "list_bindings", "owntracks_binding", "owntracks_devices", "push_zone_bindings",
           "regions_for", "secret_hash", "set_http_secret"]
