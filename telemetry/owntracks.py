"""OwnTracks JSON (MQTT and HTTP mode), decoded into the domain types (pure: no I/O).

Topics are ``owntracks/{user}/{device}`` (locations, last wills), with ``/event``
(transitions) and ``/waypoint``, ``/waypoints`` beneath; the engine answers on
``owntracks/{user}/{device}/cmd``. The phone's identity is the (user, device) pair: the
decoder cannot know which registered device that is, so what it returns carries
``alias(user, device)`` as its device id (``owntracks/...``: a slash, which no registered
device id can contain) and the pipeline replaces it with the bound device, or dead-letters
it as unbound.

``_type`` handling (docs/interop.md has the field map):

- ``location``: a fix (``lat``, ``lon``, ``tst`` required; ``vel`` km/h, ``cog``, ``acc``),
  and a status when ``batt`` or ``bs`` came; ``alt``, ``vac``, ``t``, ``tid``, ``conn``,
  ``m``, ``inregions``, ``created_at`` are kept as attributes; every other field is ignored
  (SSID/BSSID on purpose: a victim's home network name is not ours to keep).
- ``lwt`` (``tst`` optional: Android sends ``{"_type":"lwt"}``), ``transition``,
  ``waypoint``, ``waypoints``: recorded as ``InteropEvent``; never trusted for state.
- ``encrypted``: a dead letter (we hold no key); ``card``, ``status``, ``steps``, ``beacon``,
  ``request``, ``cmd``, ``configuration``: ignored; any other type: a dead letter.
- a zero-length payload (a cleared retained message, a deleted friend): ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from telemetry.errors import DecodeError
from telemetry.model import Decoded, Fix, FixAttributes, InteropEvent, Status

PREFIX = "owntracks/"
SUBSCRIPTIONS = ("owntracks/+/+", "owntracks/+/+/event", "owntracks/+/+/waypoint", "owntracks/+/+/waypoints")
KMH_MPS = 1 / 3.6
DEFAULT_ACCURACY_M = 100.0
MAX_PAYLOAD_BYTES = 64 * 1024
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_IGNORED = frozenset({"card", "status", "steps", "beacon", "request", "cmd", "configuration", "dump"})
_RECORDED = frozenset({"lwt", "transition", "waypoint", "waypoints"})
_ATTRIBUTES = ("alt", "vac", "t", "tid", "conn", "m", "inregions", "created_at")
_MIN_S = 946_684_800
_MAX_S = 4_102_444_800


def alias(user: str, device: str) -> str:
    """The placeholder device id of an OwnTracks identity, until the pipeline resolves it."""
    return f"{PREFIX}{user}/{device}"


def is_alias(device_id: str) -> bool:
    return device_id.startswith(PREFIX)


def split_alias(device_id: str) -> tuple[str, str]:
    user, _, device = device_id[len(PREFIX):].partition("/")
    return user, device


def cmd_topic(user: str, device: str) -> str:
    return f"{PREFIX}{user}/{device}/cmd"


def parse_topic(topic: str) -> tuple[str, str]:
    """(user, device) of an OwnTracks topic; DecodeError for anything else."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != "owntracks" or len(parts) > 4 or \
            (len(parts) == 4 and parts[3] not in ("event", "waypoint", "waypoints")):
        raise DecodeError("not an OwnTracks topic", topic=topic)
    if not (NAME_RE.match(parts[1]) and NAME_RE.match(parts[2])):
        raise DecodeError("malformed user or device in topic", topic=topic)
    return parts[1], parts[2]


