"""Bilateral monitoring: a supervised person's fix against a victim's latest fix.

The victim defines an exclusion circle of ``radius_m`` around its own position. Both
positions are uncertain, so the person is certainly inside when the distance plus both
accuracy radii is below the radius, certainly outside when the distance minus both is
above it, and otherwise neither (which changes nothing).
"""

from __future__ import annotations

import math

from geofence import ground_distance_m
from telemetry.model import Position
from telemetry.rules import COMPLIANT, NEUTRAL, VIOLATING

MAX_VICTIM_FIX_AGE_S = 600  # an older victim position says nothing about now


def distance_m(a: Position, b: Position) -> float:
    """Geodesic ground distance in metres (WGS84)."""
    return ground_distance_m(a.lon, a.lat, b.lon, b.lat)


def proximity_signal(person: Position, victim: Position, radius_m: float) -> tuple[int, float]:
    """(signal for the dwell machine, distance in metres)."""
    if abs(person.t_ms - victim.t_ms) > MAX_VICTIM_FIX_AGE_S * 1000:
        return NEUTRAL, math.nan
    d = distance_m(person, victim)
    margin = person.accuracy_m + victim.accuracy_m
    if d + margin < radius_m:
        return VIOLATING, d
    if d - margin > radius_m:
        return COMPLIANT, d
    return NEUTRAL, d


__all__ = ["MAX_VICTIM_FIX_AGE_S", "Position", "distance_m", "proximity_signal"]
