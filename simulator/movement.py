"""Where a simulated person really is, and what its receiver says.

A device's true track is an ``Itinerary``: a list of legs in simulated seconds, each
either a stay (with a small wander) or a straight move between two points at walking or
driving speed. Positions are kept in local metres (east, north) around a device's
origin and turned into WGS84 only when a fix is written.

A fix's reported position is the true one plus noise drawn from the fix's stated
accuracy: a 2D Gaussian of sigma = accuracy / 2, cut off at 0.95 x accuracy, so the
stated accuracy circle always contains the truth (the honest-receiver assumption the
engine's uncertainty rule relies on). Sources and accuracies come from the situation:
indoors at home (poor GPS, wifi, some cell), outdoors (good GPS, a few urban-canyon
fixes), moving (GPS).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

M_PER_DEG_LAT = 111_320.0
WALK_MPS = 1.4
DRIVE_MPS = 12.0

Point = tuple[float, float]  # local metres (east, north)


def to_lonlat(origin: tuple[float, float], p: Point) -> tuple[float, float]:
    """Local metres around ``origin`` (lon, lat) to WGS84 (lon, lat)."""
    lon0, lat0 = origin
    return (lon0 + p[0] / (M_PER_DEG_LAT * math.cos(math.radians(lat0))), lat0 + p[1] / M_PER_DEG_LAT)


def square(origin: tuple[float, float], centre: Point, half_m: float) -> list[list[float]]:
    """A closed GeoJSON ring: an axis-aligned square of half side ``half_m`` around ``centre``."""
    cx, cy = centre
    corners = [(-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m), (-half_m, -half_m)]
    return [list(to_lonlat(origin, (cx + e, cy + n))) for e, n in corners]


def dist(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


@dataclass(frozen=True, slots=True)
class Leg:
    """From ``t0`` to ``t1`` (simulated seconds): a move from ``a`` to ``b``, or a stay at
    ``a`` (``b is None``) wandering up to ``wander_m`` around it."""

    t0: float
    t1: float
    a: Point
    b: Point | None = None
    wander_m: float = 0.0
    indoors: bool = False

    def at(self, t: float, rng: random.Random) -> Point:
        if self.b is None:
            if self.wander_m <= 0:
                return self.a
            r = self.wander_m * math.sqrt(rng.random())
            th = rng.uniform(0.0, 2 * math.pi)
            return (self.a[0] + r * math.cos(th), self.a[1] + r * math.sin(th))
        f = 0.0 if self.t1 <= self.t0 else min(1.0, max(0.0, (t - self.t0) / (self.t1 - self.t0)))
        return (self.a[0] + f * (self.b[0] - self.a[0]), self.a[1] + f * (self.b[1] - self.a[1]))

    @property
    def speed(self) -> float:
        if self.b is None or self.t1 <= self.t0:
            return 0.0
        return dist(self.a, self.b) / (self.t1 - self.t0)


@dataclass
class Itinerary:
    """A true track built leg by leg; ``at(t)`` is where the person is at time ``t``."""

    start: Point
    t: float = 0.0
    legs: list[Leg] = field(default_factory=list)

    @property
    def here(self) -> Point:
        if not self.legs:
            return self.start
        last = self.legs[-1]
        return last.a if last.b is None else last.b

    def stay(self, until: float, *, wander_m: float = 0.0, indoors: bool = False) -> Itinerary:
        if until > self.t:
            self.legs.append(Leg(self.t, until, self.here, None, wander_m, indoors))
            self.t = until
        return self

    def move(self, to: Point, speed_mps: float) -> Itinerary:
        d = dist(self.here, to)
        t1 = self.t + max(1.0, d / speed_mps)
        self.legs.append(Leg(self.t, t1, self.here, to))
        self.t = t1
        return self

    def leg_at(self, t: float) -> Leg:
        for leg in self.legs:
            if leg.t0 <= t < leg.t1:
                return leg
        return self.legs[-1] if self.legs else Leg(0.0, math.inf, self.start, None)

    def at(self, t: float, rng: random.Random) -> Point:
        return self.leg_at(t).at(t, rng)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the receiver reports: source, stated accuracy and the noisy position."""

    src: str
    acc: float
    pos: Point
    spd: float | None


def noisy(p: Point, acc: float, rng: random.Random) -> Point:
    """``p`` plus Gaussian noise (sigma acc/2), never farther than 0.95 x acc."""
    sigma = acc / 2.0
    e, n = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
    r = math.hypot(e, n)
    cap = 0.95 * acc
    if r > cap:
        e, n = e * cap / r, n * cap / r
    return (p[0] + e, p[1] + n)


def read(leg: Leg, truth: Point, rng: random.Random, *, gps: bool = True, max_acc: float | None = None) -> Reading:
    """A plausible receiver reading of ``truth`` on ``leg``. ``gps`` False: the GPS has no
    fix (wifi or cell only). ``max_acc`` caps GPS accuracy (a device kept to good fixes)."""
    u = rng.random()
    if not gps:
        src, acc = ("wifi", rng.uniform(25.0, 70.0)) if u < 0.5 else ("cell", rng.uniform(250.0, 1500.0))
    elif leg.b is not None:  # moving outdoors
        src, acc = "gps", rng.uniform(3.0, 12.0)
    elif leg.indoors:
        if u < 0.12:
            src, acc = "wifi", rng.uniform(20.0, 60.0)
        elif u < 0.17:
            src, acc = "cell", rng.uniform(300.0, 1200.0)
        else:
            src, acc = "gps", rng.uniform(12.0, 40.0)
    else:
        src, acc = ("gps", rng.uniform(30.0, 80.0)) if u < 0.08 else ("gps", rng.uniform(3.0, 15.0))  # urban canyon
    if max_acc is not None and src == "gps":
        acc = min(acc, max_acc)
    return Reading(src, acc, noisy(truth, acc, rng), leg.speed if src == "gps" else None)


__all__ = [
    "DRIVE_MPS",
    "M_PER_DEG_LAT",
    "WALK_MPS",
    "Itinerary",
    "Leg",
    "Point",
    "Reading",
    "dist",
    "noisy",
    "read",
    "square",
    "to_lonlat",
]
