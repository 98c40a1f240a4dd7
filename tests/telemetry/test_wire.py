"""Strict decoding of wire format v1."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.errors import DecodeError
from telemetry.wire import MAX_PAYLOAD_BYTES, decode_fixes, encode_fix, encode_payload, fixes_topic

TOPIC = fixes_topic("dev-1")
GOOD = {"t": 1764151200123, "lat": 41.3, "lon": 69.2, "acc": 8.0, "spd": 1.5, "hdg": 90, "src": "gps", "seq": 7}


def test_single_and_batch() -> None:
    fixes, errors = decode_fixes(TOPIC, json.dumps(GOOD).encode())
    assert not errors and fixes[0].time_ms == 1764151200123 and fixes[0].device_id == "dev-1"
    batch = [GOOD, {**GOOD, "t": "2026-11-26T10:00:00.5+05:00"}]
    fixes, errors = decode_fixes(TOPIC, json.dumps(batch).encode())
    want = int(datetime(2026, 11, 26, 5, 0, 0, 500000, tzinfo=UTC).timestamp() * 1000)
    assert [f.time_ms for f in fixes] == [1764151200123, want]


def test_round_trip_of_encoder() -> None:
    payload = encode_payload([encode_fix(t_ms=1764151200000, lat=41.3, lon=69.2, acc=5, seq=1)])
    (fix,), errors = decode_fixes(TOPIC, payload)
    assert not errors and fix.seq == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lat": 91}, "'lat' out of range"),
        ({"lon": -181}, "'lon' out of range"),
        ({"acc": 0}, "'acc' out of range"),
        ({"lat": True}, "'lat' must be a number"),
        ({"lat": "41.3"}, "'lat' must be a number"),
        ({"t": "yesterday"}, "'t' is not a valid RFC 3339 time"),
        ({"t": "2026-11-26T10:00:00"}, "'t' needs a UTC offset"),
        ({"t": 5}, "'t' out of range (2000..2100)"),
        ({"src": "gnss"}, "'src' must be gps, cell or wifi"),
        ({"extra": 1}, "unknown keys ['extra']"),
        ({"hdg": 360}, "'hdg' out of range"),
        ({"spd": None}, "'spd' must be a number"),
    ],
)
def test_rejections_carry_a_reason(change: dict[str, object], reason: str) -> None:
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, **change}).encode())
    assert not fixes and errors[0].reason == reason


def test_overflowing_number_is_not_finite() -> None:
    fixes, errors = decode_fixes(TOPIC, b'{"t": 1764151200000, "lat": 1e400, "lon": 69.2, "acc": 5}')
    assert not fixes and errors[0].reason == "'lat' must be finite"


def test_bad_fix_in_batch_rejects_only_itself() -> None:
    fixes, errors = decode_fixes(TOPIC, json.dumps([GOOD, {**GOOD, "lat": 200}, {**GOOD, "t": GOOD["t"] + 1}]).encode())
    assert len(fixes) == 2 and errors[0].reason == "fix[1]: 'lat' out of range"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"NaN", "not valid JSON"),
        (TOPIC, b'{"t": 1, "lat": NaN}', "not valid JSON"),
        (TOPIC, b"\xff\xfe", "not valid JSON"),
        (TOPIC, b"[]", "empty fix array"),
        (TOPIC, b"42", "payload must be a JSON object or array"),
        (TOPIC, b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), "payload too large"),
        ("nazorat/v1/devices/a/b/fixes", b"{}", "malformed device id in topic"),
        ("other/topic", b"{}", "not a fixes topic"),
    ],
)
def test_whole_message_rejections(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_fixes(topic, payload)
    assert info.value.reason.startswith(reason)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from([*GOOD, "x"]), inner, max_size=8),
    max_leaves=30,
).map(lambda v: json.dumps(v).encode()))
def test_hostile_payloads_never_crash(payload: bytes) -> None:
    try:
        _fixes, errors = decode_fixes(TOPIC, payload)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert all(e.reason for e in errors)


def test_messagepack_topic_decodes_the_same_fields_and_is_smaller() -> None:
    from telemetry.wire import msgpack_topic

    batch = [encode_fix(t_ms=1764151200000 + k * 30_000, lat=41.2995 + k * 1e-5, lon=69.2401, acc=6.5, spd=1.2,
                        hdg=90, seq=1000 + k) for k in range(10)]
    as_json = encode_payload(batch)
    as_mp = encode_payload(batch, binary=True)
    fixes_json, _ = decode_fixes(TOPIC, as_json)
    fixes_mp, errors = decode_fixes(msgpack_topic("dev-1"), as_mp)
    assert not errors and fixes_mp == fixes_json
    assert len(as_mp) < 0.35 * len(as_json)  # measured: 291 vs 1,030 bytes for 10 fixes (29 vs 101 for one)


@pytest.mark.parametrize("payload", [b"\xc1", b"\x92\x01", b"\x91" * 5000 + b"\x00", b"\xc7\x01\x05x",
                                     b"\x81\x01\x02", b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"])
def test_hostile_messagepack_is_rejected(payload: bytes) -> None:
    from telemetry.wire import msgpack_topic

    try:
        fixes, errors = decode_fixes(msgpack_topic("dev-1"), payload)
    except DecodeError as exc:
        assert exc.reason
    else:
        assert not fixes and errors


def test_json_schemas_list_exactly_the_fields_the_decoder_accepts() -> None:
    from pathlib import Path

    from telemetry import wire

    docs = Path(__file__).resolve().parents[2] / "docs" / "schemas"
    fix = json.loads((docs / "fix.v1.json").read_text())["$defs"]["fix"]
    status = json.loads((docs / "status.v1.json").read_text())
    assert set(fix["properties"]) == wire._ALLOWED_KEYS and set(fix["required"]) == {"t", "lat", "lon", "acc"}
    assert set(status["properties"]) == wire._STATUS_KEYS
