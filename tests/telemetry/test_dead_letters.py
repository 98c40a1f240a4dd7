"""Dead-letter reason codes: every reason the decoders give maps onto a named code."""

from __future__ import annotations

import json

import pytest

from telemetry.dead_letters import REASON_CODES, reason_code
from telemetry.errors import DecodeError
from telemetry.wire import MAX_PAYLOAD_BYTES, decode_fixes, decode_status, fixes_topic, status_topic

GOOD = {"t": 1_764_151_200_000, "lat": 41.3, "lon": 69.2, "acc": 5.0}


@pytest.mark.parametrize(("topic", "payload", "code"), [
    (fixes_topic("d1"), b"{nope", "invalid_json"),
    (fixes_topic("d1"), b"[]", "bad_batch"),
    (fixes_topic("d1"), b"7", "bad_batch"),
    (fixes_topic("d1"), b"x" * (MAX_PAYLOAD_BYTES + 1), "payload_too_large"),
    (fixes_topic("d1"), json.dumps({**GOOD, "zzz": 1}).encode(), "unknown_key"),
    (fixes_topic("d1"), json.dumps({k: v for k, v in GOOD.items() if k != "lat"}).encode(), "missing_field"),
    (fixes_topic("d1"), json.dumps({**GOOD, "lat": 91}).encode(), "invalid_value"),
    (fixes_topic("d1"), json.dumps({**GOOD, "lat": "north"}).encode(), "bad_type"),
    (fixes_topic("d1"), json.dumps({**GOOD, "v": 2}).encode(), "unsupported_version"),
    (fixes_topic("d1"), json.dumps({**GOOD, "src": "radio"}).encode(), "invalid_value"),
    ("nazorat/v1/devices/bad id!/fixes", json.dumps(GOOD).encode(), "bad_topic"),
    (status_topic("d1"), b'{"t": 1764151200000, "strap": "melted"}', "invalid_value"),
])
def test_decoder_reasons_map_to_named_codes(topic: str, payload: bytes, code: str) -> None:
    try:
        if topic.endswith("/status"):
            decode_status(topic, payload)
            reasons = []
        else:
            reasons = [e.reason for e in decode_fixes(topic, payload)[1]]
    except DecodeError as exc:
        reasons = [exc.reason]
    assert len(reasons) == 1
    assert reason_code(reasons[0]) == code


def test_unforeseen_text_is_other_and_codes_are_closed() -> None:
    assert reason_code("anything a device could write, \x00 included") == "other"
    assert reason_code("unknown device") == "unknown_device"
    assert len(set(REASON_CODES)) == len(REASON_CODES) and "other" in REASON_CODES
