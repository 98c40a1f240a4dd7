"""API: authentication, uniform errors, audit of location reads, GeoJSON import."""

from __future__ import annotations

import httpx
import psycopg

from tests.conftest import Stack
from tests.geofence.workloads import rect_ring


def test_every_data_route_needs_the_token(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api_url) as anon:
        for path in ("/alerts", "/subjects", "/devices", "/zones", "/dead-letters", "/metrics", "/map/latest",
                     "/subjects/x/positions"):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "unauthenticated" and r.json()["status"] == 401
        assert anon.get("/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert anon.get("/healthz").json() == {"status": "ok"}


def test_bad_bodies_get_uniform_422(stack: Stack) -> None:
    with stack.client() as c:
        r = c.post("/subjects", json={"id": "bad id!", "full_name": ""})
        assert r.status_code == 422 and r.json()["code"] == "invalid"
        assert c.post("/subjects", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422
        assert c.post("/subjects", json={"id": "s", "full_name": "x"}).status_code == 201
        assert c.post("/subjects", json={"id": "s", "full_name": "x"}).json()["code"] == "conflict"
        bowtie = [[69.0, 41.0], [69.01, 41.01], [69.01, 41.0], [69.0, 41.01], [69.0, 41.0]]
        r = c.post("/zones", json={"id": "z", "name": "z", "kind": "exclusion", "subject_id": "s",
                                   "geometry": {"type": "Polygon", "coordinates": [bowtie]}})
        assert r.status_code == 422 and "Self-intersection" in r.json()["detail"]
        r = c.post("/zones", json={"id": "z", "name": "z", "kind": "exclusion", "subject_id": "nobody",
                                   "geometry": {"type": "Polygon", "coordinates": [rect_ring(69.2, 41.3, 50, 50)]}})
        assert r.status_code == 404
        assert c.get("/subjects/none").status_code == 404


def test_geojson_import_and_audited_history(stack: Stack) -> None:
    with stack.client() as c:
        assert c.post("/subjects", json={"id": "s9", "full_name": "x"}).status_code == 201
        fc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "school-1", "name": "School", "kind": "exclusion",
                                               "category": "sex_offence"},
             "geometry": {"type": "Polygon", "coordinates": [rect_ring(69.25, 41.3, 120, 90)]}},
            {"type": "Feature", "properties": {"id": "s9-home", "name": "home", "kind": "inclusion",
                                               "subject_id": "s9", "radius_m": 80,
                                               "schedule": [{"days": ["mon"], "start": "22:00", "end": "06:00"}]},
             "geometry": {"type": "Point", "coordinates": [69.24, 41.29]}},
        ]}
        r = c.post("/zones/import", json=fc)
        assert r.status_code == 201, r.text
        assert {z["id"] for z in c.get("/zones").json()} == {"school-1", "s9-home"}
        assert c.get("/subjects/s9/positions").status_code == 200
    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT actor, action, subject_id FROM audit_log WHERE action = 'positions.read'").fetchall()
    assert rows == [("admin", "positions.read", "s9")]
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'zones.read'").fetchone() == (1,)


def test_absences_victim_links_and_dwell_fields(stack: Stack) -> None:
    with stack.client() as c:
        assert c.post("/subjects", json={"id": "s7", "full_name": "x"}).status_code == 201
        r = c.post("/subjects/s7/absences", json={"starts_at": "2026-12-01T09:00:00+05:00",
                                                  "ends_at": "2026-12-01T08:00:00+05:00", "reason": "hospital"})
        assert r.status_code == 422 and "ends_at" in r.json()["detail"]
        r = c.post("/subjects/s7/absences", json={"starts_at": "2026-12-01T09:00:00+05:00",
                                                  "ends_at": "2026-12-01T12:00:00+05:00", "reason": "hospital"})
        assert r.status_code == 201 and r.json()["created_by"] == "admin"
        assert c.post("/devices", json={"id": "ankle-7", "subject_id": "s7"}).status_code == 201
        r = c.post("/subjects/s7/victims", json={"victim_device_id": "ankle-7", "radius_m": 500})
        assert r.status_code == 422  # not a victim's phone
        assert c.post("/devices", json={"id": "phone-7", "kind": "victim_phone"}).status_code == 201
        assert c.post("/subjects/s7/victims", json={"victim_device_id": "phone-7", "radius_m": 500}).status_code == 201
        assert c.post("/subjects/s7/victims", json={"victim_device_id": "phone-7", "radius_m": 5}).status_code == 409
        r = c.post("/zones", json={"id": "s7-home", "name": "home", "kind": "inclusion", "subject_id": "s7",
                                   "radius_m": 80, "geometry": {"type": "Point", "coordinates": [69.24, 41.29]},
                                   "dwell_open_fixes": 3, "dwell_open_s": 60})
        assert r.status_code == 201 and r.json()["dwell_open_fixes"] == 3 and r.json()["dwell_close_fixes"] == 2
        assert c.post("/zones", json={"id": "bad", "name": "x", "kind": "inclusion", "subject_id": "s7", "radius_m": 8,
                                      "geometry": {"type": "Point", "coordinates": [69.24, 41.29]},
                                      "dwell_open_fixes": 0}).status_code == 422
