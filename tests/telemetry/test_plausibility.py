"""Plausibility flags: each flag at its threshold, and what suppresses the speed check."""

from __future__ import annotations

import pytest

from telemetry.model import Fix, Position
from telemetry.plausibility import MAX_ACCURACY_M, MAX_FUTURE_S, MAX_SPEED_MPS, flags
from tests.telemetry.registry import T0, fix, lonlat

NOW = T0


def _at(t_s: float, east_m: float, north_m: float = 0.0, acc: float = 5.0) -> Fix:
    return fix(t_s, east_m, north_m, acc=acc)


def _pos(f: Fix) -> Position:
    return Position(f.time_ms, f.lon, f.lat, f.accuracy_m)


def test_a_plain_fix_has_no_flags() -> None:
    assert flags(_at(0, 0), None, NOW) == []
    assert flags(_at(60, 100), _pos(_at(0, 0)), NOW + 60_000) == []


def test_a_device_clock_a_little_fast_is_tolerated() -> None:
    """A clock a few seconds (up to MAX_FUTURE_S) ahead of the server must not flag real fixes."""
    assert flags(_at(5, 0), None, NOW) == []
    assert flags(_at(MAX_FUTURE_S, 0), None, NOW) == []
    assert flags(_at(MAX_FUTURE_S + 0.001, 0), None, NOW) == ["future_time"]


def test_accuracy_threshold() -> None:
    assert flags(_at(0, 0, acc=MAX_ACCURACY_M), None, NOW) == []
    assert flags(_at(0, 0, acc=MAX_ACCURACY_M + 0.1), None, NOW) == ["poor_accuracy"]


@pytest.mark.parametrize(("lon", "lat", "flagged"), [(0.0, 0.0, True), (0.009, -0.009, True), (-0.009, 0.009, True),
                                                     (0.011, 0.0, False), (0.0, 0.011, False), (0.0, -0.011, False),
                                                     (-0.011, 0.0, False), (0.01, 0.0, False), (0.0, 0.01, False),
                                                     (-0.01, 0.0, False), (0.0, -0.01, False)])
def test_zero_island(lon: float, lat: float, flagged: bool) -> None:
    f = Fix("d1", NOW, lat, lon, 5.0)
    assert ("zero_island" in flags(f, None, NOW)) is flagged


@pytest.mark.parametrize("direction", [(1, 0), (0, 1), (-1, 0), (0, -1), (0.6, 0.8)])
def test_teleport_threshold_in_every_direction(direction: tuple[float, float]) -> None:
    prev = _pos(_at(0, 0))
    dx, dy = direction
    below = MAX_SPEED_MPS * 0.99 * 100  # metres in 100 s
    above = MAX_SPEED_MPS * 1.01 * 100
    assert flags(_at(100, dx * below, dy * below), prev, NOW + 100_000) == []
    assert flags(_at(100, dx * above, dy * above), prev, NOW + 100_000) == ["teleport"]


def test_teleport_uses_the_local_scale_of_longitude() -> None:
    """One degree of longitude is shorter than one of latitude away from the equator: a
    cos(lat) error would flag (or pass) an east-west move wrongly."""
    prev = _pos(_at(0, 0))
    lon, lat = lonlat(MAX_SPEED_MPS * 0.98 * 10, 0)
    assert flags(Fix("d1", NOW + 10_000, lat, lon, 5.0), prev, NOW + 10_000) == []
    lon, lat = lonlat(MAX_SPEED_MPS * 1.02 * 10, 0)
    assert flags(Fix("d1", NOW + 10_000, lat, lon, 5.0), prev, NOW + 10_000) == ["teleport"]


def test_no_speed_check_without_a_forward_time_step_or_with_other_flags() -> None:
    prev = _pos(_at(0, 0))
    far = 100_000.0
    assert flags(_at(0, far), prev, NOW) == []  # same time: no speed to judge
    assert flags(_at(-10, far), prev, NOW) == []  # older than the reference
    assert flags(_at(10, far, acc=600.0), prev, NOW) == ["poor_accuracy"]  # one reason is enough
    assert flags(_at(10, far), None, NOW) == []
    assert flags(_at(10, far), prev, NOW) == ["teleport"]


def test_several_flags_at_once_in_a_fixed_order() -> None:
    f = Fix("d1", NOW + (MAX_FUTURE_S + 10) * 1000, 0.0, 0.0, MAX_ACCURACY_M * 2)
    assert flags(f, _pos(_at(0, 0)), NOW) == ["zero_island", "future_time", "poor_accuracy"]


def test_teleport_threshold_is_tight() -> None:
    """Just under the limit (by 0.05%) passes, just over is flagged: north-south, where the
    flat-earth distance of the check is exact."""
    prev = _pos(_at(0, 0))
    assert flags(_at(100, 0, MAX_SPEED_MPS * 100 * 0.9995), prev, NOW + 100_000) == []
    assert flags(_at(100, 0, MAX_SPEED_MPS * 100 * 1.0005), prev, NOW + 100_000) == ["teleport"]
