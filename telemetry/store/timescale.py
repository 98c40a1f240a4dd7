"""Storage features by server: TimescaleDB when the extension is installed in the
database, plain PostgreSQL otherwise. Detected by ``setup`` (``nazorat db upgrade``,
``run``, ``serve``) and logged.

With TimescaleDB: ``positions`` and ``device_status`` become hypertables (7-day chunks;
existing rows are migrated into chunks), compressed after 7 days (segmented by device,
ordered by device time descending), dropped after the retention period, and
``device_daily`` is a continuous aggregate of per-device daily summaries (fixes, late and
flagged fixes, first and last fix) by the deployment's local day. Without it: the same
tables (BRIN on time), the same ``device_daily`` columns as a plain view, and retention
by ``delete_expired``, which a worker runs on a schedule. On both paths the evidence
behind alerts and violations lives in its own tables (``telemetry.store.evidence``), so
retention deletes bulk rows freely.

Installing the extension is the operator's step (``CREATE EXTENSION timescaledb`` as a
superuser, with ``timescaledb`` in ``shared_preload_libraries``): creating it from here
on a server that does not preload it ends the session, and a database that only *could*
have it must keep working on the plain path. Run ``nazorat db upgrade`` again afterwards
and the plain database, data included, is converted.

Every step is idempotent: run twice, it changes nothing; run with another retention
period or time zone, it updates the policy or rebuilds the aggregate.

The continuous aggregate is real-time (``materialized_only = false``): fixes newer than
the last refresh are aggregated when read. Its refresh policy has no start offset, so a
late fix, however late, reaches its day at the next refresh; refreshes are incremental
(only days that received rows since the last one are recomputed), and days whose chunks
retention dropped leave the aggregate too, as they leave the plain view.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from telemetry.errors import InvalidInputError

log = logging.getLogger(__name__)

HYPERTABLES = ("positions", "device_status")
CHUNK_INTERVAL = "7 days"
COMPRESS_AFTER = "7 days"
_SEGMENT_BY = "device_id"
_ORDER_BY = "device_time DESC"

_DAILY_SELECT = (
    "SELECT device_id, {bucket} AS day, count(*) AS fixes, count(*) FILTER (WHERE late) AS late_fixes,"
    " count(*) FILTER (WHERE flags <> '{{}}') AS flagged_fixes, min(device_time) AS first_fix,"
    " max(device_time) AS last_fix FROM positions GROUP BY device_id, day"
)


def installed(conn: psycopg.Connection[Any]) -> bool:
    """TimescaleDB is installed in this database (``pg_extension``): the path in use."""
    return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None


def can_install(conn: psycopg.Connection[Any]) -> bool:
    """The server ships TimescaleDB (``pg_available_extensions``), installed or not."""
    return conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone() is not None


def setup(conn: psycopg.Connection[Any], *, retention_days: int = 1095, timezone: str = "Asia/Tashkent") -> str:
    """Create or update the server-specific parts; returns "timescaledb" or "postgresql".

    ``conn`` must be in autocommit mode: a continuous aggregate is refreshed outside any
    transaction block. Each step commits on its own, so a failure leaves the steps before
    it done and the next run resumes."""
    if not conn.autocommit:
        raise InvalidInputError("conn", "setup needs an autocommit connection")
    if retention_days < 1:
        raise InvalidInputError("retention_days", f"must be at least 1, got {retention_days}")
    if conn.execute("SELECT 1 FROM pg_timezone_names WHERE name = %s", (timezone,)).fetchone() is None:
        raise InvalidInputError("timezone", f"{timezone!r} is not a time zone this server knows")
    if installed(conn):
        for table in HYPERTABLES:
            _hypertable(conn, table)
            _compression(conn, table)
            _retention(conn, table, retention_days)
        _daily_aggregate(conn, timezone)
        log.info("TimescaleDB: hypertables %s, compression after %s, retention %d days, device_daily by local"
                 " day in %s", ", ".join(HYPERTABLES), COMPRESS_AFTER, retention_days, timezone)
        return "timescaledb"
    _daily_view(conn, timezone)
    if can_install(conn):
        log.info("TimescaleDB is available on this server but not installed in this database: plain PostgreSQL"
                 " tables, retention by scheduled delete. To convert: CREATE EXTENSION timescaledb (as a"
                 " superuser), then nazorat db upgrade")
    else:
        log.info("TimescaleDB not available: plain PostgreSQL tables, retention by scheduled delete")
    return "postgresql"


def _hypertable(conn: psycopg.Connection[Any], table: str) -> None:
    if conn.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = current_schema()"
                    " AND hypertable_name = %s", (table,)).fetchone() is not None:
        return
    with conn.transaction():
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        conn.execute("SELECT create_hypertable(%s::regclass, by_range('device_time', %s::interval),"
                     " migrate_data => true, if_not_exists => true)", (table, CHUNK_INTERVAL))
    log.info("TimescaleDB: %s is now a hypertable (%d existing rows moved into chunks)", table,
             rows[0] if rows else 0)


def _compression(conn: psycopg.Connection[Any], table: str) -> None:
    current = conn.execute(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
        " WHERE hypertable = %s::regclass", (table,)).fetchone()
    if current != (_SEGMENT_BY, _ORDER_BY):
        conn.execute(sql.SQL("ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {},"
                             " timescaledb.compress_orderby = {})").format(
            sql.Identifier(table), sql.Literal(_SEGMENT_BY), sql.Literal(_ORDER_BY)))
    conn.execute("SELECT add_compression_policy(%s::regclass, compress_after => %s::interval, if_not_exists => true)",
                 (table, COMPRESS_AFTER))


def _retention(conn: psycopg.Connection[Any], table: str, retention_days: int) -> None:
    """One retention policy per table, dropping after exactly ``retention_days``."""
    jobs = conn.execute(
        "SELECT job_id, (config->>'drop_after')::interval = make_interval(days => %s) FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() AND hypertable_name = %s",
        (retention_days, table)).fetchall()
    if len(jobs) == 1 and jobs[0][1]:
        return
    with conn.transaction():
        conn.execute("SELECT remove_retention_policy(%s::regclass, if_exists => true)", (table,))
        conn.execute("SELECT add_retention_policy(%s::regclass, drop_after => make_interval(days => %s))",
                     (table, retention_days))
    log.info("TimescaleDB: %s retention set to %d days", table, retention_days)


def _daily_comment(timezone: str) -> str:
    return f"nazorat: per-device daily summary, local days in {timezone}"


def _daily_aggregate(conn: psycopg.Connection[Any], timezone: str) -> None:
    """``device_daily`` as a real-time continuous aggregate by local day: created ``WITH NO
    DATA`` (a ``WITH DATA`` create cannot run in a transaction block), then refreshed
    outside one. A plain view (from the plain path, before conversion) or an aggregate
    by another time zone is replaced."""
    is_cagg = conn.execute("SELECT 1 FROM timescaledb_information.continuous_aggregates"
                           " WHERE view_schema = current_schema() AND view_name = 'device_daily'").fetchone()
    comment = conn.execute("SELECT obj_description(to_regclass('device_daily'), 'pg_class')").fetchone()
    up_to_date = is_cagg is not None and comment is not None and comment[0] == _daily_comment(timezone)
    if not up_to_date:
        with conn.transaction():
            if is_cagg is not None:
                conn.execute("DROP MATERIALIZED VIEW device_daily")
            else:
                conn.execute("DROP VIEW IF EXISTS device_daily")
            bucket = sql.SQL("time_bucket('1 day', device_time, {})").format(sql.Literal(timezone))
            conn.execute(sql.SQL(
                "CREATE MATERIALIZED VIEW device_daily WITH (timescaledb.continuous,"
                " timescaledb.materialized_only = false) AS {} WITH NO DATA").format(
                sql.SQL(_DAILY_SELECT).format(bucket=bucket)))
            conn.execute(sql.SQL("COMMENT ON VIEW device_daily IS {}").format(sql.Literal(_daily_comment(timezone))))
        log.info("TimescaleDB: device_daily created as a continuous aggregate by local day in %s", timezone)
    conn.execute("SELECT add_continuous_aggregate_policy('device_daily', start_offset => NULL,"
                 " end_offset => interval '1 hour', schedule_interval => interval '1 hour', if_not_exists => true)")
    conn.execute("CALL refresh_continuous_aggregate('device_daily', NULL, NULL)")


def _daily_view(conn: psycopg.Connection[Any], timezone: str) -> None:
    bucket = sql.SQL("date_trunc('day', device_time, {})").format(sql.Literal(timezone))
    with conn.transaction():
        conn.execute(sql.SQL("CREATE OR REPLACE VIEW device_daily AS {}").format(
            sql.SQL(_DAILY_SELECT).format(bucket=bucket)))
        conn.execute(sql.SQL("COMMENT ON VIEW device_daily IS {}").format(sql.Literal(_daily_comment(timezone))))


def delete_expired(conn: psycopg.Connection[Any], retention_days: int) -> int:
    """Plain-PostgreSQL retention: delete fixes and status reports older than the
    retention period. The evidence behind alerts and violations is in its own tables and
    stays. Returns rows deleted."""
    cutoff = "now() - make_interval(days => %s)"
    with conn.transaction():
        fixes = conn.execute(f"DELETE FROM positions WHERE device_time < {cutoff}".encode(),
                             (retention_days,)).rowcount
        statuses = conn.execute(f"DELETE FROM device_status WHERE device_time < {cutoff}".encode(),
                                (retention_days,)).rowcount
    return fixes + statuses


__all__ = ["CHUNK_INTERVAL", "COMPRESS_AFTER", "HYPERTABLES", "can_install", "delete_expired",
           "installed", "setup"]
