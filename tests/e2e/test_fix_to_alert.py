"""A fix travels from a device over MQTT to a stored alert an officer reads over HTTP."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import paho.mqtt.publish as mqtt_publish

from telemetry.wire import fixes_topic, status_topic
from tests.conftest import Stack
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
VICTIM = (69.2601, 41.2995)


def publish(stack: Stack, device_id: str, payload: bytes | str) -> None:
    host, port = stack.mqtt_url.removeprefix("mqtt://").split(":")
    mqtt_publish.single(fixes_topic(device_id), payload, qos=1, hostname=host, port=int(port))


def wait_for(fetch: Any, predicate: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s}s; last value: {value!r}")
        time.sleep(0.2)


def _ms(iso: str) -> int:
    """An API timestamp (RFC 3339) as epoch milliseconds."""
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def register(c: httpx.Client, subject: str, device: str) -> None:
    assert c.post("/subjects", json={"id": subject, "full_name": "Test Person"}).status_code == 201
    assert c.post("/devices", json={"id": device, "subject_id": subject}).status_code == 201
    r = c.post("/zones", json={"id": f"{subject}-home", "name": "home", "kind": "inclusion", "subject_id": subject,
                               "geometry": {"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]}})
    assert r.status_code == 201, r.text
    r = c.post("/zones", json={"id": f"{subject}-victim", "name": "victim", "kind": "exclusion",
                               "subject_id": subject, "radius_m": 150,
                               "geometry": {"type": "Point", "coordinates": list(VICTIM)}})
    assert r.status_code == 201, r.text


def fix(t_ms: int, lon: float, lat: float, acc: float = 5.0) -> str:
    return json.dumps({"t": t_ms, "lat": lat, "lon": lon, "acc": acc, "src": "gps"})


def test_exclusion_and_inclusion_alerts_compliant_fix_and_dead_letter(stack: Stack) -> None:
    t0 = int(time.time() * 1000) - 60_000
    with stack.client() as c:
        register(c, "subj-a", "dev-a")
        register(c, "subj-b", "dev-b")
        register(c, "subj-c", "dev-c")
        publish(stack, "dev-a", fix(t0, *VICTIM))  # inside the victim's exclusion circle (and out of home)
        publish(stack, "dev-b", fix(t0, HOME[0], HOME[1] + 0.01))  # ~1.1 km north of home
        publish(stack, "dev-c", fix(t0, *HOME))  # at home: compliant
        zone_alerts = [("subj-a", "exclusion_zone_entered"), ("subj-a", "inclusion_zone_left"),
                       ("subj-b", "inclusion_zone_left")]
        alerts = wait_for(lambda: c.get("/alerts").json(), lambda a: len(a) >= 3)
        assert sorted((a["subject_id"], a["kind"]) for a in alerts) == zone_alerts  # exactly these, once each
        victim_alert = next(a for a in alerts if a["kind"] == "exclusion_zone_entered")
        assert abs(victim_alert["distance_m"] - 150.0) < 0.5  # at the centre: 150 m inside the boundary

        # a malformed payload is dead-lettered and does not stop the stream
        publish(stack, "dev-c", b'{"t": "yesterday", "lat": 91}')
        publish(stack, "dev-c", fix(t0 + 1000, *HOME))
        positions = wait_for(lambda: c.get("/subjects/subj-c/positions").json(), lambda p: len(p) >= 2)
        assert sorted(_ms(p["device_time"]) for p in positions) == [t0, t0 + 1000]
        dead = wait_for(lambda: c.get("/dead-letters").json(), lambda d: len(d) >= 1)
        assert [(d["topic"], d["reason"]) for d in dead] == [(fixes_topic("dev-c"), "'lat' out of range")]
        # still compliant: no zone alert for subj-c, and nothing new for anyone
        assert sorted((a["subject_id"], a["kind"]) for a in c.get("/alerts").json()) == zone_alerts

        # a strap opened on the device's status topic is an alert too, backed by the stored report
        host, port = stack.mqtt_url.removeprefix("mqtt://").split(":")
        mqtt_publish.single(status_topic("dev-c"), json.dumps({"t": t0 + 2000, "strap": "opened", "bat": 90}),
                            qos=1, hostname=host, port=int(port))
        strap = wait_for(lambda: c.get("/alerts", params={"subject_id": "subj-c"}).json(), lambda a: len(a) >= 1)
        assert [(a["kind"], _ms(a["status_time"])) for a in strap] == [("strap_opened", t0 + 2000)]

        # every zone alert is backed by a stored fix
        zone = [a for a in c.get("/alerts").json() if a["fix_time"] is not None]
        assert len(zone) == 3
        for a in zone:
            times = {p["device_time"] for p in c.get(f"/subjects/{a['subject_id']}/positions").json()}
            assert a["fix_time"] in times
            assert _ms(a["fix_time"]) == t0


def test_officer_acknowledges_and_resolves(stack: Stack) -> None:
    t0 = int(time.time() * 1000) - 30_000
    with stack.client() as c:
        register(c, "subj-r", "dev-r")
        publish(stack, "dev-r", fix(t0, *VICTIM))
        alerts = wait_for(lambda: c.get("/alerts", params={"subject_id": "subj-r"}).json(), lambda a: len(a) >= 2)
        # at the victim's: inside the exclusion circle and out of home, one alert each
        assert sorted(a["kind"] for a in alerts) == ["exclusion_zone_entered", "inclusion_zone_left"]
        aid = next(a["id"] for a in alerts if a["kind"] == "exclusion_zone_entered")
        r = c.post(f"/alerts/{aid}/acknowledge")
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert c.post(f"/alerts/{aid}/acknowledge").status_code == 409
        assert c.post(f"/alerts/{aid}/resolve", json={"outcome": "false_alarm"}).status_code == 422  # no note
        r = c.post(f"/alerts/{aid}/resolve", json={"outcome": "false_alarm", "note": "phone left at home"})
        assert r.status_code == 200 and r.json()["resolution"] == "false_alarm"
        assert c.post(f"/alerts/{aid}/resolve", json={"outcome": "bogus", "note": "x"}).status_code == 422
