"""Storage features by server: TimescaleDB when the extension exists, plain PostgreSQL
otherwise. Detected at start-up (``nazorat db upgrade``, ``run``, ``serve``) and logged.

With TimescaleDB: ``positions`` and ``device_status`` become hypertables (7-day chunks),
compressed after 7 days (segmented by device), dropped after the retention period, and
``device_daily`` is a continuous aggregate of per-device daily summaries (fixes, late
and flagged fixes, first and last fix). Without it: the same tables (BRIN on time), the
same queries, ``device_daily`` as a plain view, and retention by ``delete_expired``, which
a worker runs on a schedule. Both paths keep every fix that an alert or violation refers
to: evidence is never deleted by retention.

This machine's package registries have no TimescaleDB build, so the TimescaleDB branch is
exercised only where the extension is installed; the plain branch is tested here.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

log = logging.getLogger(__name__)

_DAILY_SELECT = (
    "SELECT device_id, {bucket} AS day, count(*) AS fixes, count(*) FILTER (WHERE late) AS late_fixes,"
    " count(*) FILTER (WHERE flags <> '{{}}') AS flagged_fixes, min(device_time) AS first_fix,"
    " max(device_time) AS last_fix FROM positions GROUP BY device_id, day"
)


def available(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None


def setup(conn: psycopg.Connection[Any], *, retention_days: int = 1095) -> str:
    """Create the server-specific parts; returns "timescaledb" or "postgresql"."""
    if available(conn):
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table in ("positions", "device_status"):
            conn.execute(
                f"SELECT create_hypertable('{table}', 'device_time', chunk_time_interval => interval '7 days',"
                " migrate_data => true, if_not_exists => true)".encode())
            conn.execute(f"ALTER TABLE {table} SET (timescaledb.compress,"
                         " timescaledb.compress_segmentby = 'device_id')".encode())
            conn.execute(f"SELECT add_compression_policy('{table}', interval '7 days', if_not_exists => true)".encode())
            conn.execute(f"SELECT add_retention_policy('{table}', interval '{int(retention_days)} days',"
                         " if_not_exists => true)".encode())
        conn.execute(("CREATE MATERIALIZED VIEW IF NOT EXISTS device_daily WITH (timescaledb.continuous) AS "
                      + _DAILY_SELECT.format(bucket="time_bucket('1 day', device_time)")).encode())
        conn.execute("SELECT add_continuous_aggregate_policy('device_daily', start_offset => interval '3 days',"
                     " end_offset => interval '1 hour', schedule_interval => interval '1 hour', if_not_exists => true)")
        log.info("TimescaleDB present: hypertables, compression, retention %d days, continuous aggregate",
                 retention_days)
        return "timescaledb"
    conn.execute(("CREATE OR REPLACE VIEW device_daily AS "
                  + _DAILY_SELECT.format(bucket="date_trunc('day', device_time)")).encode())
    log.info("TimescaleDB not available: plain PostgreSQL tables, retention by scheduled delete")
    return "postgresql"


def delete_expired(conn: psycopg.Connection[Any], retention_days: int) -> int:
    """Plain-PostgreSQL retention: delete fixes and status reports older than the
    retention period, except those an alert or violation refers to. Returns rows deleted."""
    cutoff = "now() - make_interval(days => %s)"
    with conn.transaction():
        fixes = conn.execute(
            f"DELETE FROM positions p WHERE device_time < {cutoff}"
            " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.device_id = p.device_id AND a.fix_time = p.device_time)"
            " AND NOT EXISTS (SELECT 1 FROM violations v WHERE v.device_id = p.device_id"
            "  AND p.device_time IN (v.open_fix_time, v.close_fix_time))".encode(), (retention_days,)).rowcount
        statuses = conn.execute(
            f"DELETE FROM device_status s WHERE device_time < {cutoff} AND NOT EXISTS"
            " (SELECT 1 FROM alerts a WHERE a.device_id = s.device_id AND a.status_time = s.device_time)".encode(),
            (retention_days,)).rowcount
    return fixes + statuses


__all__ = ["available", "delete_expired", "setup"]
