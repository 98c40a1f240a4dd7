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
        (TOPIC, b"\xff\xfe", "not UTF-8: starts with a byte order mark"),
        (TOPIC, b"{\"t\": \xff}", "not UTF-8: invalid byte at offset 6"),
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
    """Anything at all either raises DecodeError with a reason or returns every item of
    the message, each as a fix or as a rejection with a reason."""
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = None
    try:
        fixes, errors = decode_fixes(TOPIC, payload)
    except DecodeError as exc:
        assert exc.reason
        return
    n_items = len(doc) if isinstance(doc, list) else 1
    assert isinstance(doc, list | dict)
    assert len(fixes) + len(errors) == n_items >= 1
    assert [e.index for e in errors] == sorted(e.index for e in errors)
    for e in errors:
        assert e.reason and e.raw


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


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xc1", "not valid MessagePack"),  # a reserved byte
    (b"\x91" * 5000 + b"\x00", "not valid MessagePack"),  # nested deeper than allowed
    (b"\xc7\x01\x05x", "not valid MessagePack"),  # an extension type
    (b"\x81\x01\x02", "not valid MessagePack"),  # a map
    (b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", "binary payload must be a fix array"),  # a bare float (NaN)
    (b"\x90", "binary payload must be a fix array"),  # an empty array
])
def test_hostile_messagepack_is_rejected_whole(payload: bytes, reason: str) -> None:
    from telemetry.wire import msgpack_topic

    with pytest.raises(DecodeError) as info:
        decode_fixes(msgpack_topic("dev-1"), payload)
    assert info.value.reason.startswith(reason)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\x92\x01\x02", "a binary fix must be an array of 8 fields"),  # an array of the wrong length
    (b"\x98\xcb\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\xc0\xc0\x00\xc0",
     "binary field 't' must be an integer"),
])
def test_bad_messagepack_fixes_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    from telemetry.wire import msgpack_topic

    fixes, errors = decode_fixes(msgpack_topic("dev-1"), payload)
    assert fixes == [] and len(errors) == 1
    assert errors[0].reason.startswith(reason)


def test_json_schemas_list_exactly_the_fields_the_decoder_accepts() -> None:
    from pathlib import Path

    from telemetry import wire

    docs = Path(__file__).resolve().parents[2] / "docs" / "schemas"
    fix = json.loads((docs / "fix.v1.json").read_text())["$defs"]["fix"]
    status = json.loads((docs / "status.v1.json").read_text())
    assert set(fix["properties"]) == wire._ALLOWED_KEYS and set(fix["required"]) == {"t", "lat", "lon", "acc"}
    assert set(status["properties"]) == wire._STATUS_KEYS


# --- encodings other than UTF-8 (issue 10, item 8) -----------------------------------------
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"])
def test_payloads_not_in_utf8_are_rejected_with_a_reason(encoding: str) -> None:
    """``json.loads`` on bytes would accept UTF-16 and UTF-32; the wire format is UTF-8."""
    from telemetry.wire import decode_status, status_topic

    text = json.dumps(GOOD)
    with pytest.raises(DecodeError) as info:
        decode_fixes(TOPIC, text.encode(encoding))
    assert info.value.reason.startswith("not UTF-8")
    with pytest.raises(DecodeError) as info:
        decode_status(status_topic("dev-1"), json.dumps({"t": GOOD["t"], "bat": 50}).encode(encoding))
    assert info.value.reason.startswith("not UTF-8")


def test_utf8_text_beyond_ascii_is_still_utf8() -> None:
    """Non-ASCII UTF-8 decodes (here inside an unknown key, so the fix is rejected for that)."""
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, "ключ": 1}, ensure_ascii=False).encode())
    assert fixes == [] and errors[0].reason == "unknown keys ['ключ']"


# --- one fault at a time: version, status fields -------------------------------------------
@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True])
def test_an_unsupported_fix_version_alone_is_rejected(version: object) -> None:
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, "v": version}).encode())
    assert fixes == [] and [e.reason for e in errors] == ["unsupported payload version"]


def test_version_one_is_accepted() -> None:
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, "v": 1}).encode())
    assert errors == [] and len(fixes) == 1


STATUS = {"t": 1764151200123, "bat": 55.5, "chg": False, "strap": "closed", "case": "closed", "gsm": -70,
          "gps": True, "online": True, "v": 1}


def _status(body: dict[str, object]) -> object:
    from telemetry.wire import decode_status, status_topic

    return decode_status(status_topic("dev-1"), json.dumps(body).encode())


def test_a_good_status_decodes_every_field() -> None:
    from telemetry.model import Status

    assert _status(STATUS) == Status("dev-1", 1764151200123, 55.5, False, "closed", False, -70.0, True, True)
    assert _status({"t": STATUS["t"], "case": "open", "strap": "cut"}) == Status("dev-1", 1764151200123, strap="cut",
                                                                                   case_open=True)
    assert _status({"t": STATUS["t"], "online": False}) == Status("dev-1", 1764151200123, online=False)


@pytest.mark.parametrize(("change", "reason"), [
    ({"v": 2}, "unsupported payload version"),
    ({"strap": "melted"}, "'strap' must be closed, opened or cut"),
    ({"strap": None}, "'strap' must be closed, opened or cut"),
    ({"case": "ajar"}, "'case' must be closed or open"),
    ({"case": None}, "'case' must be closed or open"),
    ({"bat": None}, "'bat' must be a number"),
    ({"bat": 101}, "'bat' out of range"),
    ({"bat": -1}, "'bat' out of range"),
    ({"gsm": 1}, "'gsm' out of range"),
    ({"gsm": -151}, "'gsm' out of range"),
    ({"chg": 1}, "'chg' must be true or false"),
    ({"gps": "yes"}, "'gps' must be true or false"),
    ({"online": None}, "'online' must be true or false"),
    ({"t": 5}, "'t' out of range (2000..2100)"),
    ({"x": 1}, "unknown keys ['x']"),
])
def test_each_status_check_alone_rejects_a_report(change: dict[str, object], reason: str) -> None:
    """One fault per payload, everything else valid: each check must hold on its own."""
    with pytest.raises(DecodeError) as info:
        _status({**STATUS, **change})
    assert info.value.reason == reason


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("nazorat/v1/devices/dev-1/fixes", b"{}", "not a status topic"),
    ("nazorat/v1/devices/dev-1/status", b"[]", "a status must be a JSON object"),
    ("nazorat/v1/devices/dev-1/status", b" " * 4097, "status payload too large"),
])
def test_whole_status_rejections(topic: str, payload: bytes, reason: str) -> None:
    from telemetry.wire import decode_status

    with pytest.raises(DecodeError) as info:
        decode_status(topic, payload)
    assert info.value.reason == reason
