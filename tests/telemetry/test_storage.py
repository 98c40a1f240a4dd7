"""Storage by server: the plain-PostgreSQL path (this machine has no TimescaleDB)."""

from __future__ import annotations

import json

import psycopg

from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.store import timescale
from telemetry.wire import fixes_topic
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
T0 = 1_600_000_000_000  # 2020: far older than a 365-day retention


def test_daily_summary_view_and_retention_keep_evidence(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert timescale.available(conn) is False
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s1', 'P')")
        conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d1', 's1')")
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('home', 'home', 'inclusion',"
                     " 's1', %s)", (json.dumps({"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]}),))
    p = Pipeline(database_url)
    msgs = [InboundMessage(fixes_topic("d1"), json.dumps({"t": T0 + k * 60_000, "lat": HOME[1] + (0.01 if k == 3 else 0),
                                                          "lon": HOME[0], "acc": 5}).encode()) for k in range(6)]
    assert len(p.process(msgs).alert_ids) == 1  # the fourth fix left home
    p.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT fixes FROM device_daily WHERE device_id = 'd1'").fetchone() == (6,)
        deleted = timescale.delete_expired(conn, retention_days=365)
        kept = conn.execute("SELECT count(*) FROM positions").fetchone()
    assert deleted == 4 and kept == (2,)  # the alert's fix (= the open fix) and the close fix (6th) stay
