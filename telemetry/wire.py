"""Wire format v1 (MQTT): topics and the JSON fix payload. Documented in docs/wire-format.md.

Topics
    nazorat/v1/devices/{device_id}/fixes    one fix object, or a JSON array of them
                                            (store-and-forward bursts), at most 1000
    nazorat/v1/alerts/{subject_id}          alerts, published by the engine

Fix object (keys are short on purpose: devices sit on weak cellular links)
    t    required  device time: integer epoch milliseconds, or an RFC 3339 string with offset
    lat  required  WGS84 latitude, degrees, -90..90
    lon  required  WGS84 longitude, degrees, -180..180
    acc  required  horizontal accuracy radius, metres, > 0 and <= 100000
    spd  optional  speed, m/s, 0..1000
    hdg  optional  heading, degrees, 0..<360
    src  optional  "gps" (default), "cell" or "wifi"
    seq  optional  device sequence number, integer >= 0
    sat  optional  satellites used, integer 0..255
    v    optional  payload version, must be 1

Decoding is strict: anything but UTF-8 (UTF-16/32, a byte order mark, invalid bytes),
unknown keys, wrong types, booleans for numbers, NaN/Infinity, out-of-range values, an
unsupported ``v`` and oversized payloads are rejected with a reason. A message that
is not a JSON object/array is rejected whole; in an array, each bad fix is rejected on
its own and the good ones proceed. This module is the only thing the simulator imports.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgpack

from telemetry.errors import DecodeError
from telemetry.model import Fix, Status

TOPIC_PREFIX = "nazorat/v1/devices/"
FIXES_SUFFIX = "/fixes"
ALERTS_PREFIX = "nazorat/v1/alerts/"
FIXES_SUBSCRIPTION = "nazorat/v1/devices/+/fixes"
MSGPACK_SUFFIX = "/fixes/mp"
MSGPACK_SUBSCRIPTION = "nazorat/v1/devices/+/fixes/mp"
STATUS_SUFFIX = "/status"
STATUS_SUBSCRIPTION = "nazorat/v1/devices/+/status"
STRAP_STATES = ("closed", "opened", "cut")
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_FIXES_PER_MESSAGE = 1000
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
SOURCES = ("gps", "cell", "wifi")
_MIN_TIME_MS = 946_684_800_000  # 2000-01-01
_MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01
_ALLOWED_KEYS = frozenset({"v", "t", "lat", "lon", "acc", "spd", "hdg", "src", "seq", "sat"})
_STATUS_KEYS = frozenset({"v", "t", "bat", "chg", "strap", "case", "gsm", "gps", "online"})


@dataclass(frozen=True, slots=True)
class FixError:
    index: int
    reason: str
    raw: bytes


def fixes_topic(device_id: str) -> str:
    return f"{TOPIC_PREFIX}{device_id}{FIXES_SUFFIX}"


def alerts_topic(subject_id: str) -> str:
    return f"{ALERTS_PREFIX}{subject_id}"


def status_topic(device_id: str) -> str:
    return f"{TOPIC_PREFIX}{device_id}{STATUS_SUFFIX}"


def is_status_topic(topic: str) -> bool:
    return topic.startswith(TOPIC_PREFIX) and topic.endswith(STATUS_SUFFIX)


def device_from_topic(topic: str, suffix: str = FIXES_SUFFIX) -> str:
    """The device id of a fixes (or, with ``suffix``, status) topic. Raises DecodeError
    for any other topic."""
    if not (topic.startswith(TOPIC_PREFIX) and topic.endswith(suffix)):
        raise DecodeError(f"not a {suffix.strip('/')} topic", topic=topic)
    device_id = topic[len(TOPIC_PREFIX) : -len(suffix)]
    if not DEVICE_ID_RE.match(device_id):
        raise DecodeError("malformed device id in topic", topic=topic)
    return device_id


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


def _number(v: Any, key: str, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> float:
    """A present numeric field: a finite int or float (not bool) within [lo, hi]."""
    t = type(v)
    if t is float:
        if not math.isfinite(v):
            raise DecodeError(f"'{key}' must be finite")
        f: float = v
    elif t is int:
        f = float(v)
    else:
        raise DecodeError(f"'{key}' must be a number")
    if f < lo or f > hi or (lo_open and f == lo) or (hi_open and f == hi):
        raise DecodeError(f"'{key}' out of range")
    return f


_ABSENT = object()  # optional field not sent (null is not "absent": it is rejected)


def _required(obj: dict[str, Any], key: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise DecodeError(f"missing '{key}'") from None


def _integer(obj: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    if key not in obj:
        return None
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise DecodeError(f"'{key}' must be an integer")
    if not lo <= v <= hi:
        raise DecodeError(f"'{key}' out of range")
    return v


def _time_ms(obj: dict[str, Any]) -> int:
    if "t" not in obj:
        raise DecodeError("missing 't'")
    v = obj["t"]
    if isinstance(v, bool):
        raise DecodeError("'t' must be epoch milliseconds or an RFC 3339 string")
    if isinstance(v, int):
        ms = v
    elif isinstance(v, str) and len(v) <= 40:
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError as exc:
            raise DecodeError("'t' is not a valid RFC 3339 time") from exc
        if dt.tzinfo is None:
            raise DecodeError("'t' needs a UTC offset")
        ms = int(round(dt.timestamp() * 1000))
    else:
        raise DecodeError("'t' must be epoch milliseconds or an RFC 3339 string")
    if not _MIN_TIME_MS <= ms < _MAX_TIME_MS:
        raise DecodeError("'t' out of range (2000..2100)")
    return ms


def _check_version(version: Any, topic: str | None = None) -> None:
    """``v`` is optional; when sent it must be the integer 1."""
    if version is not None and (type(version) is not int or version != 1):
        raise DecodeError("unsupported payload version", topic=topic)


def decode_fix(device_id: str, obj: Any) -> Fix:
    if type(obj) is _Rejected:
        raise DecodeError(obj.reason)
    if type(obj) is not dict:
        raise DecodeError("a fix must be a JSON object")
    if not _ALLOWED_KEYS.issuperset(obj):
        raise DecodeError(f"unknown keys {sorted(set(obj) - _ALLOWED_KEYS)[:5]}")
    get = obj.get
    _check_version(get("v"))
    src = get("src", "gps")
    if src not in SOURCES:
        raise DecodeError("'src' must be gps, cell or wifi")
    lat = _number(_required(obj, "lat"), "lat", -90.0, 90.0)
    lon = _number(_required(obj, "lon"), "lon", -180.0, 180.0)
    acc = _number(_required(obj, "acc"), "acc", 0.0, 100_000.0, True)
    spd = get("spd", _ABSENT)
    hdg = get("hdg", _ABSENT)
    return Fix(
        device_id, _time_ms(obj), lat, lon, acc,
        None if spd is _ABSENT else _number(spd, "spd", 0.0, 1000.0),
        None if hdg is _ABSENT else _number(hdg, "hdg", 0.0, 360.0, False, True),
        src, _integer(obj, "seq", 0, 2**63 - 1), _integer(obj, "sat", 0, 255),
    )


_BINARY_FIELDS = ("t", "lat", "lon", "acc", "spd", "hdg", "src", "seq")
_BINARY_SCALE = {"lat": 1e7, "lon": 1e7, "acc": 10.0, "spd": 100.0, "hdg": 10.0}


def _utf8(topic: str, payload: bytes) -> str:
    """The payload as text. The wire format is UTF-8 without a byte order mark: UTF-16 and
    UTF-32 (which ``json.loads`` on bytes would silently accept), BOMs and invalid UTF-8
    are rejected with a reason."""
    if payload.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        raise DecodeError("not UTF-8: starts with a byte order mark (the wire format is UTF-8 JSON)", topic=topic)
    if b"\x00" in payload:  # never in UTF-8 JSON text; every UTF-16/32 JSON text has one
        raise DecodeError("not UTF-8: NUL bytes (UTF-16 or UTF-32?); the wire format is UTF-8 JSON", topic=topic)
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8: invalid byte at offset {exc.start}", topic=topic) from exc


def _load_json(topic: str, payload: bytes) -> Any:
    """Strict JSON: NaN and Infinity are refused, as are anything but UTF-8 and deep nesting."""
    text = _utf8(topic, payload)
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply", topic=topic) from exc
    except ValueError as exc:
        raise DecodeError(f"not valid JSON: {str(exc)[:120]}", topic=topic) from exc


def _load_msgpack(topic: str, payload: bytes) -> Any:
    """The compact binary form: a fix is a MessagePack array of integers
    ``[t_ms, lat_e7, lon_e7, acc_dm, spd_cm_s|nil, hdg_decideg|nil, src, seq|nil]``
    (src 0 gps, 1 cell, 2 wifi); a message is one such array or an array of them.
    Returned as the equivalent JSON-form objects, so both forms share one validation."""
    try:
        doc = msgpack.unpackb(payload, raw=False, strict_map_key=True, max_array_len=MAX_FIXES_PER_MESSAGE,
                              max_map_len=0, max_str_len=0, max_bin_len=0, max_ext_len=0)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # StackError and ExtraData are ValueErrors
        raise DecodeError(f"not valid MessagePack: {str(exc)[:120]}", topic=topic) from exc
    if not isinstance(doc, list) or not doc:
        raise DecodeError("binary payload must be a fix array or an array of them", topic=topic)
    items = doc if isinstance(doc[0], list) else [doc]
    return [_binary_fix(item) for item in items]


@dataclass(frozen=True, slots=True)
class _Rejected:
    """A binary fix already known to be bad: decode_fix rejects it with this reason."""

    reason: str


def _binary_fix(item: Any) -> Any:
    if not isinstance(item, list) or len(item) != len(_BINARY_FIELDS):
        return _Rejected(f"a binary fix must be an array of {len(_BINARY_FIELDS)} fields")
    obj: dict[str, Any] = {}
    for key, value in zip(_BINARY_FIELDS, item, strict=True):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return _Rejected(f"binary field '{key}' must be an integer")
        if key == "src":
            obj[key] = SOURCES[value] if 0 <= value < len(SOURCES) else value
        else:
            obj[key] = value / _BINARY_SCALE[key] if key in _BINARY_SCALE else value
    return obj


def decode_fixes(topic: str, payload: bytes) -> tuple[list[Fix], list[FixError]]:
    """Decode one message: JSON on ``.../fixes``, MessagePack (the same fields, for weak
    links) on ``.../fixes/mp``. Raises DecodeError when the message as a whole is
    unusable; otherwise returns the good fixes and a rejection per bad fix."""
    binary = topic.endswith(MSGPACK_SUFFIX)
    device_id = device_from_topic(topic, MSGPACK_SUFFIX if binary else FIXES_SUFFIX)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload too large ({len(payload)} > {MAX_PAYLOAD_BYTES} bytes)", topic=topic)
    if binary:
        items = _load_msgpack(topic, payload)
        batch = len(items) > 1
    else:
        doc = _load_json(topic, payload)
        if not isinstance(doc, list | dict):
            raise DecodeError("payload must be a JSON object or array", topic=topic)
        items = doc if isinstance(doc, list) else [doc]
        batch = isinstance(doc, list)
    if not items:
        raise DecodeError("empty fix array", topic=topic)
    if len(items) > MAX_FIXES_PER_MESSAGE:
        raise DecodeError(f"too many fixes ({len(items)} > {MAX_FIXES_PER_MESSAGE})", topic=topic)
    fixes: list[Fix] = []
    errors: list[FixError] = []
    for i, item in enumerate(items):
        try:
            fixes.append(decode_fix(device_id, item))
        except DecodeError as exc:
            raw = json.dumps(item, default=repr)[:4096].encode() if batch else payload
            errors.append(FixError(i, f"fix[{i}]: {exc.reason}" if batch else exc.reason, raw))
    return fixes, errors


def _flag(obj: dict[str, Any], key: str) -> bool | None:
    if key not in obj:
        return None
    if not isinstance(obj[key], bool):
        raise DecodeError(f"'{key}' must be true or false")
    return bool(obj[key])


def decode_status(topic: str, payload: bytes) -> Status:
    """Decode a status report (battery, charging, strap, case, GSM signal, GPS fix,
    online; ``online: false`` is what a device's MQTT last will says)."""
    device_id = device_from_topic(topic, STATUS_SUFFIX)
    if len(payload) > 4096:
        raise DecodeError("status payload too large", topic=topic)
    obj = _load_json(topic, payload)
    if not isinstance(obj, dict):
        raise DecodeError("a status must be a JSON object", topic=topic)
    unknown = set(obj) - _STATUS_KEYS
    if unknown:
        raise DecodeError(f"unknown keys {sorted(unknown)[:5]}", topic=topic)
    _check_version(obj.get("v"), topic)
    strap = obj.get("strap")  # sent as null is not "not sent": rejected, as for fixes
    if "strap" in obj and strap not in STRAP_STATES:
        raise DecodeError("'strap' must be closed, opened or cut", topic=topic)
    case = obj.get("case")
    if "case" in obj and case not in ("closed", "open"):
        raise DecodeError("'case' must be closed or open", topic=topic)
    return Status(
        device_id=device_id, time_ms=_time_ms(obj),
        battery_pct=None if "bat" not in obj else _number(obj["bat"], "bat", 0.0, 100.0),
        charging=_flag(obj, "chg"),
        strap=strap, case_open=None if case is None else case == "open",
        gsm_dbm=None if "gsm" not in obj else _number(obj["gsm"], "gsm", -150.0, 0.0),
        gps_fix=_flag(obj, "gps"),
        online=_flag(obj, "online"),
    )


def encode_fix(*, t_ms: int, lat: float, lon: float, acc: float, spd: float | None = None,
               hdg: float | None = None, src: str = "gps", seq: int | None = None) -> dict[str, Any]:
    """A fix object as a device sends it."""
    out: dict[str, Any] = {"t": t_ms, "lat": round(lat, 7), "lon": round(lon, 7), "acc": round(acc, 1), "src": src}
    if spd is not None:
        out["spd"] = round(spd, 2)
    if hdg is not None:
        out["hdg"] = round(hdg % 360.0, 1)
    if seq is not None:
        out["seq"] = seq
    return out


def encode_payload(fixes: list[dict[str, Any]], *, binary: bool = False) -> bytes:
    """A fixes payload: JSON, or MessagePack for the ``.../fixes/mp`` topic."""
    doc: Any = fixes[0] if len(fixes) == 1 else fixes
    if binary:
        rows = [[f["t"], round(f["lat"] * 1e7), round(f["lon"] * 1e7), round(f["acc"] * 10),
                 None if f.get("spd") is None else round(f["spd"] * 100),
                 None if f.get("hdg") is None else round(f["hdg"] * 10),
                 SOURCES.index(f.get("src", "gps")), f.get("seq")] for f in fixes]
        return bytes(msgpack.packb(rows[0] if len(rows) == 1 else rows))
    return json.dumps(doc, separators=(",", ":")).encode()


def msgpack_topic(device_id: str) -> str:
    return f"{TOPIC_PREFIX}{device_id}{MSGPACK_SUFFIX}"


__all__ = [
    "ALERTS_PREFIX",
    "FIXES_SUBSCRIPTION",
    "MAX_FIXES_PER_MESSAGE",
    "MAX_PAYLOAD_BYTES",
    "MSGPACK_SUBSCRIPTION",
    "SOURCES",
    "STATUS_SUBSCRIPTION",
    "Fix",
    "FixError",
    "Status",
    "alerts_topic",
    "decode_fix",
    "decode_fixes",
    "decode_status",
    "device_from_topic",
    "encode_fix",
    "encode_payload",
    "fixes_topic",
    "is_status_topic",
    "msgpack_topic",
    "status_topic",
]
