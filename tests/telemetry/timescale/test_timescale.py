"""The TimescaleDB path: setup twice, compression by the job, retention that keeps every
alert's and violation's evidence, daily totals by local day with late fixes, and the
conversion of a plain database holding data. Jobs are run with ``CALL run_job(id)``
(the WASM build has no background workers, so nothing runs unless a test runs it)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from telemetry.store import migrate as db
from telemetry.store import timescale
from telemetry.store.evidence import evidence_gaps
from tests.telemetry.timescale.conftest import connect

TASHKENT = ZoneInfo("Asia/Tashkent")
NOW = datetime.now(UTC)
HOME = (69.2401, 41.2995)


def _registry(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s1', 'P')")
    conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d1', 's1')")
    conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('home', 'home', 'inclusion', 's1',"
                 " %s)", (json.dumps({"type": "Point", "coordinates": list(HOME)}),))


def _fixes(conn: psycopg.Connection[Any], times: list[datetime], *, late: bool = False) -> None:
    conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source, late)"
                 " SELECT 'd1', t, 's1', %s, %s, 5, 'test', %s FROM unnest(%s::timestamptz[]) AS t",
                 (HOME[1], HOME[0], late, times))


def _statuses(conn: psycopg.Connection[Any], times: list[datetime]) -> None:
    conn.execute("INSERT INTO device_status (device_id, device_time, battery_pct, strap)"
                 " SELECT 'd1', t, 50, 'closed' FROM unnest(%s::timestamptz[]) AS t", (times,))


def _evidence_rows(conn: psycopg.Connection[Any], opened: datetime, closed: datetime, status: datetime) -> None:
    """A violation opened and closed by two fixes, its alert, and a status-backed alert."""
    row = conn.execute("INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time, closed_at,"
                       " close_fix_time) VALUES ('s1', 'd1', 'home', now(), %s, now(), %s) RETURNING id",
                       (opened, closed)).fetchone()
    assert row is not None
    conn.execute("INSERT INTO alerts (kind, device_id, violation_id, fix_time) VALUES ('zone_exit', 'd1', %s, %s)",
                 (row[0], opened))
    conn.execute("INSERT INTO alerts (kind, device_id, status_time) VALUES ('strap_cut', 'd1', %s)", (status,))


def _job(conn: psycopg.Connection[Any], proc: str, table: str) -> int:
    rows = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s"
                        " AND hypertable_name = %s", (proc, table)).fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0])


def _jobs(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p, t): c for p, t, c in conn.execute(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")}


def test_setup_twice_then_a_new_retention_period_updates_the_policies(timescale_url: str) -> None:
    assert len(db.upgrade(timescale_url)) >= 5
    with connect(timescale_url) as conn:
        first = _jobs(conn)
    assert db.upgrade(timescale_url) == []  # nothing to migrate, setup again: nothing changes
    with connect(timescale_url) as conn:
        assert timescale.installed(conn)
        assert _jobs(conn) == first
        hypertables = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1")
        assert hypertables.fetchall() == [("device_status",), ("positions",)]
        settings = conn.execute("SELECT hypertable::text, segmentby, orderby"
                                " FROM timescaledb_information.hypertable_compression_settings"
                                " WHERE hypertable::text IN ('positions', 'device_status') ORDER BY 1")
        assert settings.fetchall() == [("device_status", "device_id", "device_time DESC"),
                                       ("positions", "device_id", "device_time DESC")]
        cagg = conn.execute("SELECT materialized_only FROM timescaledb_information.continuous_aggregates"
                            " WHERE view_name = 'device_daily'").fetchall()
        assert cagg == [(False,)]  # real-time
    assert {k: v.get("drop_after") for k, v in first.items() if k[0] == "policy_retention"} == {
        ("policy_retention", "positions"): "1095 days", ("policy_retention", "device_status"): "1095 days"}
    assert first[("policy_refresh_continuous_aggregate", "device_daily")]["start_offset"] is None
    db.upgrade(timescale_url, retention_days=30)
    with connect(timescale_url) as conn:
        now = _jobs(conn)
    assert {k: v.get("drop_after") for k, v in now.items() if k[0] == "policy_retention"} == {
        ("policy_retention", "positions"): "30 days", ("policy_retention", "device_status"): "30 days"}
    assert {k for k in now} == {k for k in first}  # one policy of each kind still


def test_the_compression_job_compresses_old_chunks_and_evidence_still_works(timescale_url: str) -> None:
    db.upgrade(timescale_url)
    old = [NOW - timedelta(days=30, minutes=m) for m in range(5)]
    recent = [NOW - timedelta(minutes=m) for m in range(5)]
    with connect(timescale_url) as conn:
        _registry(conn)
        _fixes(conn, old + recent)
        _statuses(conn, old + recent)
        _evidence_rows(conn, old[1], old[0], old[2])
        for table in timescale.HYPERTABLES:
            conn.execute("CALL run_job(%s)", (_job(conn, "policy_compression", table),))
        chunks = conn.execute("SELECT hypertable_name, range_end <= now() - interval '7 days', is_compressed"
                              " FROM timescaledb_information.chunks").fetchall()
        assert {(t, is_old) for t, is_old, compressed in chunks if compressed} == {
            ("positions", True), ("device_status", True)}
        assert not any(compressed for _, is_old, compressed in chunks if not is_old)
        # a replayed fix into a compressed chunk is still a no-op, and an alert raised now
        # on a fix in a compressed chunk still gets its evidence
        replay = conn.execute("INSERT INTO positions (device_id, device_time, lat, lon, accuracy_m, source)"
                              " VALUES ('d1', %s, 0, 0, 5, 'test') ON CONFLICT DO NOTHING RETURNING 1", (old[3],))
        assert replay.fetchall() == []
        conn.execute("INSERT INTO alerts (kind, device_id, fix_time) VALUES ('communication_loss', 'd1', %s)",
                     (old[4],))
        assert conn.execute("SELECT count(*) FROM evidence_positions").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (10,)
        assert evidence_gaps(conn) == 0
    db.upgrade(timescale_url)  # a restart: setup again over compressed chunks changes nothing
    with connect(timescale_url) as conn:
        assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE is_compressed"
                            ).fetchone() == (2,)


def test_retention_drops_old_chunks_and_every_alerts_and_violations_evidence_stays(timescale_url: str) -> None:
    db.upgrade(timescale_url, retention_days=30)
    old = [NOW - timedelta(days=60, minutes=m) for m in range(5)]
    recent = [NOW - timedelta(minutes=m) for m in range(5)]
    with connect(timescale_url) as conn:
        _registry(conn)
        _fixes(conn, old + recent)
        _statuses(conn, old + recent)
        _evidence_rows(conn, old[1], old[0], old[2])
        _evidence_rows(conn, recent[1], recent[0], recent[2])
        for table in timescale.HYPERTABLES:  # compressed first, as a deployment's old chunks are
            conn.execute("CALL run_job(%s)", (_job(conn, "policy_compression", table),))
            conn.execute("CALL run_job(%s)", (_job(conn, "policy_retention", table),))
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM device_status").fetchone() == (5,)
        assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks"
                            " WHERE range_end < now() - interval '30 days'").fetchone() == (0,)
        # every alert and violation still reads its fix or status report
        assert evidence_gaps(conn) == 0
        alerts = conn.execute(
            "SELECT a.kind, coalesce(p.lat, s.battery_pct) FROM alerts a"
            " LEFT JOIN evidence_positions p ON (p.device_id, p.device_time) = (a.device_id, a.fix_time)"
            " LEFT JOIN evidence_status s ON (s.device_id, s.device_time) = (a.device_id, a.status_time)"
            " ORDER BY a.id").fetchall()
        assert alerts == [("zone_exit", HOME[1]), ("strap_cut", 50), ("zone_exit", HOME[1]), ("strap_cut", 50)]
        violations = conn.execute(
            "SELECT count(*) FROM violations v JOIN evidence_positions o ON (o.device_id, o.device_time)"
            " = (v.device_id, v.open_fix_time) JOIN evidence_positions c ON (c.device_id, c.device_time)"
            " = (v.device_id, v.close_fix_time)").fetchone()
        assert violations == (2,)


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TASHKENT)


def test_daily_totals_by_local_day_include_late_fixes(timescale_url: str) -> None:
    db.upgrade(timescale_url)
    day = (NOW.astimezone(TASHKENT) - timedelta(days=10)).date()
    with connect(timescale_url) as conn:
        _registry(conn)
        # 23:30 and 00:30 local: one UTC day (18:30 and 19:30 UTC), two local days
        _fixes(conn, [_local(day, 23, 30), _local(day, 23, 30) + timedelta(hours=1)])
        refresh = _job(conn, "policy_refresh_continuous_aggregate", "device_daily")
        conn.execute("CALL run_job(%s)", (refresh,))
        totals = "SELECT (day AT TIME ZONE 'Asia/Tashkent')::date, fixes, late_fixes FROM device_daily ORDER BY day"
        assert conn.execute(totals).fetchall() == [(day, 1, 0), (day + timedelta(days=1), 1, 0)]
        # store-and-forward: fixes of ten days ago arrive now, after that day was materialized
        _fixes(conn, [_local(day, 12), _local(day, 12, 1)], late=True)
        # and today's fix is counted at once (real-time aggregation), before any refresh
        _fixes(conn, [NOW])
        today = NOW.astimezone(TASHKENT).date()
        assert conn.execute(totals).fetchall()[-1] == (today, 1, 0)
        conn.execute("CALL run_job(%s)", (refresh,))
        assert conn.execute(totals).fetchall() == [(day, 3, 2), (day + timedelta(days=1), 1, 0), (today, 1, 0)]
    db.upgrade(timescale_url, timezone="UTC")  # another deployment's day: the aggregate is rebuilt
    with connect(timescale_url) as conn:
        utc = "SELECT (day AT TIME ZONE 'UTC')::date, fixes, late_fixes FROM device_daily ORDER BY day"
        assert conn.execute(utc).fetchall() == [(day, 4, 2), (NOW.date(), 1, 0)]
        assert len(_jobs(conn)) == 5  # still one refresh policy, beside compression and retention per table


def test_a_plain_database_holding_data_is_converted(pglite_url: str) -> None:
    old = [NOW - timedelta(days=20, minutes=m) for m in range(5)]
    recent = [NOW - timedelta(minutes=m) for m in range(5)]
    db.upgrade(pglite_url)  # TimescaleDB available, not installed: the plain path
    with connect(pglite_url) as conn:
        assert not timescale.installed(conn) and timescale.can_install(conn)
        _registry(conn)
        _fixes(conn, old + recent)
        _statuses(conn, old + recent)
        _evidence_rows(conn, old[1], old[0], old[2])
        daily_sql = "SELECT device_id, day, fixes, first_fix, last_fix FROM device_daily ORDER BY day"
        daily = conn.execute(daily_sql).fetchall()
        assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'device_daily'").fetchone() == ("v",)
        conn.execute("CREATE EXTENSION timescaledb")  # the operator's step
    db.upgrade(pglite_url)
    with connect(pglite_url) as conn:
        assert conn.execute("SELECT count(*) FROM timescaledb_information.hypertables").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (10,)
        assert conn.execute("SELECT count(*) FROM device_status").fetchone() == (10,)
        assert conn.execute("SELECT count(*) FROM ONLY positions").fetchone() == (0,)  # all moved into chunks
        assert conn.execute("SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                            " WHERE view_name = 'device_daily'").fetchone() == (1,)
        assert conn.execute(daily_sql).fetchall() == daily
        for table in timescale.HYPERTABLES:  # the migrated old chunks compress
            conn.execute("CALL run_job(%s)", (_job(conn, "policy_compression", table),))
        assert conn.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE is_compressed"
                            ).fetchone() == (2,)
        assert evidence_gaps(conn) == 0
