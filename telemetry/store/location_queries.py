"""Location reads for investigations: the fixes near a point in a time range (the
prefilter of the "who was within R metres of P" query) and a subject's track.

The prefilter is plain comparisons on stored columns (``device_time`` half-open range,
``lat``/``lon`` ranges of a :class:`telemetry.reach.SearchBox`, ``accuracy_m``), so the
time index (BRIN, or TimescaleDB's chunk exclusion) prunes by time and any future index
on the coordinates applies; the exact, geodesic test is :func:`telemetry.reach.classify_reach`.

Victims' phones (device kind ``victim_phone``) are left out unless ``include_victims``;
what the caller may see at all is its ``scope``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.reach import SearchBox
from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
_FIX_COLS = ("p.device_id, d.kind AS device_kind, p.subject_id, p.device_time, p.lat, p.lon, p.accuracy_m, p.source,"
             " p.flags")
_NOT_VICTIM = "(%s OR d.kind IS DISTINCT FROM 'victim_phone')"


async def fixes_in_box(
    conn: psycopg.AsyncConnection[Any], box: SearchBox, *, since: datetime, until: datetime, max_accuracy_m: float,
    include_victims: bool, include_flagged: bool, scope: Scope | None, limit: int,
) -> list[Row]:
    """Fixes with ``since <= device_time < until`` inside ``box`` whose accuracy radius is
    at most ``max_accuracy_m``, in the caller's scope, ordered by device and time; at most
    ``limit`` rows (the caller asks for one more than it accepts to see an overflow)."""
    cond, params = subject_filter(scope, "p.subject_id")
    lon_cond = " OR ".join("p.lon BETWEEN %s AND %s" for _ in box.lon_ranges)
    lon_params = [v for r in box.lon_ranges for v in r]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_FIX_COLS} FROM positions p LEFT JOIN devices d ON d.id = p.device_id"
            " WHERE p.device_time >= %s AND p.device_time < %s AND p.lat BETWEEN %s AND %s"
            f" AND ({lon_cond}) AND p.accuracy_m <= %s AND (%s OR p.flags = '{{}}') AND {_NOT_VICTIM} AND {cond}"
            " ORDER BY p.subject_id, p.device_id, p.device_time LIMIT %s",
            (since, until, box.lat_min, box.lat_max, *lon_params, max_accuracy_m, include_flagged, include_victims,
             *params, limit),
        )
        return await cur.fetchall()


async def subject_track(
    conn: psycopg.AsyncConnection[Any], subject_id: str, *, since: datetime, until: datetime, include_victims: bool,
    limit: int,
) -> list[Row]:
    """A subject's fixes with ``since <= device_time < until`` ordered by device and time,
    each with its device's reporting interval (``report_interval_s``, from the device
    profile; null for a device not in the registry); at most ``limit`` rows."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_FIX_COLS}, p.speed_mps, p.heading_deg, dp.report_interval_s"
            " FROM positions p LEFT JOIN devices d ON d.id = p.device_id"
            " LEFT JOIN device_profiles dp ON dp.name = d.profile"
            f" WHERE p.subject_id = %s AND p.device_time >= %s AND p.device_time < %s AND {_NOT_VICTIM}"
            " ORDER BY p.device_id, p.device_time LIMIT %s",
            (subject_id, since, until, include_victims, limit),
        )
        return await cur.fetchall()


__all__ = ["fixes_in_box", "subject_track"]
