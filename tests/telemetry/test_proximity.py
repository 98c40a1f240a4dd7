"""Bilateral monitoring: the distance and the certain-inside / certain-outside signal."""

from __future__ import annotations

import math

import pytest
from pyproj import Geod

from telemetry.model import Position
from telemetry.proximity import MAX_VICTIM_FIX_AGE_S, distance_m, proximity_signal
from telemetry.rules import COMPLIANT, NEUTRAL, VIOLATING
from tests.telemetry.registry import T0, lonlat

_GEOD = Geod(ellps="WGS84")


def geodesic(a: Position, b: Position) -> float:
    return float(_GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2])


def at(east_m: float, north_m: float, acc: float = 5.0, t_s: float = 0.0) -> Position:
    lon, lat = lonlat(east_m, north_m)
    return Position(T0 + round(t_s * 1000), lon, lat, acc)


@pytest.mark.parametrize(("east", "north"), [(1000, 0), (0, 1000), (-600, 800), (3, 4)])
def test_distance_is_ground_metres_in_any_direction(east: float, north: float) -> None:
    want = geodesic(at(0, 0), at(east, north))
    assert want == pytest.approx(math.hypot(east, north), rel=5e-3)
    assert distance_m(at(0, 0), at(east, north)) == pytest.approx(want, rel=1e-4)
    assert distance_m(at(east, north), at(0, 0)) == pytest.approx(want, rel=1e-4)
    assert distance_m(at(east, north), at(east, north)) == 0.0


def test_distance_is_corrected_by_the_scale_factor_far_from_the_standard_parallels() -> None:
    """1 km north-south at 37 N and at 45 N: the projection's scale differs there; the
    ground distance must not."""
    for lat in (37.2, 45.5):
        a = Position(T0, 64.0, lat, 5.0)
        b = Position(T0, 64.0, lat + 1000 / 111_195, 5.0)
        assert distance_m(a, b) == pytest.approx(geodesic(a, b), rel=1e-4)


def test_signal_is_certain_only_beyond_both_accuracy_radii() -> None:
    victim = at(0, 0, acc=10)
    radius = 300.0

    def north(d: float, acc: float = 10) -> Position:  # north-south: the helper's metres are exact enough
        return at(0, d, acc=acc)

    assert proximity_signal(north(279), victim, radius) == (VIOLATING, pytest.approx(279, abs=0.5))
    assert proximity_signal(north(281), victim, radius)[0] == NEUTRAL
    assert proximity_signal(north(319), victim, radius)[0] == NEUTRAL
    assert proximity_signal(north(321), victim, radius) == (COMPLIANT, pytest.approx(321, abs=0.5))
    # the victim's accuracy counts too, not only the person's
    assert proximity_signal(north(281, acc=1), at(0, 0, acc=1), radius)[0] == VIOLATING
    assert proximity_signal(north(281, acc=1), at(0, 0, acc=19), radius)[0] == NEUTRAL
    assert proximity_signal(north(319, acc=1), at(0, 0, acc=1), radius)[0] == COMPLIANT
    assert proximity_signal(north(319, acc=1), at(0, 0, acc=19), radius)[0] == NEUTRAL


def test_a_victim_fix_too_old_or_too_new_says_nothing() -> None:
    person = at(10, 0, t_s=0)
    age = MAX_VICTIM_FIX_AGE_S
    signal, d = proximity_signal(person, at(0, 0, t_s=-age), 300)
    assert (signal, d) == (VIOLATING, pytest.approx(10, rel=1e-2))
    signal, d = proximity_signal(person, at(0, 0, t_s=-age - 0.001), 300)
    assert signal == NEUTRAL and math.isnan(d)
    signal, d = proximity_signal(person, at(0, 0, t_s=age + 0.001), 300)
    assert signal == NEUTRAL and math.isnan(d)
    assert proximity_signal(person, at(0, 0, t_s=age), 300)[0] == VIOLATING
