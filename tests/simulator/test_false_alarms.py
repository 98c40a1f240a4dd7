"""False-alarm cases found by the simulator, reduced to a few fixes each."""

from __future__ import annotations

import math
import time
from urllib.parse import urlparse

import paho.mqtt.publish as mqtt_publish

from simulator.movement import to_lonlat
from simulator.registry import Api
from telemetry.wire import encode_fix, encode_payload, fixes_topic
from tests.conftest import Stack

CENTRE = (69.30, 41.33)
RADIUS_M = 100.0


def _fix(t_ms: int, dist_m: float, angle_deg: float, acc: float) -> bytes:
    a = math.radians(angle_deg)
    lon, lat = to_lonlat(CENTRE, (dist_m * math.cos(a), dist_m * math.sin(a)))
    return encode_payload([encode_fix(t_ms=t_ms, lat=lat, lon=lon, acc=acc, src="gps")])


def test_no_crossing_alert_from_noise_within_stated_accuracy(stack: Stack) -> None:
    """Two GPS fixes 60 s apart, both certainly outside a 100 m exclusion circle (reported
    113 m from the centre, accuracy 12.5 m); the true straight path between the true
    positions (125 m out, at -35 and +35 degrees) passes 102 m from the centre, the line
    between the reported points 92.6 m: within the accuracy, so no crossing (it was one
    before telemetry/crossing)."""
    api = Api(stack.api_url, stack.token)
    api.request("POST", "/subjects", {"id": "fa-s1", "full_name": "Walker by the fence"})
    api.request("POST", "/devices", {"id": "fa-d1", "subject_id": "fa-s1"})
    api.request("POST", "/zones", {"id": "fa-excl", "name": "school", "kind": "exclusion", "subject_id": "fa-s1",
                                   "geometry": {"type": "Point", "coordinates": list(CENTRE)}, "radius_m": RADIUS_M})
    u = urlparse(stack.mqtt_url)
    t0 = int(time.time() * 1000) - 300_000
    # truth: 125 m from the centre at -35, +35 degrees and then 150 m out; each reported
    # point is within its accuracy circle of the truth (12 m < 12.5 m)
    for t, d, ang, acc in ((t0, 113.0, -35.0, 12.5), (t0 + 60_000, 113.0, 35.0, 12.5),
                           (t0 + 120_000, 150.0, 60.0, 5.0)):
        mqtt_publish.single(fixes_topic("fa-d1"), _fix(t, d, ang, acc), qos=1, hostname=u.hostname, port=u.port)
    deadline = time.monotonic() + 30
    while len(api.get("/subjects/fa-s1/positions")) < 3:
        assert time.monotonic() < deadline, "fixes not stored"
        time.sleep(0.2)
    time.sleep(0.5)
    kinds = [a["kind"] for a in api.get("/alerts", subject_id="fa-s1")]
    api.close()
    assert kinds == []


def _xy_fix(t_ms: int, east_m: float, north_m: float, acc: float, src: str) -> bytes:
    lon, lat = to_lonlat(CENTRE, (east_m, north_m))
    return encode_payload([encode_fix(t_ms=t_ms, lat=lat, lon=lon, acc=acc, src=src)])


def test_no_crossing_alert_from_a_cell_fix(stack: Stack) -> None:
    """A person at home 300 m north of a 100 m exclusion circle; a cell fix (accuracy
    499 m, so not flagged) reported 180 m south of the centre, then a GPS fix at home:
    the segment passes the centre, but a cell fix never starts a crossing."""
    api = Api(stack.api_url, stack.token)
    api.request("POST", "/subjects", {"id": "fa-s2", "full_name": "At home"})
    api.request("POST", "/devices", {"id": "fa-d2", "subject_id": "fa-s2"})
    api.request("POST", "/zones", {"id": "fa-excl2", "name": "victim's home", "kind": "exclusion",
                                   "subject_id": "fa-s2", "radius_m": RADIUS_M,
                                   "geometry": {"type": "Point", "coordinates": list(CENTRE)}})
    u = urlparse(stack.mqtt_url)
    t0 = int(time.time() * 1000) - 300_000
    for t, north, acc, src in ((t0, -180.0, 499.0, "cell"), (t0 + 60_000, 300.0, 5.0, "gps"),
                               (t0 + 120_000, 302.0, 5.0, "gps")):
        mqtt_publish.single(fixes_topic("fa-d2"), _xy_fix(t, 0.0, north, acc, src), qos=1, hostname=u.hostname,
                            port=u.port)
    deadline = time.monotonic() + 30
    while len(api.get("/subjects/fa-s2/positions")) < 3:
        assert time.monotonic() < deadline, "fixes not stored"
        time.sleep(0.2)
    time.sleep(0.5)
    kinds = [a["kind"] for a in api.get("/alerts", subject_id="fa-s2")]
    api.close()
    assert kinds == []
