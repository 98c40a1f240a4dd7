"""Validation at the door (issue 9) and accepted input that would silently disable
monitoring (issue 10 item 4): each is refused with 422 (or 404 naming the right thing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.api.conftest import LiveApi
from tests.api.test_problems import assert_problem
from tests.geofence.workloads import rect_ring

POINT = {"type": "Point", "coordinates": [69.24, 41.29]}


def _zone(zid: str, subject_id: str | None, **extra: Any) -> dict[str, Any]:
    return {"id": zid, "name": zid, "kind": "exclusion", "subject_id": subject_id, "geometry": POINT,
            "radius_m": 50, **extra}


def test_unknown_time_zone_is_422(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for tz in ("Mars/Olympus", "../../etc/passwd", "Asia", "", "UTC\x00"):
            body = assert_problem(c.post("/subjects", json={"id": "s1", "full_name": "x", "timezone": tz}), 422)
            assert body["errors"][0]["field"] == "body.timezone", body
        assert c.post("/subjects", json={"id": "s1", "full_name": "x", "timezone": "Europe/Berlin"}).status_code == 201


def test_a_term_that_ends_before_it_starts_is_422(live_api: LiveApi) -> None:
    with live_api.client() as c:
        r = c.post("/subjects", json={"id": "s1", "full_name": "x", "term_start": "2026-06-01T00:00:00+05:00",
                                      "term_end": "2026-01-01T00:00:00+05:00"})
        assert "term_end must be after term_start" in assert_problem(r, 422)["detail"]
        for bad in ("2026-06-01", "2026-06-01T00:00:00", 1767225600, "0.5", "0001-01-01T00:00:00+05:00",
                    "9999-12-31T23:59:59-10:00"):
            assert_problem(c.post("/subjects", json={"id": "s1", "full_name": "x", "term_start": bad}), 422)
        assert c.post("/subjects", json={"id": "s1", "full_name": "x", "term_start": "2026-01-01T00:00:00Z",
                                         "term_end": "2027-01-01T00:00:00+05:00"}).status_code == 201


def test_absence_must_name_one_of_the_subjects_own_zones(live_api: LiveApi) -> None:
    window = {"starts_at": "2026-12-01T09:00:00+05:00", "ends_at": "2026-12-01T12:00:00+05:00", "reason": "court"}
    with live_api.client() as c:
        for sid, cat in (("s1", "a"), ("s2", "b")):
            assert c.post("/subjects", json={"id": sid, "full_name": "x", "category": cat}).status_code == 201
        for z in (_zone("z1", "s1"), _zone("z2", "s2"), _zone("g-a", None, category="a"), _zone("g-b", None,
                                                                                                   category="b")):
            assert c.post("/zones", json=z).status_code == 201, z
        body = assert_problem(c.post("/subjects/s1/absences", json={**window, "zone_id": "z2"}), 422)
        assert "zone 'z2' does not apply to subject 's1'" in body["detail"]
        assert_problem(c.post("/subjects/s1/absences", json={**window, "zone_id": "g-b"}), 422)
        body = assert_problem(c.post("/subjects/s1/absences", json={**window, "zone_id": "nope"}), 404)
        assert body["entity"] == "zone" and "zone 'nope' not found" in body["detail"]
        for ok in ("z1", "g-a", None):
            assert c.post("/subjects/s1/absences", json={**window, "zone_id": ok}).status_code == 201, ok


def test_unknown_references_name_the_right_entity(live_api: LiveApi) -> None:
    with live_api.client() as c:
        body = assert_problem(c.post("/devices", json={"id": "d1", "subject_id": "ghost"}), 404)
        assert body["entity"] == "subject" and body["key"] == "ghost"
        body = assert_problem(c.post("/zones", json=_zone("z1", "ghost")), 404)
        assert "subject 'ghost' not found" in body["detail"]
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        body = assert_problem(c.post("/subjects/s1/victims", json={"victim_device_id": "ph", "radius_m": 5}), 404)
        assert body["entity"] == "device" and body["key"] == "ph"


@pytest.mark.parametrize("device_id", ["nazorat-engine", "nazorat-ingest", "Nazorat-API", ".", "..", "...",
                                       "a:b", "a/b", "+", "#"])
def test_reserved_or_unsafe_device_ids_are_422(live_api: LiveApi, device_id: str) -> None:
    with live_api.client() as c:
        body = assert_problem(c.post("/devices", json={"id": device_id}), 422)
        assert body["errors"][0]["field"] == "body.id"
        assert c.get("/devices").json() == []


def test_victim_phone_is_linked_not_assigned(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        assert_problem(c.post("/devices", json={"id": "ph", "kind": "victim_phone", "subject_id": "s1"}), 422)
        assert c.post("/devices", json={"id": "ph", "kind": "victim_phone"}).status_code == 201


@pytest.mark.parametrize("window", [
    {"start": "25:00", "end": "06:00"}, {"start": "22:60", "end": "06:00"}, {"start": "24:01", "end": "06:00"},
    {"start": "22:00", "end": "6"}, {"start": "22:00", "end": "06:00", "days": []},
    {"start": "22:00", "end": "06:00", "days": ["someday"]},
])
def test_bad_schedules_are_422(live_api: LiveApi, window: dict[str, Any]) -> None:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        body = assert_problem(c.post("/zones", json=_zone("z1", "s1", schedule=[window])), 422)
        assert body["errors"][0]["field"].startswith("body.schedule[0]"), body


def test_schedule_bounds_and_numeric_ranges(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        ok = _zone("z1", "s1", schedule=[{"start": "00:00", "end": "24:00"}, {"start": "7:30", "end": "23:59"}])
        assert c.post("/zones", json=ok).status_code == 201
        for bad in ({"radius_m": 0}, {"radius_m": 1e6}, {"buffer_m": -1}, {"dwell_open_fixes": 101},
                    {"dwell_close_s": 86401}, {"name": ""}, {"name": "x" * 201}):
            assert_problem(c.post("/zones", json=_zone("z2", "s1", **bad)), 422)
        poly = {"type": "Polygon", "coordinates": [rect_ring(69.2, 41.3, 50, 50)]}
        assert c.post("/zones", json=_zone("z3", "s1", geometry=poly, radius_m=None)).status_code == 201
        assert_problem(c.post("/subjects/s1/victims", json={"victim_device_id": "x", "radius_m": 50_001}), 422)


def _fix(conn: psycopg.Connection[Any], device: str, subject: str | None, t: datetime) -> None:
    conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                 " VALUES (%s, %s, %s, 41.3, 69.2, 5, 'gps')", (device, t, subject))


def test_positions_until_and_strict_datetimes(live_api: LiveApi) -> None:
    t0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        assert c.post("/devices", json={"id": "d1", "subject_id": "s1"}).status_code == 201
        with psycopg.connect(live_api.database_url) as conn:
            for m in range(5):
                _fix(conn, "d1", "s1", t0 + timedelta(minutes=m))

        def times(**q: str) -> list[str]:
            r = c.get("/subjects/s1/positions", params=q)
            assert r.status_code == 200, r.text
            return [p["device_time"] for p in r.json()]

        assert len(times()) == 5
        got = times(since="2026-11-01T12:01:00Z", until="2026-11-01T17:03:00+05:00")
        assert got == ["2026-11-01T12:02:00Z", "2026-11-01T12:01:00Z"]
        assert len(times(until="2026-11-01T12:02:00Z")) == 2
        assert len(times(since="2026-11-01T17:03:00 05:00")) == 2  # an unencoded '+' arrives as a space
        for bad in ({"since": "0.5"}, {"since": "1700000000"}, {"until": "2026-11-01T12:00:00"},
                    {"until": "2026-11-01"}, {"since": "2026-11-01T12:03:00Z", "until": "2026-11-01T12:01:00Z"}):
            assert_problem(c.get("/subjects/s1/positions", params=bad), 422)


def test_odd_subject_ids_answer_4xx_problem_documents(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for path in ("/subjects/%20", "/subjects/" + "x" * 65, "/subjects/a%2Fb/positions"):
            r = c.get(path)
            assert r.status_code in (404, 422), (path, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")


def test_problem_documents_are_used_for_every_4xx(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as anon:
        assert anon.get("/alerts", headers={"Authorization": "Basic x"}).headers["content-type"].startswith(
            "application/problem+json")
