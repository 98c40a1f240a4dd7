"""A compliant background fleet at national scale, generated as it is published.

The scenario plan (``simulator.scenarios``) holds every message of a compressed two-hour
story in memory: right for a few thousand devices, not for 100,000 (about 0.5 KB a
message). The background fleet is the load at that scale: devices that report in real
time (compression 1) every ``interval_s`` for the duration of the run, none of them
violating anything, so every alert one of them raises is a false alert. Its messages are
produced lazily, in time order, by the publisher process that sends them
(``messages(config, share, shares, start_ms)``): memory is per device (an itinerary
and a few numbers), not per message.

Each device is seeded by its index: a home H at up to ``spread_m`` around the origin, an
exclusion zone E (a circle of 120-150 m at 1.5 km) and one of four behaviours —

- ``homebody`` (house arrest: a 60 m home square, always in force): indoors at home all
  the run, with the poor fixes of indoors (GPS 12-40 m, wifi, cell up to 1,200 m);
- ``boundary_home`` (house arrest): sits 5 m inside the home boundary, outdoors (GPS
  3-15 m, urban-canyon fixes of 30-80 m);
- ``commuter`` (probation: no home zone): walks or drives away from home, sideways to E;
- ``boundary_exclusion`` (probation): walks back and forth on an arc 35 m outside E's
  edge, on GPS capped at 12 m.

Noise is drawn from each fix's stated accuracy as in ``simulator.movement`` (the truth
always inside the stated circle), so a correct engine raises nothing. With
``fixes_per_message`` > 1 a device uploads a batch when its last fix is taken, and each
device starts the run part way through a batch (0 to ``fixes_per_message`` - 1 fixes
already held, taken before the start), so uploads are spread over time as in a fleet
running for hours; what a device still holds at the end is not sent. Status reports
every 300 s (battery, strap and case closed, GPS on) keep the device conditions quiet.
Devices are ``{prefix}-b{index:06d}``, subjects ``{prefix}-bs{index:06d}``.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.movement import DRIVE_MPS, WALK_MPS, Itinerary, Leg, read, square, to_lonlat
from simulator.scenarios import EXCL_DIST_M, HOME_HALF_M, STATUS_EVERY_S, TASHKENT, Message
from telemetry.wire import encode_fix, encode_payload, fixes_topic, status_topic

BEHAVIOURS = ("homebody", "boundary_home", "commuter", "boundary_exclusion")
_WEIGHTS = (0.4, 0.2, 0.2, 0.2)


@dataclass(frozen=True)
class BackgroundConfig:
    devices: int
    seed: int = 7
    interval_s: float = 10.0  # one fix per device this often (wall seconds)
    duration_s: float = 60.0
    prefix: str = "sim"
    origin: tuple[float, float] = TASHKENT
    spread_m: float = 30_000.0
    fixes_per_message: int = 1  # > 1: store and forward, the message goes with its last fix

    def device_id(self, i: int) -> str:
        return f"{self.prefix}-b{i:06d}"

    def subject_id(self, i: int) -> str:
        return f"{self.prefix}-bs{i:06d}"

    @property
    def device_ids(self) -> list[str]:
        return [self.device_id(i) for i in range(self.devices)]

    @property
    def estimated_messages(self) -> int:
        """About how many messages the fleet sends (fixes messages and status reports)."""
        fixes = self.duration_s / self.interval_s / max(1, self.fixes_per_message)
        return round(self.devices * (fixes + self.duration_s / STATUS_EVERY_S))

    @property
    def expected_fixes(self) -> int:
        """Fixes the fleet sends over the duration: each device's first at a random phase;
        with batches, only whole batches (what a device still holds at the end is not
        sent in the run)."""
        return sum(_sent_fixes(self, _device(self, i)) for i in range(self.devices))


@dataclass
class _Device:
    behaviour: str
    home: tuple[float, float]
    e_centre: tuple[float, float]  # local metres
    e_radius: float
    itin: Itinerary
    max_acc: float | None
    phase: float  # the first fix of the run, in [0, interval_s)
    held_at_start: int  # batches: fixes already held when the run starts (a device mid-cycle)


def _device(cfg: BackgroundConfig, i: int) -> _Device:
    rng = random.Random(cfg.seed * 1_000_003 + i)
    home = to_lonlat(cfg.origin, (rng.uniform(-cfg.spread_m, cfg.spread_m), rng.uniform(-cfg.spread_m, cfg.spread_m)))
    theta = rng.uniform(0, 2 * math.pi)
    ux, uy = math.cos(theta), math.sin(theta)
    e_c = (EXCL_DIST_M * ux, EXCL_DIST_M * uy)
    e_r = rng.uniform(120.0, 150.0)
    behaviour = rng.choices(BEHAVIOURS, _WEIGHTS)[0]
    side = rng.choice((1.0, -1.0))
    perp = (-uy * side, ux * side)
    span = cfg.duration_s + cfg.interval_s * max(1, cfg.fixes_per_message) + 60.0
    max_acc = None
    if behaviour == "homebody":
        it = Itinerary((0.0, 0.0)).stay(span, wander_m=8.0, indoors=True)
    elif behaviour == "boundary_home":
        spot = (HOME_HALF_M - 5.0, rng.uniform(-HOME_HALF_M + 5, HOME_HALF_M - 5))
        it = Itinerary(spot).stay(span, wander_m=1.0)
    elif behaviour == "commuter":
        far = rng.uniform(2000.0, 6000.0)
        start = (perp[0] * rng.uniform(0.0, 500.0), perp[1] * rng.uniform(0.0, 500.0))
        it = Itinerary(start).move((perp[0] * far, perp[1] * far), rng.choice((WALK_MPS, DRIVE_MPS)))
        it.stay(span)
    else:  # boundary_exclusion: back and forth on an arc 35 m outside E
        r = e_r + 35.0
        base = math.atan2(-e_c[1], -e_c[0]) + rng.uniform(-1.0, 1.0)
        it = Itinerary((e_c[0] + r * math.cos(base), e_c[1] + r * math.sin(base)))
        step, k = 1, 0
        while it.t < span:  # 10 degrees a leg (a chord 0.7 m inside the arc), between -60 and +60
            if abs(k + step) > 6:
                step = -step
            k += step
            a = base + math.radians(10.0 * k)
            it.move((e_c[0] + r * math.cos(a), e_c[1] + r * math.sin(a)), WALK_MPS)
        max_acc = 12.0
    per_message = max(1, cfg.fixes_per_message)
    return _Device(behaviour, home, e_c, e_r, it, max_acc, rng.uniform(0.0, cfg.interval_s),
                   rng.randrange(per_message))


def _sent_fixes(cfg: BackgroundConfig, d: _Device) -> int:
    per_message = max(1, cfg.fixes_per_message)
    first = d.phase - d.held_at_start * cfg.interval_s
    taken = max(0, math.ceil((cfg.duration_s - first) / cfg.interval_s))  # fixes taken before the end
    return taken // per_message * per_message


def registry(cfg: BackgroundConfig, indices: range | None = None) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]],
                                                                                     dict[str, Any]]]:
    """(subject, zones, device) API bodies of each background device."""
    for i in indices if indices is not None else range(cfg.devices):
        d = _device(cfg, i)
        sid = cfg.subject_id(i)
        house = d.behaviour in ("homebody", "boundary_home")
        subject = {"id": sid, "full_name": f"Background person {i}",
                   "order_type": "house_arrest" if house else "probation"}
        zones = [{"id": f"{sid}-excl", "name": "school", "kind": "exclusion", "subject_id": sid,
                  "geometry": {"type": "Point", "coordinates": list(to_lonlat(d.home, d.e_centre))},
                  "radius_m": round(d.e_radius, 1)}]
        if house:
            zones.append({"id": f"{sid}-home", "name": "home", "kind": "inclusion", "subject_id": sid,
                          "geometry": {"type": "Polygon", "coordinates": [square(d.home, (0.0, 0.0), HOME_HALF_M)]},
                          "buffer_m": 5.0})
        yield subject, zones, {"id": cfg.device_id(i), "subject_id": sid}


def _fix(d: _Device, t: float, t_ms: int, seq: int, rng: random.Random) -> dict[str, Any]:
    t = max(t, 0.0)  # a fix held from before the run: where the run starts
    leg = d.itin.leg_at(t)
    truth = leg.at(t, rng)
    r = read(leg, truth, rng, max_acc=d.max_acc)
    if d.max_acc is not None and r.src != "gps":  # kept to good GPS fixes
        r = read(Leg(leg.t0, leg.t1, leg.a, leg.b, leg.wander_m, False), truth, rng, max_acc=d.max_acc)
    lon, lat = to_lonlat(d.home, r.pos)
    return encode_fix(t_ms=t_ms, lat=lat, lon=lon, acc=r.acc, spd=r.spd, src=r.src, seq=seq)


def messages(cfg: BackgroundConfig, share: int, shares: int, start_ms: int, *,
             wall_offset: Any = None, compression: float = 1.0) -> Iterator[Message]:
    """The messages of the devices ``i`` with ``i % shares == share``, in time order.

    ``Message.sim_s`` is in the scenario plan's time (wall seconds x ``compression``), so
    the two streams merge and pace alike in one publisher. A fix's device time is
    ``start_ms`` + ``wall_offset(t)`` (the ramp: the moment it is published)."""
    offset = wall_offset if wall_offset is not None else (lambda t: t)
    devices = {i: _device(cfg, i) for i in range(share, cfg.devices, shares)}
    rngs = {i: random.Random(cfg.seed * 7_919 + i) for i in devices}
    seqs = dict.fromkeys(devices, 0)
    held: dict[int, list[dict[str, Any]]] = {i: [] for i in devices}
    per_message = max(1, cfg.fixes_per_message)
    heap: list[tuple[float, int, int]] = []  # (wall s, index, 0 fix / 1 status)
    for i, d in devices.items():
        heap.append((d.phase - d.held_at_start * cfg.interval_s, i, 0))  # before 0: held from before the run
        heap.append((rngs[i].uniform(0.0, STATUS_EVERY_S), i, 1))
    heapq.heapify(heap)
    while heap:
        t, i, what = heapq.heappop(heap)
        if t >= cfg.duration_s:
            continue
        d, rng = devices[i], rngs[i]
        did = cfg.device_id(i)
        if what == 1:
            body = {"bat": round(90.0 - 5.0 * t / max(cfg.duration_s, 1.0), 1), "chg": False, "strap": "closed",
                    "case": "closed", "gsm": -70 - rng.randrange(30), "gps": True}
            yield Message(t * compression, did, status_topic(did), status=body)
            heapq.heappush(heap, (t + STATUS_EVERY_S, i, 1))
            continue
        seqs[i] += 1
        held[i].append(_fix(d, t, start_ms + int((offset(t) if t >= 0 else t) * 1000), seqs[i], rng))
        if len(held[i]) >= per_message:
            fixes = held[i]
            held[i] = []
            yield Message(t * compression, did, fixes_topic(did), encode_payload(fixes),
                          fix_times=tuple(f["t"] for f in fixes), n_fixes=len(fixes))
        heapq.heappush(heap, (t + cfg.interval_s, i, 0))


__all__ = ["BEHAVIOURS", "BackgroundConfig", "messages", "registry"]
