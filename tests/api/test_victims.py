"""Issue 10 item 6: victims' locations are hidden from roles that may not see them, and
every read that returns coordinates is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.api.conftest import LiveApi

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
VICTIM_HOME = [69.2811, 41.3111]


def _seed(live_api: LiveApi) -> None:
    """An offender s1 under a restraining order with a victim's phone, the victim's home
    as an exclusion zone, fixes from both devices, a dead letter from the victim's phone,
    and three alerts: a crossing into the victim's home zone, a victim proximity alert
    with the victim's coordinates in its details, and an ordinary curfew alert."""
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x", "order_type": "restraining_order"}).status_code \
            == 201
        assert c.post("/subjects", json={"id": "s2", "full_name": "y"}).status_code == 201
        for dev in ({"id": "ankle-1", "subject_id": "s1"}, {"id": "phone-1", "kind": "victim_phone"},
                    {"id": "ankle-2", "subject_id": "s2"}):
            assert c.post("/devices", json=dev).status_code == 201
        assert c.post("/subjects/s1/victims", json={"victim_device_id": "phone-1", "radius_m": 500}).status_code == 201
        r = c.post("/zones", json={"id": "victim-home", "name": "victim's home", "kind": "exclusion",
                                   "subject_id": "s1", "radius_m": 100,
                                   "geometry": {"type": "Point", "coordinates": VICTIM_HOME}})
        assert r.status_code == 201 and r.json()["victim_sensitive"] is True
        r = c.post("/zones", json={"id": "s2-home", "name": "home", "kind": "inclusion", "subject_id": "s2",
                                   "radius_m": 100, "geometry": {"type": "Point", "coordinates": [69.2, 41.3]}})
        assert r.status_code == 201 and r.json()["victim_sensitive"] is False
    with psycopg.connect(live_api.database_url) as conn:
        for dev, sid in (("ankle-1", "s1"), ("phone-1", "s1"), ("ankle-2", "s2")):
            conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                         " VALUES (%s, %s, %s, 41.3111, 69.2811, 5, 'gps')", (dev, T0, sid))
        conn.execute("INSERT INTO dead_letters (topic, reason, payload, payload_size) VALUES"
                     " ('nazorat/v1/devices/phone-1/fixes', 'bad', '{\"lat\": 41.3111}', 16),"
                     " ('nazorat/v1/devices/ankle-2/fixes', 'bad', '{\"lat\": 41.3}', 13)")
        for kind, dev, sid, zone, details in (
            ("zone_entry", "ankle-1", "s1", "victim-home", {"from_lat": 41.31, "from_lon": 69.28, "from_time_ms": 1}),
            ("victim_proximity", "ankle-1", "s1", None, {"victim_device_id": "phone-1", "radius_m": 500,
                                                         "victim_lat": 41.3111, "victim_lon": 69.2811,
                                                         "victim": {"position": [69.2811, 41.3111]}}),
            ("zone_exit", "ankle-2", "s2", "s2-home", {"from_lat": 41.3, "from_lon": 69.2, "from_time_ms": 1}),
        ):
            conn.execute("INSERT INTO alerts (kind, subject_id, device_id, zone_id, fix_time, details)"
                         " VALUES (%s, %s, %s, %s, %s, %s)", (kind, sid, dev, zone, T0, Jsonb(details)))


def _audit(live_api: LiveApi) -> list[tuple[str, str, dict[str, Any]]]:
    with psycopg.connect(live_api.database_url) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute("SELECT actor, action, details FROM audit_log"
                                                          " WHERE action LIKE '%%read%%' ORDER BY id")]


def _reads(c: httpx.Client) -> dict[str, Any]:
    out = {}
    for path in ("/map/latest", "/zones", "/alerts", "/dead-letters", "/subjects/s1/positions"):
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        out[path] = r.json()
    return out


