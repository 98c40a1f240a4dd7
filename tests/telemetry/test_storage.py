"""Storage by server: the plain-PostgreSQL path (the TimescaleDB tier is under timescale/),
and the evidence behind alerts and violations, which both paths keep apart from the bulk
tables."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from telemetry.errors import InvalidInputError
from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.settings import Settings
from telemetry.store import migrate as db
from telemetry.store import timescale
from telemetry.store.evidence import evidence_gaps
from telemetry.wire import fixes_topic
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
T0 = 1_600_000_000_000  # 2020: far older than a 365-day retention
EVIDENCE_FKS = {"alerts_fix_evidence", "alerts_status_evidence", "violations_open_evidence",
                "violations_close_evidence"}


def _registry(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s1', 'P')")
    conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d1', 's1')")
    conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('home', 'home', 'inclusion',"
                 " 's1', %s)", (json.dumps({"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]}),))


def _fix(conn: psycopg.Connection[Any], at: str, lat: float = HOME[1]) -> None:
    conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                 " VALUES ('d1', %s, 's1', %s, %s, 5, 'test')", (at, lat, HOME[0]))


def test_daily_summary_view_and_retention_keep_evidence(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert timescale.installed(conn) is False
        _registry(conn)
    p = Pipeline(database_url)
    msgs = [InboundMessage(fixes_topic("d1"), json.dumps({"t": T0 + k * 60_000, "lat": HOME[1] + (0.01 if k == 3 else 0),
                                                          "lon": HOME[0], "acc": 5}).encode()) for k in range(6)]
    assert len(p.process(msgs).alert_ids) == 1  # the fourth fix left home
    p.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT fixes FROM device_daily WHERE device_id = 'd1'").fetchone() == (6,)
        deleted = timescale.delete_expired(conn, retention_days=365)
        assert deleted == 6 and conn.execute("SELECT count(*) FROM positions").fetchone() == (0,)
        # the alert's fix (= the violation's open fix) and the close fix stay, as evidence
        assert conn.execute("SELECT count(*) FROM evidence_positions").fetchone() == (2,)
        assert conn.execute("SELECT e.lat FROM alerts a JOIN evidence_positions e ON (e.device_id, e.device_time)"
                            " = (a.device_id, a.fix_time)").fetchone() == (HOME[1] + 0.01,)
        assert evidence_gaps(conn) == 0


def test_every_writer_gets_evidence_and_an_unstored_fix_is_refused(database_url: str) -> None:
    """The trigger, not the pipeline, copies the evidence: a plain INSERT (the silence
    check, the API) is covered the same way."""
    with psycopg.connect(database_url) as conn:
        _registry(conn)
        _fix(conn, "2020-01-01T10:00Z")
        _fix(conn, "2020-01-01T10:05Z", HOME[1] + 0.01)
        conn.execute("INSERT INTO device_status (device_id, device_time, strap) VALUES ('d1', '2020-01-01T10:01Z',"
                     " 'cut')")
        vid = conn.execute("INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time)"
                           " VALUES ('s1', 'd1', 'home', now(), '2020-01-01T10:00Z') RETURNING id").fetchone()
        assert vid is not None
        conn.execute("INSERT INTO alerts (kind, device_id, violation_id, fix_time) VALUES ('zone_exit', 'd1', %s,"
                     " '2020-01-01T10:00Z')", vid)
        conn.execute("INSERT INTO alerts (kind, device_id, status_time) VALUES ('strap_cut', 'd1', '2020-01-01T10:01Z')")
        conn.execute("UPDATE violations SET closed_at = now(), close_fix_time = '2020-01-01T10:05Z' WHERE id = %s", vid)
        conn.execute("UPDATE alerts SET status = 'acknowledged'")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM evidence_positions").fetchone() == (2,)
        assert conn.execute("SELECT strap FROM evidence_status").fetchone() == ("cut",)
        assert evidence_gaps(conn) == 0
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="alerts_fix_evidence"):
            conn.execute("INSERT INTO alerts (kind, device_id, fix_time) VALUES ('x', 'd1', '2020-01-02T00:00Z')")
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="violations_close_evidence"):
            conn.execute("UPDATE violations SET close_fix_time = '2020-01-02T00:00Z'")
        conn.rollback()
        # evidence is never deleted while an alert or violation refers to it
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("DELETE FROM evidence_positions")
        conn.rollback()
        # and nothing references the bulk tables: retention is free to drop any of their rows
        refs = conn.execute("SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                            " AND confrelid IN ('positions'::regclass, 'device_status'::regclass)").fetchone()
        assert refs == (0,)


def test_evidence_tables_have_the_bulk_tables_columns(database_url: str) -> None:
    """A column added to positions or device_status must reach its evidence table too."""
    query = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
             " AND table_name = %s ORDER BY ordinal_position")
    with psycopg.connect(database_url) as conn:
        for bulk, copy in (("positions", "evidence_positions"), ("device_status", "evidence_status")):
            assert conn.execute(query, (copy,)).fetchall() == conn.execute(query, (bulk,)).fetchall()


def test_daily_view_counts_the_deployments_local_days(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _registry(conn)
        for at in ("2020-09-13T18:30Z", "2020-09-13T19:30Z", "2020-09-13T20:30Z"):  # 23:30, 00:30, 01:30 in Tashkent
            _fix(conn, at)
        conn.commit()
        days = "SELECT (day AT TIME ZONE %s)::date::text, fixes FROM device_daily ORDER BY day"
        assert conn.execute(days, ("Asia/Tashkent",)).fetchall() == [("2020-09-13", 1), ("2020-09-14", 2)]
    db.upgrade(database_url, timezone="UTC")  # another deployment's day: the view follows the setting
    with psycopg.connect(database_url) as conn:
        assert conn.execute(days, ("UTC",)).fetchall() == [("2020-09-13", 3)]


def test_unknown_time_zones_are_refused(database_url: str) -> None:
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(timezone="Mars/Olympus")  # type: ignore[call-arg]  # the rest from defaults
    with pytest.raises(InvalidInputError, match="Mars/Olympus"):
        db.upgrade(database_url, timezone="Mars/Olympus")


@pytest.fixture
def schema_v4_url(pg_admin_url: str) -> Iterator[str]:
    """A database at migration 0004: before the evidence tables."""
    name = f"nz_v4_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    url = pg_admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        for version, file, statements in db.migrations():
            if version <= 4:
                conn.execute(statements.encode())
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, file))
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _v4_data(conn: psycopg.Connection[Any]) -> None:
    _registry(conn)
    for minute in range(6):
        _fix(conn, f"2020-01-01T10:0{minute}Z", HOME[1] + (0.01 if minute == 2 else 0))
    conn.execute("INSERT INTO device_status (device_id, device_time, battery_pct) VALUES ('d1', '2020-01-01T10:01Z',"
                 " 3), ('d1', '2020-01-01T10:03Z', 2)")
    vid = conn.execute("INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time, closed_at,"
                       " close_fix_time) VALUES ('s1', 'd1', 'home', now(), '2020-01-01T10:02Z', now(),"
                       " '2020-01-01T10:04Z') RETURNING id").fetchone()
    assert vid is not None
    conn.execute("INSERT INTO alerts (kind, device_id, violation_id, fix_time) VALUES ('zone_exit', 'd1', %s,"
                 " '2020-01-01T10:02Z')", vid)
    conn.execute("INSERT INTO alerts (kind, device_id, status_time) VALUES ('battery_critical', 'd1',"
                 " '2020-01-01T10:01Z')")


def test_upgrade_backfills_evidence_on_a_database_holding_data(schema_v4_url: str) -> None:
    with psycopg.connect(schema_v4_url) as conn:
        _v4_data(conn)
    assert db.upgrade(schema_v4_url)[0] == "0005_evidence.sql"
    with psycopg.connect(schema_v4_url) as conn:
        assert conn.execute("SELECT device_time, lat FROM evidence_positions ORDER BY 1").fetchall() == [
            (datetime(2020, 1, 1, 10, 2, tzinfo=UTC), HOME[1] + 0.01), (datetime(2020, 1, 1, 10, 4, tzinfo=UTC), HOME[1])]
        assert conn.execute("SELECT battery_pct FROM evidence_status").fetchall() == [(3,)]
        valid = conn.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f'"
                             " AND conrelid IN ('alerts'::regclass, 'violations'::regclass)"
                             " AND confrelid IN ('evidence_positions'::regclass, 'evidence_status'::regclass)")
        assert dict(valid.fetchall()) == dict.fromkeys(EVIDENCE_FKS, True)
        assert evidence_gaps(conn) == 0
        assert timescale.delete_expired(conn, retention_days=1) == 8
        assert conn.execute("SELECT count(*) FROM alerts a JOIN evidence_positions e"
                            " ON (e.device_id, e.device_time) = (a.device_id, a.fix_time)").fetchone() == (1,)


def test_evidence_lost_before_the_upgrade_is_counted_not_fatal(schema_v4_url: str) -> None:
    """What the old TimescaleDB setup could leave behind: drop_chunks removed the fix under
    an alert along with the foreign key. The upgrade still succeeds, new rows are still
    checked, and evidence_gaps() reports the loss."""
    with psycopg.connect(schema_v4_url) as conn:
        _v4_data(conn)
        conn.execute("ALTER TABLE alerts DROP CONSTRAINT alerts_device_id_fix_time_fkey")
        conn.execute("ALTER TABLE violations DROP CONSTRAINT violations_device_id_open_fix_time_fkey")
        conn.execute("DELETE FROM positions WHERE device_time = '2020-01-01T10:02Z'")
    db.upgrade(schema_v4_url)
    with psycopg.connect(schema_v4_url) as conn:
        assert evidence_gaps(conn) == 2  # the alert and the violation it opened
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="alerts_fix_evidence"):
            conn.execute("INSERT INTO alerts (kind, device_id, fix_time) VALUES ('x', 'd1', '2020-01-02T00:00Z')")
