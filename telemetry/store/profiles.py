"""Device profiles (reporting interval and thresholds) and which devices use them. The
API has no route for them yet: operators (and the simulator's compressed replays) set
them here, announced on the registry channel so running engines reload."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from telemetry.store.sql import REGISTRY_CHANNEL

PROFILE_COLUMNS = ("battery_low", "battery_critical", "report_interval_s", "grace_s", "gps_loss_s", "clock_skew_s")


def put_device_profile(conn: psycopg.Connection[Any], name: str, values: Mapping[str, int],
                       device_ids: Sequence[str]) -> None:
    """Create or update profile ``name`` with ``values`` (columns of PROFILE_COLUMNS only)
    and move ``device_ids`` to it, then announce the registry change (commit is the
    caller's)."""
    unknown = set(values) - set(PROFILE_COLUMNS)
    if unknown:
        raise ValueError(f"not profile columns: {sorted(unknown)}")
    cols = [sql.Identifier(c) for c in values]
    conn.execute(sql.SQL("INSERT INTO device_profiles (name, {cols}) VALUES (%s, {params})"
                         " ON CONFLICT (name) DO UPDATE SET ({cols}) = ROW({excluded})").format(
        cols=sql.SQL(", ").join(cols), params=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        excluded=sql.SQL(", ").join(sql.SQL("excluded.{}").format(c) for c in cols)),
        (name, *values.values()))
    conn.execute("UPDATE devices SET profile = %s WHERE id = ANY(%s)", (name, list(device_ids)))
    conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")


__all__ = ["PROFILE_COLUMNS", "put_device_profile"]