def test_a_non_admin_role_does_not_see_victims(live_api: LiveApi) -> None:
    _seed(live_api)
    with live_api.acting_as("officer"), live_api.client() as c:
        got = _reads(c)
        alert_ids = [a["id"] for a in got["/alerts"]]
        one = {i: c.get(f"/alerts/{i}").json() for i in alert_ids}
    assert {p["device_id"] for p in got["/map/latest"]} == {"ankle-1", "ankle-2"}
    zones = {z["id"]: z for z in got["/zones"]}
    assert zones["victim-home"]["geometry"] is None and zones["victim-home"]["masked"] is True
    assert zones["s2-home"]["geometry"] == {"type": "Point", "coordinates": [69.2, 41.3]}
    by_kind = {a["kind"]: a for a in got["/alerts"]}
    assert by_kind["victim_proximity"]["details"] == {"victim_device_id": "phone-1", "radius_m": 500, "victim": {}}
    assert by_kind["zone_entry"]["details"] == {"from_time_ms": 1} and by_kind["zone_entry"]["masked"]
    assert by_kind["zone_exit"]["details"]["from_lat"] == 41.3 and not by_kind["zone_exit"]["masked"]
    assert all(one[a["id"]] == a for a in got["/alerts"])
    assert "41.3111" not in str(got["/alerts"]) and "69.2811" not in str(one)
    letters = {d["topic"].split("/")[3]: d for d in got["/dead-letters"]}
    assert letters["phone-1"]["payload_head"] is None and letters["phone-1"]["masked"]
    assert letters["ankle-2"]["payload_head"] == '{"lat": 41.3}'
    assert [p["device_id"] for p in got["/subjects/s1/positions"]] == ["ankle-1"]


def test_admin_sees_victims(live_api: LiveApi) -> None:
    _seed(live_api)
    with live_api.client() as c:
        got = _reads(c)
    assert {p["device_id"] for p in got["/map/latest"]} == {"ankle-1", "ankle-2", "phone-1"}
    assert {p["kind"] for p in got["/map/latest"]} == {"ankle_monitor", "victim_phone"}
    assert {z["id"]: z["geometry"] for z in got["/zones"]}["victim-home"]["coordinates"] == VICTIM_HOME
    assert {a["kind"]: a for a in got["/alerts"]}["victim_proximity"]["details"]["victim_lat"] == 41.3111
    assert all(d["payload_head"] for d in got["/dead-letters"])
    assert {p["device_id"] for p in got["/subjects/s1/positions"]} == {"ankle-1", "phone-1"}


@pytest.mark.parametrize("role", ["admin", "officer"])
def test_every_read_that_returns_coordinates_is_audited(live_api: LiveApi, role: str) -> None:
    _seed(live_api)
    with live_api.acting_as(role, name=f"{role}-7"), live_api.client() as c:
        _reads(c)
        alert_id = c.get("/alerts", params={"limit": 1}).json()[0]["id"]
        assert c.get(f"/alerts/{alert_id}").status_code == 200
    audit = _audit(live_api)
    assert [a[1] for a in audit] == ["positions.read_latest", "zones.read", "alerts.read", "dead_letters.read",
                                     "positions.read", "alerts.read", "alert.read"]
    assert {a[0] for a in audit} == {f"{role}-7"} and {a[2]["role"] for a in audit} == {role}
    masked = {a[1]: a[2]["masked"] for a in audit[:4]}
    if role == "officer":
        assert masked == {"positions.read_latest": 0, "zones.read": 1, "alerts.read": 2, "dead_letters.read": 1}
    else:
        assert set(masked.values()) == {0}


def test_positions_of_a_victim_phone_stay_out_of_the_map_without_the_role(live_api: LiveApi) -> None:
    _seed(live_api)
    with psycopg.connect(live_api.database_url) as conn:
        conn.execute("INSERT INTO positions (device_id, device_time, lat, lon, accuracy_m, source)"
                     " VALUES ('phone-1', %s, 41.4, 69.3, 5, 'gps')", (T0 + timedelta(minutes=1),))
    with live_api.acting_as("supervisor"), live_api.client() as c:
        assert "phone-1" not in {p["device_id"] for p in c.get("/map/latest").json()}
