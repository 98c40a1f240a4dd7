"""Wire format v1, exactly: every accepted field value at its bounds, every rejection's
reason and topic, the raw bytes kept for a dead letter, and the encoder's output. Written
to kill the mutants that the looser tests in test_wire.py let live (see docs/mutation.md)."""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from telemetry.errors import DecodeError
from telemetry.model import Fix, Status
from telemetry.wire import (
    MAX_FIXES_PER_MESSAGE,
    MAX_PAYLOAD_BYTES,
    decode_fixes,
    decode_status,
    device_from_topic,
    encode_fix,
    encode_payload,
    fixes_topic,
    is_status_topic,
    msgpack_topic,
    status_topic,
)

TOPIC = fixes_topic("dev-1")
MP = msgpack_topic("dev-1")
ST = status_topic("dev-1")
T = 1764151200123
GOOD: dict[str, Any] = {"t": T, "lat": 41.3, "lon": 69.2, "acc": 8.0}


def one(change: dict[str, Any]) -> Fix:
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, **change}).encode())
    assert errors == []
    (f,) = fixes
    return f


def reason(change: dict[str, Any]) -> str:
    fixes, errors = decode_fixes(TOPIC, json.dumps({**GOOD, **change}).encode())
    assert fixes == []
    (e,) = errors
    return e.reason


def whole(topic: str, payload: bytes, *, status: bool = False) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        (decode_status if status else decode_fixes)(topic, payload)
    assert info.value.topic == topic  # every whole-message rejection names its topic
    return info.value


def test_every_field_decoded() -> None:
    f = one({"spd": 1.5, "hdg": 90, "src": "wifi", "seq": 7, "sat": 12})
    assert f == Fix("dev-1", T, 41.3, 69.2, 8.0, 1.5, 90.0, "wifi", 7, 12)
    assert one({}) == Fix("dev-1", T, 41.3, 69.2, 8.0)


@pytest.mark.parametrize(("key", "ok", "bad"), [
    ("lat", [-90, 90, -89.5, 89.5], [-90.5, 90.5]),
    ("lon", [-180, 180, -179.5, 179.5], [-180.5, 180.5]),
    ("acc", [0.5, 100_000], [0, -1, 100_000.5]),
    ("spd", [0, 0.5, 1000], [-0.5, 1000.5]),
    ("hdg", [0, 0.5, 359.9], [360, -0.5]),
    ("seq", [0, 1, 2**63 - 1], [-1, 2**63]),
    ("sat", [0, 1, 255], [-1, 256]),
])
def test_numeric_bounds(key: str, ok: list[float], bad: list[float]) -> None:
    for v in ok:
        f = one({key: v})
        got = {"lat": f.lat, "lon": f.lon, "acc": f.accuracy_m, "spd": f.speed_mps, "hdg": f.heading_deg, "seq": f.seq,
               "sat": f.satellites}[key]
        assert got == v
    for v in bad:
        assert reason({key: v}) == f"'{key}' out of range"


@pytest.mark.parametrize(("key", "value", "why"), [
    ("seq", True, "'seq' must be an integer"), ("seq", 1.5, "'seq' must be an integer"),
    ("sat", False, "'sat' must be an integer"), ("sat", "3", "'sat' must be an integer"),
    ("spd", True, "'spd' must be a number"), ("hdg", "9", "'hdg' must be a number"),
    ("t", True, "'t' must be epoch milliseconds or an RFC 3339 string"),
    ("t", 1.7e12, "'t' must be epoch milliseconds or an RFC 3339 string"),
    ("t", [1], "'t' must be epoch milliseconds or an RFC 3339 string"),
    ("t", "2026-11-26T05:00:00.12345+05:00:00.000000", "'t' must be epoch milliseconds or an RFC 3339 string"),
    ("t", "2026-11-26T05:00:00z", "'t' is not a valid RFC 3339 time"),
    ("t", 946_684_799_999, "'t' out of range (2000..2100)"),
    ("t", 4_102_444_800_000, "'t' out of range (2000..2100)"),
    ("src", None, "'src' must be gps, cell or wifi"),
])
def test_type_and_range_reasons(key: str, value: Any, why: str) -> None:
    assert reason({key: value}) == why


def test_time_bounds_and_forms() -> None:
    assert one({"t": 946_684_800_000}).time_ms == 946_684_800_000
    assert one({"t": 4_102_444_799_999}).time_ms == 4_102_444_799_999
    assert one({"t": "2026-11-26T05:00:00Z"}).time_ms == 1_795_669_200_000
    forty = "2026-11-26T05:00:00.1234+05:00:00.000000"  # 40 characters: the longest accepted
    assert len(forty) == 40 and one({"t": forty}).time_ms == 1_795_651_200_123


def test_missing_fields_and_non_objects() -> None:
    for key in ("lat", "lon", "acc", "t"):
        body = {k: v for k, v in GOOD.items() if k != key}
        fixes, errors = decode_fixes(TOPIC, json.dumps(body).encode())
        assert fixes == [] and [e.reason for e in errors] == [f"missing '{key}'"]
    fixes, errors = decode_fixes(TOPIC, json.dumps([GOOD, 5]).encode())
    assert [e.reason for e in errors] == ["fix[1]: a fix must be a JSON object"]


