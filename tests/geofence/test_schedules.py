"""Schedules in local time are right in any year: on both sides of the time-zone table's
old edges (2000, 2045) and its new ones (1800, 2500), against zoneinfo."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import numpy as np
import pytest

from geofence import SubjectRules, WeeklyWindow, ZoneSpec, compile_zones, evaluate
from geofence import _kernels as K
from tests.geofence import reference

# active in the first half of every local hour: any offset error of 30 min or more flips
# the answer for every instant, one of 15 or 45 min for a quarter or half of them
HALF_HOURS = tuple(WeeklyWindow(h * 3600, h * 3600 + 1800) for h in range(7 * 24))
ZONES = ("America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe", "Pacific/Chatham", "Europe/Dublin",
         "Africa/Casablanca", "Asia/Tashkent", "Asia/Kathmandu", "America/St_Johns", "Europe/Moscow")
YEARS = (2, 1700, 1799, 1800, 1850, 1920, 1970, 1991, 1999, 2000, 2001, 2020, 2044, 2045, 2046, 2050, 2087, 2100,
         2399, 2400, 2499, 2500, 2501, 2900, 3000, 5000, 9998)


def _instants(rng: np.random.Generator) -> np.ndarray:
    """Random instants in each listed year, and every half hour of its first three days."""
    out = []
    for year in YEARS:
        a = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        b = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
        out.append(rng.integers(a, b, 300))
        out.append(np.arange(a, a + 3 * 86400, 1799))  # New Year across every zone's midnight
    return np.concatenate(out).astype(np.int64)


@pytest.mark.parametrize("tz", ZONES)
def test_weekly_windows_follow_zoneinfo_in_any_year(tz: str) -> None:
    rng = np.random.default_rng(ZONES.index(tz))
    zone = ZoneSpec("home", "inclusion", {"type": "Point", "coordinates": [69.24, 41.3]}, radius_m=100.0,
                    subject_id="s", windows=HALF_HOURS, timezone=tz)
    rules = SubjectRules("s")
    zs = compile_zones([zone], [rules])
    t = _instants(rng)
    n = t.shape[0]
    ev = evaluate(zs, np.full(n, 69.24), np.full(n, 41.3), np.full(n, 5.0), np.zeros(n, np.int32), t)
    got = ev.pair_state != reference.INACTIVE
    want = np.array([reference.active(zone, rules, int(v)) for v in t])
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (tz, [datetime.fromtimestamp(int(v), UTC).isoformat() for v in t[bad[:5]]])
    assert 0.3 < want.mean() < 0.7


def test_no_time_zone_changes_before_the_table_starts() -> None:
    """What the table's first entry stands for (every instant before 1800): each zone of
    the tz database has the same offset in year 1 as on 1800-01-01."""
    early = datetime(1, 1, 2, tzinfo=UTC)
    start = datetime(1800, 1, 1, tzinfo=UTC)
    changed = [name for name in sorted(zoneinfo.available_timezones())
               if early.astimezone(zoneinfo.ZoneInfo(name)).utcoffset()
               != start.astimezone(zoneinfo.ZoneInfo(name)).utcoffset()]
    assert changed == []
    assert datetime.fromtimestamp(K.TZ_TABLE_END_S, UTC) == datetime(2500, 1, 1, tzinfo=UTC)
    assert K.TZ_PERIOD_S % (7 * 86400) == 0
