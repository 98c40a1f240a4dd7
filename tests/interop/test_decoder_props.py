"""Property tests: whatever a client sends, the decoders answer with domain types or a
DecodeError (a 400 and a dead letter), never another exception (a 500); and a fix they
make is always one the wire format would accept."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry import osmand, owntracks
from telemetry.errors import DecodeError
from telemetry.wire import decode_fix

KEYS = ["id", "deviceid", "lat", "lon", "location", "timestamp", "speed", "bearing", "heading", "altitude",
        "accuracy", "hdop", "batt", "charge", "valid", "secret", "other"]
VALUES = st.one_of(st.text(max_size=30), st.integers(-2**40, 2**45).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["1764151200", "1764151200000", "2025-11-26T10:00:00Z", "2025-11-26 10:00:00",
                                    "41.3,69.2", "true", "false", "nan", "1e400", "-1"]))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                 max_size=6), max_leaves=20)


def _wire_accepts(fix: Any) -> None:
    obj = {"t": fix.time_ms, "lat": fix.lat, "lon": fix.lon, "acc": fix.accuracy_m, "src": fix.source}
    if fix.speed_mps is not None:
        obj["spd"] = fix.speed_mps
    if fix.heading_deg is not None:
        obj["hdg"] = fix.heading_deg
    decode_fix(fix.device_id, obj)  # raises if the edge made a fix the native format refuses


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=12))
def test_osmand_params_decode_or_refuse(params: list[tuple[str, str]]) -> None:
    try:
        r = osmand.decode_params(params)
    except DecodeError:
        return
    if r.fix is not None:
        _wire_accepts(r.fix)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_osmand_json_decodes_or_refuses(doc: Any) -> None:
    try:
        out = osmand.decode_json(doc)
    except DecodeError:
        return
    for r in out:
        if isinstance(r, osmand.OsmAndReport) and r.fix is not None:
            _wire_accepts(r.fix)


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64),
                 st.fixed_dictionaries({"_type": st.just("location"), "lat": JSON, "lon": JSON, "tst": JSON,
                                        "vel": JSON, "acc": JSON, "bs": JSON}).map(lambda d: json.dumps(d).encode())))
def test_owntracks_decodes_or_refuses(payload: bytes) -> None:
    try:
        d = owntracks.decode("owntracks/u/d", payload)
    except DecodeError:
        return
    for f in d.fixes:
        _wire_accepts(f)
