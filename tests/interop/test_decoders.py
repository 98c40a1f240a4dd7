"""The OsmAnd and OwnTracks decoders on captured payloads (tests/interop/data/): every
shape, every unit, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from telemetry import osmand, owntracks
from telemetry.dead_letters import reason_code
from telemetry.errors import DecodeError

DATA = Path(__file__).parent / "data"
T0_MS = 1_764_151_200_000  # 2025-11-26 10:00:00 UTC


def params(name: str) -> list[tuple[str, str]]:
    return parse_qsl((DATA / name).read_text(), keep_blank_values=True)


@pytest.mark.parametrize(("name", "minute"), [("osmand-query-seconds.txt", 0), ("osmand-form-milliseconds.txt", 1),
                                              ("osmand-location-iso.txt", 2), ("osmand-datetime.txt", 3)])
def test_the_four_timestamp_forms(name: str, minute: int) -> None:
    r = osmand.decode_params(params(name))
    assert r.device_id == "d1" and r.time_ms == T0_MS + minute * 60_000
    assert r.fix is not None and r.fix.time_ms == r.time_ms


def test_osmand_units_and_attributes() -> None:
    r = osmand.decode_params(params("osmand-query-seconds.txt"))
    assert r.fix is not None
    assert r.fix.speed_mps == pytest.approx(10.5 * 1852 / 3600)  # knots
    assert (r.fix.lat, r.fix.lon, r.fix.accuracy_m, r.fix.heading_deg) == (41.2995, 69.2401, 5.0, 87.3)
    assert r.status is not None and r.status.battery_pct == 76.0
    assert r.attributes == {"altitude": 455.0}
    form = osmand.decode_params(params("osmand-form-milliseconds.txt"))
    assert form.status is not None and form.status.charging is True
    assert form.attributes == {"driverUniqueId": 3456.0, "ignition": False, "hdop": 0.9}
    loc = osmand.decode_params(params("osmand-location-iso.txt"))
    assert loc.fix is not None and (loc.fix.lat, loc.fix.lon) == (41.29952, 69.24013)


def test_osmand_accuracy_falls_back_to_hdop_then_a_poor_default() -> None:
    base = [("id", "d1"), ("timestamp", "1764151200"), ("lat", "41.3"), ("lon", "69.2")]
    with_hdop = osmand.decode_params([*base, ("hdop", "1.2")])
    assert with_hdop.fix is not None and with_hdop.fix.accuracy_m == pytest.approx(6.0)
    bare = osmand.decode_params(base)
    assert bare.fix is not None and bare.fix.accuracy_m == osmand.DEFAULT_ACCURACY_M


def test_osmand_invalid_fix_is_a_status_not_a_position() -> None:
    r = osmand.decode_params([("id", "d1"), ("timestamp", "1764151200"), ("lat", "0"), ("lon", "0"), ("valid", "false")])
    assert r.fix is None and r.status is not None and r.status.gps_fix is False


def test_traccar_client_json_object_and_batch() -> None:
    (r,) = osmand.decode_json(json.loads((DATA / "traccar-client-object.json").read_text()))
    assert isinstance(r, osmand.OsmAndReport) and r.fix is not None
    assert r.time_ms == T0_MS + 4 * 60_000
    assert r.fix.speed_mps == 1.4 and r.fix.heading_deg == 270.5  # m/s in the JSON form
    assert r.status is not None and r.status.battery_pct == pytest.approx(63.0) and r.status.charging is False
    assert r.attributes["event"] == "motionchange" and r.attributes["altitude"] == 452.3
    batch = osmand.decode_json(json.loads((DATA / "traccar-client-batch.json").read_text()))
    assert [b.time_ms for b in batch if isinstance(b, osmand.OsmAndReport)] == [T0_MS + 300_000, T0_MS + 360_000]
    first = batch[0]
    assert isinstance(first, osmand.OsmAndReport) and first.fix is not None
    assert first.fix.heading_deg is None  # -1: unknown


@pytest.mark.parametrize(("query", "reason"), [
    ("lat=41&lon=69&timestamp=1764151200", "missing 'id'"),
    ("id=d1&lat=41&lon=69", "missing 'timestamp'"),
    ("id=d1&timestamp=yesterday&lat=41&lon=69", "not a valid time"),
    ("id=d1&timestamp=1764151200&lat=91&lon=69", "out of range"),
    ("id=d1&timestamp=1764151200&lat=41", "missing 'lat'"),
    ("id=d1&timestamp=1764151200&location=41", "lat,lon"),
    ("id=d1&timestamp=1764151200&lat=nan&lon=69", "finite"),
])
def test_osmand_refusals(query: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as err:
        osmand.decode_params(parse_qsl(query))
    assert reason_code(err.value.reason) != "other"


def test_a_bad_element_of_a_batch_is_refused_alone() -> None:
    good = json.loads((DATA / "traccar-client-object.json").read_text())
    out = osmand.decode_json([good, {"device_id": "d1", "location": {}}])
    assert isinstance(out[0], osmand.OsmAndReport) and isinstance(out[1], DecodeError)


def test_owntracks_location_units_and_ignored_fields() -> None:
    d = owntracks.decode("owntracks/aziza/phone", (DATA / "owntracks-location.json").read_bytes())
    (f,) = d.fixes
    assert f.device_id == owntracks.alias("aziza", "phone")
    assert f.time_ms == 1_764_151_320_000 and f.speed_mps == pytest.approx(5.0)  # 18 km/h
    assert (f.heading_deg, f.accuracy_m) == (90.0, 5.0)
    (s,) = d.statuses
    assert (s.battery_pct, s.charging) == (67.0, False)
    (a,) = d.attributes
    assert a.attributes["alt"] == 455 and "SSID" not in a.attributes and "BSSID" not in a.attributes


def test_owntracks_lwt_without_tst_is_recorded_with_no_time() -> None:
    (e,) = owntracks.decode("owntracks/aziza/phone", (DATA / "owntracks-lwt-android.json").read_bytes()).events
    assert (e.kind, e.time_ms) == ("lwt", None)
    (ios,) = owntracks.decode("owntracks/aziza/phone", (DATA / "owntracks-lwt-ios.json").read_bytes()).events
    assert ios.time_ms == 1_764_151_000_000


@pytest.mark.parametrize(("topic", "name", "kind"), [("owntracks/aziza/phone/event", "owntracks-transition.json",
                                                      "transition"),
                                                     ("owntracks/aziza/phone/waypoints", "owntracks-waypoints.json",
                                                      "waypoints")])
def test_owntracks_transitions_and_waypoints_are_recorded_not_fixes(topic: str, name: str, kind: str) -> None:
    d = owntracks.decode(topic, (DATA / name).read_bytes())
    assert d.fixes == [] and [e.kind for e in d.events] == [kind]


def test_owntracks_ignores_empty_and_harmless_types_and_refuses_the_rest() -> None:
    assert owntracks.decode("owntracks/a/b", b"").fixes == []
    assert owntracks.decode("owntracks/a/b", b'{"_type":"card","name":"A"}').events == []
    for payload, reason in [(b'{"_type":"encrypted","data":"x"}', "encrypted"), (b'{"_type":"nope"}', "unsupported"),
                            (b'{"_type":"location","lat":1}', "missing 'lon'"), (b"{", "not valid JSON"),
                            (b'{"_type":"location","lat":41,"lon":69,"tst":"x"}', "'tst' must be")]:
        with pytest.raises(DecodeError, match=reason) as err:
            owntracks.decode("owntracks/a/b", payload)
        assert reason_code(err.value.reason) != "other"
    with pytest.raises(DecodeError, match="topic"):
        owntracks.decode("owntracks/a", b"{}")


def test_set_waypoints_cmd_shape() -> None:
    cmd = owntracks.set_waypoints([owntracks.Region("school-1", "School", 41.3, 69.2, 250.4, 1764000000)])
    assert cmd["_type"] == "cmd" and cmd["action"] == "setWaypoints"
    (w,) = cmd["waypoints"]["waypoints"]
    assert w == {"_type": "waypoint", "desc": "School", "lat": 41.3, "lon": 69.2, "rad": 250, "tst": 1764000000,
                 "rid": "school-1"}


def test_the_listeners_own_reasons_have_their_codes() -> None:
    assert reason_code("wrong device secret (or unknown device)") == "bad_secret"
    assert reason_code("missing device secret") == "bad_secret"
    assert reason_code("wrong OwnTracks password") == "bad_secret"
    assert reason_code("unbound OwnTracks identity") == "unbound_identity"
    assert reason_code("unsupported OwnTracks _type 'x'") == "unsupported_type"
    assert reason_code("payload too large (300000 bytes)") == "payload_too_large"