def _number(obj: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    if key not in obj or obj[key] is None:
        return None
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise DecodeError(f"'{key}' must be a number")
    if not lo <= v <= hi:
        raise DecodeError(f"'{key}' out of range")
    return float(v)


def _tst(obj: dict[str, Any], required: bool) -> int | None:
    if "tst" not in obj:
        if required:
            raise DecodeError("missing 'tst'")
        return None
    v = obj["tst"]
    if isinstance(v, bool) or not isinstance(v, int):
        raise DecodeError("'tst' must be an integer (epoch seconds)")
    if not _MIN_S <= v < _MAX_S:
        raise DecodeError("'tst' out of range (2000..2100)")
    return v * 1000


def _location(device_id: str, obj: dict[str, Any]) -> Decoded:
    for key in ("lat", "lon"):
        if key not in obj:
            raise DecodeError(f"missing '{key}'")
    lat = _number(obj, "lat", -90.0, 90.0)
    lon = _number(obj, "lon", -180.0, 180.0)
    time_ms = _tst(obj, required=True)
    assert lat is not None and lon is not None and time_ms is not None
    acc = _number(obj, "acc", 0.0, 1e7)
    vel = _number(obj, "vel", 0.0, 3600.0)
    cog = _number(obj, "cog", 0.0, 360.0)
    fix = Fix(device_id, time_ms, lat, lon, min(acc, 100_000.0) if acc else DEFAULT_ACCURACY_M,
              None if vel is None else vel * KMH_MPS, None if cog is None else cog % 360.0)
    out = Decoded(fixes=[fix])
    batt = _number(obj, "batt", 0.0, 100.0)
    bs = obj.get("bs")
    if bs is not None and bs not in (0, 1, 2, 3):
        raise DecodeError("'bs' must be 0, 1, 2 or 3")
    charging = None if bs in (None, 0) else bs in (2, 3)
    if batt is not None or charging is not None:
        out.statuses.append(Status(device_id, time_ms, battery_pct=batt, charging=charging))
    attributes = {k: obj[k] for k in _ATTRIBUTES if k in obj}
    if attributes:
        out.attributes.append(FixAttributes(device_id, time_ms, attributes))
    return out


def decode(topic: str, payload: bytes) -> Decoded:
    """One OwnTracks message (MQTT topic, or the topic HTTP mode names) as domain types,
    with ``alias(user, device)`` as the device id. Raises DecodeError when it is unusable."""
    user, device = parse_topic(topic)
    if not payload:
        return Decoded()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(f"payload too large ({len(payload)} > {MAX_PAYLOAD_BYTES} bytes)", topic=topic)
    try:
        obj = json.loads(payload.decode("utf-8"), parse_constant=_reject)
    except UnicodeDecodeError as exc:
        raise DecodeError("not UTF-8", topic=topic) from exc
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"not valid JSON: {str(exc)[:120]}", topic=topic) from exc
    return decode_object(alias(user, device), obj)


def decode_object(device_id: str, obj: Any) -> Decoded:
    if not isinstance(obj, dict):
        raise DecodeError("an OwnTracks message must be a JSON object")
    kind = obj.get("_type")
    if not isinstance(kind, str):
        raise DecodeError("missing '_type'")
    if kind == "location":
        return _location(device_id, obj)
    if kind in _RECORDED:
        return Decoded(events=[InteropEvent(device_id, "owntracks", kind, _tst(obj, required=False), obj)])
    if kind in _IGNORED:
        return Decoded()
    if kind == "encrypted":
        raise DecodeError("encrypted OwnTracks payloads are not supported (turn encryption off for this endpoint)")
    raise DecodeError(f"unsupported OwnTracks _type {kind[:32]!r}")


def _reject(name: str) -> float:
    raise ValueError(f"{name} is not allowed")


@dataclass(frozen=True, slots=True)
class Region:
    """A circle the phone may show: an exclusion zone as an OwnTracks waypoint."""

    zone_id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    created_s: int


def set_waypoints(regions: Sequence[Region]) -> dict[str, Any]:
    """The ``cmd`` message that replaces the phone's regions with these (``tst`` is the
    region's identity in OwnTracks: the zone's creation time, so a resend changes nothing)."""
    return {"_type": "cmd", "action": "setWaypoints", "waypoints": {"_type": "waypoints", "waypoints": [
        {"_type": "waypoint", "desc": r.name, "lat": round(r.lat, 7), "lon": round(r.lon, 7),
         "rad": max(1, round(r.radius_m)), "tst": r.created_s, "rid": r.zone_id[:64]} for r in regions]}}


__all__ = ["DEFAULT_ACCURACY_M", "KMH_MPS", "PREFIX", "SUBSCRIPTIONS", "Region", "alias", "cmd_topic", "decode",
           "decode_object", "is_alias", "parse_topic", "set_waypoints", "split_alias"]
