"""``GET /alerts/{id}/evidence``: GeoJSON of the fixes around an alert, the zone and its
rule parameters, the device's status; audited; 404 outside the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from tests.api.officers import admin, app_client, sign_in

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_evidence_is_geojson_and_audited(database_url: str) -> None:
    with app_client(database_url) as c:
        h = admin(c)
        for sid in ("A", "B"):
            assert c.post("/subjects", headers=h, json={"id": sid, "full_name": sid}).status_code == 201
            assert c.post("/devices", headers=h, json={"id": f"d{sid}", "subject_id": sid}).status_code == 201
        r = c.post("/zones", headers=h, json={"id": "zA", "name": "school", "kind": "exclusion", "subject_id": "A",
                                              "radius_m": 150, "buffer_m": 10, "dwell_open_fixes": 2,
                                              "geometry": {"type": "Point", "coordinates": [69.2, 41.3]}})
        assert r.status_code == 201, r.text
        off_id, off = sign_in(c, "off", "officer")
        assert c.put("/subjects/A/assignment", headers=h, json={"officer_id": off_id}).status_code == 200
        with psycopg.connect(database_url) as conn:
            for i, flags in enumerate(([], [], ["teleport"], [])):
                conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source,"
                             " flags) VALUES ('dA', %s, 'A', %s, 69.2, 5, 'gps', %s)",
                             (T0 + timedelta(minutes=i), 41.3 + i * 1e-4, flags))
            conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                         " VALUES ('dA', %s, 'A', 41.0, 69.0, 5, 'gps')", (T0 + timedelta(hours=2),))
            conn.execute("INSERT INTO device_status (device_id, device_time, battery_pct, strap)"
                         " VALUES ('dA', %s, 80, 'closed')", (T0 + timedelta(seconds=30),))
            (aid,) = conn.execute("INSERT INTO alerts (kind, subject_id, device_id, zone_id, fix_time)"
                                  " VALUES ('exclusion_zone_entered', 'A', 'dA', 'zA', %s) RETURNING id",
                                  (T0 + timedelta(minutes=1),)).fetchone()
        r = c.get(f"/alerts/{aid}/evidence", headers=off)
        assert r.status_code == 200, r.text
        fc = r.json()
        assert fc["type"] == "FeatureCollection" and fc["properties"]["alert_id"] == aid
        kinds = [f["properties"]["kind"] for f in fc["features"]]
        assert kinds == ["fix"] * 4 + ["zone", "status"]  # the fix two hours later is outside the window
        fixes = fc["features"][:4]
        assert [f["properties"]["role"] for f in fixes] == ["context", "alert_fix", "context", "context"]
        assert fixes[1]["geometry"] == {"type": "Point", "coordinates": [69.2, 41.3001]}
        assert fixes[2]["properties"]["flags"] == ["teleport"] and fixes[0]["properties"]["accuracy_m"] == 5
        zone = fc["features"][4]
        assert zone["geometry"] == {"type": "Point", "coordinates": [69.2, 41.3]}
        assert (zone["properties"]["radius_m"], zone["properties"]["buffer_m"], zone["properties"]["dwell_open_fixes"]) \
            == (150, 10, 2)
        assert zone["properties"]["version"] == zone["properties"]["version_at_alert"]
        assert not zone["properties"]["changed_since_alert"]
        assert fc["features"][5]["geometry"] is None and fc["features"][5]["properties"]["battery_pct"] == 80
        # a narrower window; another officer's subject does not exist for this one
        assert len(c.get(f"/alerts/{aid}/evidence", headers=off, params={"window_s": 0}).json()["features"]) == 2
        _, other = sign_in(c, "other", "officer")
        assert c.get(f"/alerts/{aid}/evidence", headers=other).status_code == 404
        _, aud = sign_in(c, "aud", "auditor")
        assert c.get(f"/alerts/{aid}/evidence", headers=aud).status_code == 403
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, target, details->>'rows' FROM audit_log WHERE action = 'alert.evidence_read'"
                            " ORDER BY id").fetchall()
    assert rows == [("off", str(aid), "4"), ("off", str(aid), "1")]
