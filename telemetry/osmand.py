"""The OsmAnd / Traccar Client HTTP protocol, decoded into the domain types (pure: no I/O).

Two families of requests reach the HTTP ingest listener (``ingest.http``), both as
Traccar's ``OsmAndProtocolDecoder`` reads them:

- parameters, in the query string or an urlencoded form body (OsmAnd, Traccar Client up to
  v8, many scripts): ``id``/``deviceid``; ``lat`` + ``lon`` or ``location=lat,lon``;
  ``timestamp`` as epoch seconds (below 2^31), epoch milliseconds, ISO-8601 (with ``T``)
  or ``yyyy-MM-dd HH:mm:ss`` (UTC); ``speed`` in **knots**; ``bearing``/``heading``,
  ``altitude``, ``accuracy``, ``hdop``, ``batt`` (%), ``charge``, ``valid``; any other key
  is kept as an attribute (a number, true/false or text, as Traccar keeps it);
- JSON (Traccar Client 9+, built on the background-geolocation library): one object
  ``{"device_id", "location": {"timestamp", "coords": {"latitude", "longitude",
  "accuracy", "speed" (**m/s**), "heading", "altitude"}, "battery": {"level" 0..1,
  "is_charging"}, "is_moving", "event", "extras"}}`` or an array of them (a batch upload).

Where we are stricter than Traccar, on purpose (a fix here can open a violation):
no timestamp is an error, not "now" (a retried request must keep its device time, or every
retry would be a new fix); no position is an error, not "the last known one"; ``valid=false``
(the client says it has no fix) stores no position, only a status with ``gps_fix`` false;
no ``accuracy``: 5 m per unit of ``hdop``, else ``DEFAULT_ACCURACY_M`` (a poor fix, which the
evaluator treats as uncertain near any boundary). The map to wire format v1 is in
docs/interop.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telemetry.errors import DecodeError
from telemetry.model import Fix, Status
from telemetry.wire import DEVICE_ID_RE

KNOT_MPS = 1852.0 / 3600.0
DEFAULT_ACCURACY_M = 100.0
HDOP_METRES = 5.0
MAX_BATCH = 1000
_MIN_MS = 946_684_800_000  # 2000-01-01
_MAX_MS = 4_102_444_800_000  # 2100-01-01
_DIGITS = re.compile(r"^[0-9]{1,16}$")
#: parameters that carry the per-device secret (never kept as attributes, never stored)
SECRET_KEYS = frozenset({"secret", "key"})
_KNOWN = frozenset({"id", "deviceid", "lat", "lon", "location", "timestamp", "speed", "bearing", "heading",
                    "altitude", "accuracy", "hdop", "batt", "charge", "valid"}) | SECRET_KEYS


@dataclass(frozen=True, slots=True)
class OsmAndReport:
    """One decoded report: the device it claims to be, the fix (None when the client said
    it has none), a status when battery or validity came with it, and the attributes."""

    device_id: str
    time_ms: int
    fix: Fix | None
    status: Status | None
    attributes: dict[str, Any] = field(default_factory=dict)


def _float(value: Any, key: str, lo: float, hi: float) -> float:
    if isinstance(value, bool):
        raise DecodeError(f"'{key}' must be a number")
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"'{key}' must be a number") from exc
    if not math.isfinite(f):
        raise DecodeError(f"'{key}' must be finite")
    if not lo <= f <= hi:
        raise DecodeError(f"'{key}' out of range")
    return f


def parse_timestamp(value: Any) -> int:
    """Epoch milliseconds from any of the four forms (numbers from JSON too)."""
    if isinstance(value, bool):
        raise DecodeError("'timestamp' is not a valid time")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise DecodeError("'timestamp' must be finite")
        ms = int(value * 1000) if value < 2**31 else int(value)
    elif isinstance(value, str) and _DIGITS.match(value):
        n = int(value)
        ms = n * 1000 if n < 2**31 else n
    elif isinstance(value, str) and len(value) <= 40:
        text = value.strip().replace("Z", "+00:00")
        try:
            dt = (datetime.fromisoformat(text) if "T" in text
                  else datetime.strptime(text, "%Y-%m-%d %H:%M:%S"))
        except ValueError as exc:
            raise DecodeError("'timestamp' is not a valid time (epoch s or ms, ISO-8601, yyyy-MM-dd HH:mm:ss)") \
                from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)  # documented: times without an offset are UTC
        ms = int(round(dt.timestamp() * 1000))
    else:
        raise DecodeError("'timestamp' is not a valid time")
    if not _MIN_MS <= ms < _MAX_MS:
        raise DecodeError("'timestamp' out of range (2000..2100)")
    return ms


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise DecodeError(f"'{key}' must be true or false")


def _attribute(value: str) -> Any:
    """An unknown key's value as Traccar keeps it: a number, true/false, or the text."""
    try:
        f = float(value)
    except ValueError:
        return {"true": True, "false": False}.get(value, value[:200].replace("\x00", ""))
    return f if math.isfinite(f) else value[:200]


def _device_id(value: Any) -> str:
    if not isinstance(value, str) or not DEVICE_ID_RE.match(value):
        raise DecodeError("'id' must be a device id (1..64 letters, digits, _ . : -)")
    return value