def test_unknown_keys_lists_at_most_five() -> None:
    extra = {k: 1 for k in ("a", "b", "c", "d", "e", "f")}
    assert reason(extra) == "unknown keys ['a', 'b', 'c', 'd', 'e']"


def test_dead_letter_bytes_of_a_bad_fix() -> None:
    payload = b'{ "t": 1764151200123,  "lat": 91, "lon": 69.2, "acc": 8 }'
    (e,) = decode_fixes(TOPIC, payload)[1]
    assert (e.index, e.raw) == (0, payload)  # a single fix: the whole payload, byte for byte
    long_bad = {**GOOD, "x": "y" * 5000}
    fixes, errors = decode_fixes(TOPIC, json.dumps([GOOD, long_bad]).encode())
    assert len(fixes) == 1 and errors[0].index == 1
    assert errors[0].raw == json.dumps(long_bad).encode()[:4096]  # in a batch: the item, capped


@pytest.mark.parametrize(("topic", "payload", "why"), [
    (TOPIC, b"NaN", "not valid JSON: NaN is not allowed"),
    (TOPIC, b"", "not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    (TOPIC, b"[]", "empty fix array"),
    (TOPIC, b"42", "payload must be a JSON object or array"),
    (TOPIC, b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (TOPIC, b"\xfe\xff" + json.dumps(GOOD).encode("utf-16-be"),
     "not UTF-8: starts with a byte order mark (the wire format is UTF-8 JSON)"),
    (TOPIC, json.dumps(GOOD).encode("utf-16-le"), "not UTF-8: NUL bytes (UTF-16 or UTF-32?); the wire format is UTF-8 JSON"),
    (TOPIC, b'{"t": \xff}', "not UTF-8: invalid byte at offset 6"),
    (TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), f"payload too large ({MAX_PAYLOAD_BYTES + 1} > {MAX_PAYLOAD_BYTES} bytes)"),
    ("nazorat/v1/devices/a b/fixes", b"{}", "malformed device id in topic"),
    ("other/topic", b"{}", "not a fixes topic"),
])
def test_whole_message_rejections_exactly(topic: str, payload: bytes, why: str) -> None:
    assert whole(topic, payload).reason == why


def test_size_and_count_limits_are_inclusive() -> None:
    body = json.dumps(GOOD).encode()
    exactly = body + b" " * (MAX_PAYLOAD_BYTES - len(body))
    assert len(decode_fixes(TOPIC, exactly)[0]) == 1
    many = [{**GOOD, "t": T + k} for k in range(MAX_FIXES_PER_MESSAGE)]
    assert len(decode_fixes(TOPIC, json.dumps(many).encode())[0]) == MAX_FIXES_PER_MESSAGE
    too_many = json.dumps([*many, {**GOOD, "t": T - 1}]).encode()
    assert whole(TOPIC, too_many).reason == f"too many fixes ({MAX_FIXES_PER_MESSAGE + 1} > {MAX_FIXES_PER_MESSAGE})"


# --- MessagePack ------------------------------------------------------------------------
def _mp(rows: Any) -> bytes:
    return bytes(msgpack.packb(rows))


ROW = [T, 413_000_000, 692_000_000, 80, None, 900, 0, 7]


def test_binary_fields_and_gaps() -> None:
    (f,), errors = decode_fixes(MP, _mp(ROW))
    assert errors == [] and f == Fix("dev-1", T, 41.3, 69.2, 8.0, None, 90.0, "gps", 7)
    (first, b), _ = decode_fixes(MP, _mp([ROW, [T + 1, 1, 2, 3, 150, None, 2, None]]))
    assert first == f
    assert b == Fix("dev-1", T + 1, 1e-7, 2e-7, 0.3, 1.5, None, "wifi", None)


@pytest.mark.parametrize(("src", "why"), [(3, "'src' must be gps, cell or wifi"), (-1, "'src' must be gps, cell or wifi")])
def test_binary_source_out_of_range(src: int, why: str) -> None:
    fixes, errors = decode_fixes(MP, _mp([*ROW[:6], src, 7]))
    assert fixes == [] and [e.reason for e in errors] == [why]


def test_binary_batch_rejections_are_numbered_and_keep_their_reason() -> None:
    payload = _mp([ROW, [T + 1, 1.5, 2, 3, None, None, 0, None], [1, 2]])
    fixes, errors = decode_fixes(MP, payload)
    assert len(fixes) == 1
    assert [(e.index, e.reason) for e in errors] == [(1, "fix[1]: binary field 'lat' must be an integer"),
                                                     (2, "fix[2]: a binary fix must be an array of 8 fields")]
    assert all(e.raw for e in errors)
    fixes, errors = decode_fixes(MP, _mp([ROW, [1, 2]]))
    assert [e.reason for e in errors] == ["fix[1]: a binary fix must be an array of 8 fields"]


@pytest.mark.parametrize(("payload", "why"), [
    (b"\xa1x", "not valid MessagePack"),  # a one-character string
    (b"\xc4\x01x", "not valid MessagePack"),  # a one-byte binary
    (bytes(msgpack.packb([ROW] * (MAX_FIXES_PER_MESSAGE + 1))), "not valid MessagePack"),
    (b"\x80", "binary payload must be a fix array or an array of them"),  # an empty map
    (b"\x81\xa0\x01", "not valid MessagePack"),  # a map with one entry, an empty string key
    (bytes(msgpack.packb([[1] * 8] * 1001)), "not valid MessagePack: 1001 exceeds max_array_len(1000)"),
])
def test_binary_whole_rejections(payload: bytes, why: str) -> None:
    assert whole(MP, payload).reason.startswith(why)


# --- status --------------------------------------------------------------------------------
def test_status_bounds_and_limits() -> None:
    assert decode_status(ST, json.dumps({"t": T, "bat": 0.5}).encode()).battery_pct == 0.5
    assert decode_status(ST, json.dumps({"t": T, "bat": 0, "gsm": -150}).encode()) == Status(
        "dev-1", T, battery_pct=0.0, gsm_dbm=-150.0)
    body = json.dumps({"t": T}).encode()
    assert decode_status(ST, body + b" " * (4096 - len(body))).time_ms == T
    assert whole(ST, body + b" " * (4097 - len(body)), status=True).reason == "status payload too large"
    extra = {k: 1 for k in ("a", "b", "c", "d", "e", "f")}
    assert whole(ST, json.dumps({"t": T, **extra}).encode(), status=True).reason == (
        "unknown keys ['a', 'b', 'c', 'd', 'e']")


@pytest.mark.parametrize(("payload", "why"), [
    (b"[]", "a status must be a JSON object"),
    (b"{nope", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (json.dumps({"t": T, "v": 2}).encode(), "unsupported payload version"),
    (json.dumps({"t": T, "strap": "x"}).encode(), "'strap' must be closed, opened or cut"),
    (json.dumps({"t": T, "case": "x"}).encode(), "'case' must be closed or open"),
    (json.dumps({"t": T}).encode("utf-16"), "not UTF-8: starts with a byte order mark (the wire format is UTF-8 JSON)"),
])
def test_status_rejections_name_their_topic(payload: bytes, why: str) -> None:
    assert whole(ST, payload, status=True).reason == why


def test_topics() -> None:
    assert is_status_topic(ST) and not is_status_topic(TOPIC)
    assert not is_status_topic("other/dev-1/status") and not is_status_topic("nazorat/v1/devices/dev-1/statuses")
    assert device_from_topic(ST, "/status") == "dev-1"
    assert whole(TOPIC, b"{}", status=True).reason == "not a status topic"
    with pytest.raises(DecodeError) as info:
        device_from_topic("nazorat/v1/devices/a b/status", "/status")
    assert (info.value.reason, info.value.topic) == ("malformed device id in topic", "nazorat/v1/devices/a b/status")


# --- the encoder (what the simulator sends) --------------------------------------------------
def test_encode_fix_rounds_each_field_to_its_wire_precision() -> None:
    assert encode_fix(t_ms=T, lat=41.123456789, lon=69.987654321, acc=5.55, spd=1.23456, hdg=-90.04, seq=3) == {
        "t": T, "lat": 41.1234568, "lon": 69.9876543, "acc": 5.5, "src": "gps", "spd": 1.23, "hdg": 270.0, "seq": 3}
    assert encode_fix(t_ms=T, lat=1.0, lon=2.0, acc=3.0, hdg=725.25, src="cell") == {
        "t": T, "lat": 1.0, "lon": 2.0, "acc": 3.0, "src": "cell", "hdg": 5.2}


def test_encode_payload_forms() -> None:
    a = encode_fix(t_ms=T, lat=41.3, lon=69.2, acc=8.0, spd=1.5, hdg=90.0, seq=7)
    b = encode_fix(t_ms=T + 1, lat=41.3, lon=69.2, acc=8.0, src="wifi")
    assert encode_payload([a]) == json.dumps(a, separators=(",", ":")).encode()
    assert encode_payload([a, b]) == json.dumps([a, b], separators=(",", ":")).encode()
    assert msgpack.unpackb(encode_payload([a], binary=True)) == [T, 413_000_000, 692_000_000, 80, 150, 900, 0, 7]
    assert msgpack.unpackb(encode_payload([a, b], binary=True)) == [
        [T, 413_000_000, 692_000_000, 80, 150, 900, 0, 7], [T + 1, 413_000_000, 692_000_000, 80, None, None, 2, None]]
    assert msgpack.unpackb(encode_payload([{"t": T, "lat": 0.0, "lon": 0.0, "acc": 1.0}], binary=True)) == [
        T, 0, 0, 10, None, None, 0, None]
