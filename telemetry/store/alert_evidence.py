"""The evidence behind an alert, as it was (async, for the API): the fixes of its device
in a window around it (the bulk table, and the evidence copy that retention never
deletes), the zone and its rule parameters, the device's status reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]
_FIX_COLS = "device_id, device_time, received_at, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq, late, flags"


async def fixes_around(conn: psycopg.AsyncConnection[Any], device_id: str, at: datetime, window: timedelta) -> list[Row]:
    """The device's fixes within ``window`` of ``at``, oldest first; a fix kept only as
    evidence (the bulk row gone to retention) is included."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_FIX_COLS} FROM positions WHERE device_id = %(d)s AND device_time BETWEEN %(a)s AND %(b)s"
            f" UNION SELECT {_FIX_COLS} FROM evidence_positions WHERE device_id = %(d)s"
            " AND device_time BETWEEN %(a)s AND %(b)s ORDER BY device_time",
            {"d": device_id, "a": at - window, "b": at + window})
        return await cur.fetchall()


async def status_around(conn: psycopg.AsyncConnection[Any], device_id: str, at: datetime, window: timedelta) -> list[Row]:
    cols = "device_id, device_time, battery_pct, charging, strap, case_open, gsm_dbm, gps_fix, online"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {cols} FROM device_status WHERE device_id = %(d)s AND device_time BETWEEN %(a)s AND %(b)s"
            f" UNION SELECT {cols} FROM evidence_status WHERE device_id = %(d)s"
            " AND device_time BETWEEN %(a)s AND %(b)s ORDER BY device_time",
            {"d": device_id, "a": at - window, "b": at + window})
        return await cur.fetchall()


async def zone(conn: psycopg.AsyncConnection[Any], zone_id: str) -> Row | None:
    """The zone row with its rule parameters and its current row hash (zones are not yet
    versioned: compare with the alert's ``zone_version`` to know whether it changed)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, name, kind, subject_id, category, geometry, radius_m, buffer_m, schedule, active,"
            " dwell_open_fixes, dwell_open_s, dwell_close_fixes, dwell_close_s, victim_sensitive,"
            " encode(sha256(convert_to(to_jsonb(z)::text, 'UTF8')), 'hex') AS version FROM zones z WHERE id = %s",
            (zone_id,))
        return await cur.fetchone()


__all__ = ["fixes_around", "status_around", "zone"]