def _report(device_id: str, time_ms: int, lat: float | None, lon: float | None, *, accuracy: float | None,
            hdop: float | None, speed_mps: float | None, heading: float | None, valid: bool,
            battery: float | None, charging: bool | None, attributes: dict[str, Any]) -> OsmAndReport:
    fix = None
    if valid:
        if lat is None or lon is None:
            raise DecodeError("missing 'lat'/'lon' (or 'location')")
        acc = accuracy if accuracy is not None and accuracy > 0 else (
            max(hdop * HDOP_METRES, 1.0) if hdop is not None else DEFAULT_ACCURACY_M)
        fix = Fix(device_id, time_ms, lat, lon, min(acc, 100_000.0), speed_mps, heading)
    status = None
    if battery is not None or charging is not None or not valid:
        status = Status(device_id, time_ms, battery_pct=battery, charging=charging, gps_fix=False if not valid else None)
    return OsmAndReport(device_id, time_ms, fix, status, attributes)


def _heading(value: Any, key: str) -> float:
    return _float(value, key, 0.0, 360.0) % 360.0


def decode_params(params: Iterable[tuple[str, str]]) -> OsmAndReport:
    """A report from query-string or form parameters (the first value of a repeated key wins)."""
    p: dict[str, str] = {}
    for k, v in params:
        p.setdefault(k, v)
    raw_id = p.get("id", p.get("deviceid"))
    if raw_id is None:
        raise DecodeError("missing 'id' (or 'deviceid')")
    device_id = _device_id(raw_id)
    if "timestamp" not in p:
        raise DecodeError("missing 'timestamp'")
    time_ms = parse_timestamp(p["timestamp"])
    lat = lon = None
    if "location" in p:
        parts = p["location"].split(",")
        if len(parts) != 2:
            raise DecodeError("'location' must be lat,lon")
        lat, lon = _float(parts[0], "location", -90.0, 90.0), _float(parts[1], "location", -180.0, 180.0)
    if "lat" in p or "lon" in p:
        if "lat" not in p or "lon" not in p:
            raise DecodeError("missing 'lat'/'lon' (or 'location')")
        lat, lon = _float(p["lat"], "lat", -90.0, 90.0), _float(p["lon"], "lon", -180.0, 180.0)
    bearing = p.get("bearing", p.get("heading"))
    attributes = {k: _attribute(v) for k, v in p.items() if k not in _KNOWN}
    for key in ("altitude", "hdop"):
        if key in p:
            attributes[key] = _float(p[key], key, -1e5, 1e5)
    return _report(
        device_id, time_ms, lat, lon,
        accuracy=_float(p["accuracy"], "accuracy", 0.0, 1e7) if "accuracy" in p else None,
        hdop=attributes.get("hdop"),
        speed_mps=_float(p["speed"], "speed", 0.0, 2000.0) * KNOT_MPS if "speed" in p else None,
        heading=None if bearing is None else _heading(bearing, "bearing"),
        valid=_flag(p["valid"], "valid") if "valid" in p else True,
        battery=_float(p["batt"], "batt", 0.0, 100.0) if "batt" in p else None,
        charging=_flag(p["charge"], "charge") if "charge" in p else None,
        attributes=attributes)


def _object(doc: Any, key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise DecodeError(f"'{key}' must be a JSON object")
    return value


def decode_json_object(doc: Any) -> OsmAndReport:
    """A report from the JSON form of Traccar Client 9+."""
    if not isinstance(doc, dict):
        raise DecodeError("a report must be a JSON object")
    device_id = _device_id(doc.get("device_id", doc.get("id")))
    loc = _object(doc, "location")
    if "timestamp" not in loc:
        raise DecodeError("missing 'location.timestamp'")
    coords = _object(loc, "coords")
    battery = _object(loc, "battery")
    if "latitude" not in coords or "longitude" not in coords:
        raise DecodeError("missing 'location.coords.latitude'/'longitude'")
    speed = coords.get("speed")
    heading = coords.get("heading")
    attributes: dict[str, Any] = {}
    for key in ("altitude", "altitude_accuracy"):
        if coords.get(key) is not None:
            attributes[key] = _float(coords[key], key, -1e5, 1e5)
    for key in ("is_moving", "event", "odometer", "activity", "extras"):
        if key in loc:
            attributes[key] = loc[key]
    level = battery.get("level")
    return _report(
        device_id, parse_timestamp(loc["timestamp"]),
        _float(coords["latitude"], "latitude", -90.0, 90.0), _float(coords["longitude"], "longitude", -180.0, 180.0),
        accuracy=None if coords.get("accuracy") is None else _float(coords["accuracy"], "accuracy", 0.0, 1e7),
        hdop=None,
        # the library reports -1 for "unknown" speed and heading
        speed_mps=None if speed is None or speed == -1 else _float(speed, "speed", 0.0, 1000.0),
        heading=None if heading is None or heading == -1 else _heading(heading, "heading"),
        valid=True,
        battery=None if level is None or level == -1 else _float(level, "battery.level", 0.0, 1.0) * 100.0,
        charging=None if battery.get("is_charging") is None else _flag(battery["is_charging"], "is_charging"),
        attributes=attributes)


def decode_json(doc: Any) -> list[OsmAndReport | DecodeError]:
    """One object or an array of them (a batch upload): each bad element is an error of its
    own, the good ones proceed. A document that is neither raises DecodeError."""
    if isinstance(doc, dict):
        return [_or_error(doc)]
    if not isinstance(doc, list):
        raise DecodeError("payload must be a JSON object or array")
    if not doc:
        raise DecodeError("empty report array")
    if len(doc) > MAX_BATCH:
        raise DecodeError(f"too many fixes ({len(doc)} > {MAX_BATCH})")
    return [_or_error(item) for item in doc]


def _or_error(item: Any) -> OsmAndReport | DecodeError:
    try:
        return decode_json_object(item)
    except DecodeError as exc:
        return exc


__all__ = ["DEFAULT_ACCURACY_M", "KNOT_MPS", "SECRET_KEYS", "OsmAndReport", "decode_json", "decode_json_object",
           "decode_params", "parse_timestamp"]
