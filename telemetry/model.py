"""The domain types every codec produces and the pipeline consumes: a fix, a status
report, an evaluated position, an inbound message and a dead letter. Codecs (wire v1 JSON
and MessagePack, later OwnTracks and OsmAnd) build these; nothing here knows a format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Fix:
    device_id: str
    time_ms: int
    lat: float
    lon: float
    accuracy_m: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    source: str = "gps"
    seq: int | None = None
    satellites: int | None = None


@dataclass(frozen=True, slots=True)
class Status:
    device_id: str
    time_ms: int
    battery_pct: float | None = None
    charging: bool | None = None
    strap: str | None = None
    case_open: bool | None = None
    gsm_dbm: float | None = None
    gps_fix: bool | None = None
    online: bool | None = None
    # not on the wire: when the engine's MQTT client read the report (ms), if known
    received_ms: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Position:
    """A device's evaluated position: what rules compare the next fix with."""

    t_ms: int
    lon: float
    lat: float
    accuracy_m: float
    source: str = "gps"  # gps, cell or wifi: only GPS positions may start or end a crossing


def position_of(f: Fix) -> Position:
    """The position a fix puts its device at."""
    return Position(f.time_ms, f.lon, f.lat, f.accuracy_m, f.source)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    # the engine's wall clock (ms) when its MQTT client read the message; None: when the
    # batch is processed (tests, replays)
    received_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class InteropEvent:
    """A message of another app that is recorded but never trusted for state: an
    OwnTracks last will (``time_ms`` None when it came without ``tst``), a transition the
    phone computed itself, the waypoints it defines."""

    device_id: str
    source: str  # owntracks
    kind: str  # lwt, transition, waypoint, waypoints
    time_ms: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FixAttributes:
    """What another app sent with a fix that the fix type has no field for (altitude,
    hdop, unknown OsmAnd keys), kept beside the position."""

    device_id: str
    time_ms: int
    attributes: dict[str, Any]


@dataclass
class Decoded:
    """What the codecs made of a batch: the pipeline's input."""

    fixes: list[Fix] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    events: list[InteropEvent] = field(default_factory=list)
    attributes: list[FixAttributes] = field(default_factory=list)

    def extend(self, other: Decoded) -> None:
        self.fixes += other.fixes
        self.dead += other.dead
        self.statuses += other.statuses
        self.events += other.events
        self.attributes += other.attributes


__all__ = [
    "DeadLetter",
    "Decoded",
    "Fix",
    "FixAttributes",
    "InboundMessage",
    "InteropEvent",
    "Position",
    "Status",
    "position_of",
]
