"""Weekly schedule windows in local time: overnight windows, the Sunday -> Monday wrap, a
time zone with daylight saving. The evaluator (``parse_schedule`` + ``compile_zones`` +
``evaluate``) against a slow, obvious reference that reads the local wall clock with
zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geofence import SubjectRules, ZoneSpec, ZoneState, compile_zones, evaluate, parse_schedule

CENTRE = (69.2401, 41.2995)
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _active(items: list[dict[str, Any]], timezone: str, when: list[datetime]) -> list[bool]:
    """Whether a fix at the zone's centre at each instant finds the zone in force."""
    zone = ZoneSpec("home", "inclusion", {"type": "Point", "coordinates": list(CENTRE)}, radius_m=500.0,
                    subject_id="s", windows=parse_schedule("home", items))
    zs = compile_zones([zone], [SubjectRules("s", timezone=timezone)])
    n = len(when)
    ev = evaluate(zs, np.full(n, CENTRE[0]), np.full(n, CENTRE[1]), np.full(n, 5.0), np.zeros(n, np.int32),
                  np.array([int(w.timestamp()) for w in when], np.int64))
    states = ev.pair_state[ev.fix_start]
    assert set(states.tolist()) <= {ZoneState.INSIDE, ZoneState.INACTIVE}
    return [s == ZoneState.INSIDE for s in states.tolist()]


def reference(items: list[dict[str, Any]], timezone: str, when: datetime) -> bool:
    """Read the wall clock where the subject lives; a window whose end is not after its
    start runs from its start on the listed day to its end on the next day."""
    local = when.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute + local.second / 60
    yesterday = DAYS[(local.weekday() - 1) % 7]
    today = DAYS[local.weekday()]
    for item in items:
        days = item.get("days", DAYS)
        start = _minutes(item["start"])
        end = _minutes(item["end"])
        if end > start:
            if today in days and start <= minute < end:
                return True
        else:  # overnight: today's evening part, or yesterday's window running into this morning
            if today in days and minute >= start:
                return True
            if yesterday in days and minute < end:
                return True
    return False


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _local(timezone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(timezone))  # type: ignore[misc]


def test_an_overnight_window_runs_past_midnight_into_the_next_day() -> None:
    tz = "Asia/Tashkent"
    items = [{"days": ["wed"], "start": "22:00", "end": "06:00"}]
    when = [_local(tz, 2025, 11, 26, 21, 59), _local(tz, 2025, 11, 26, 22, 0), _local(tz, 2025, 11, 27, 0, 0),
            _local(tz, 2025, 11, 27, 5, 59), _local(tz, 2025, 11, 27, 6, 0), _local(tz, 2025, 11, 26, 3, 0),
            _local(tz, 2025, 11, 27, 22, 30)]
    assert _active(items, tz, when) == [False, True, True, True, False, False, False]


def test_a_sunday_night_window_wraps_into_monday_morning() -> None:
    tz = "Asia/Tashkent"
    items = [{"days": ["sun"], "start": "22:00", "end": "06:00"}]
    sunday, monday = (2025, 11, 30), (2025, 12, 1)
    when = [_local(tz, *sunday, 21, 0), _local(tz, *sunday, 23, 0), _local(tz, *monday, 1, 0),
            _local(tz, *monday, 5, 59), _local(tz, *monday, 6, 0), _local(tz, *monday, 23, 0),
            _local(tz, *sunday, 3, 0), _local(tz, 2025, 12, 2, 3, 0)]  # Sunday and Tuesday mornings: not in it
    assert _active(items, tz, when) == [False, True, True, True, False, False, False, False]


def test_an_all_day_monday_window_and_the_end_of_the_week() -> None:
    tz = "Asia/Tashkent"
    items = [{"days": ["mon"], "start": "00:00", "end": "24:00"}]
    when = [_local(tz, 2025, 11, 30, 23, 59, 59), _local(tz, 2025, 12, 1, 0, 0), _local(tz, 2025, 12, 1, 23, 59, 59),
            _local(tz, 2025, 12, 2, 0, 0)]
    assert _active(items, tz, when) == [False, True, True, False]


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York"])
def test_windows_follow_the_wall_clock_across_daylight_saving_changes(tz: str) -> None:
    """A curfew 22:00-06:00 every night: in force at 23:00 and 05:00 local on both sides of
    each change, off at 12:00 and 21:00, whatever the UTC offset is that day."""
    items = [{"start": "22:00", "end": "06:00"}]
    days = [(2026, 3, 7), (2026, 3, 8), (2026, 3, 28), (2026, 3, 29), (2026, 3, 30), (2026, 10, 24), (2026, 10, 25),
            (2026, 10, 31), (2026, 11, 1), (2026, 11, 2)]
    when, want = [], []
    for d in days:
        for hour, expected in ((5, True), (6, False), (12, False), (21, False), (22, True), (23, True)):
            when.append(_local(tz, *d, hour, 30 if hour in (5, 21) else 0))
            want.append(expected)
    assert _active(items, tz, when) == want
    # and the same instants judged by a fixed-offset zone would differ: the test can tell
    offsets = {w.utcoffset() for w in when}
    assert len(offsets) == 2


def test_a_window_in_the_hour_skipped_by_daylight_saving_is_never_in_force_that_night() -> None:
    tz = "Europe/Berlin"
    items = [{"days": ["sun"], "start": "02:00", "end": "03:00"}]
    spring = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET; one hour later it is 03:30 CEST
    when = [spring + timedelta(minutes=15 * k) for k in range(8)]
    assert _active(items, tz, when) == [reference(items, tz, w) for w in when] == [False] * 8
    normal = [_local(tz, 2026, 4, 5, 2, 30)]
    assert _active(items, tz, normal) == [True]


WINDOWS = st.lists(st.builds(
    lambda days, start, end: {"days": days, "start": start, "end": end},
    st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True),
    st.sampled_from(["00:00", "05:30", "06:00", "09:15", "18:00", "22:00", "23:59"]),
    st.sampled_from(["00:00", "01:00", "06:00", "09:15", "17:45", "22:00", "24:00"]),
), min_size=1, max_size=3)


@settings(max_examples=80, deadline=None)
@given(WINDOWS, st.sampled_from(["Asia/Tashkent", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]),
       st.lists(st.integers(int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()),
                            int(datetime(2028, 1, 1, tzinfo=UTC).timestamp())), min_size=1, max_size=40))
def test_schedules_match_the_wall_clock_reference(items: list[dict[str, Any]], tz: str, instants: list[int]) -> None:
    when = [datetime.fromtimestamp(t, UTC) for t in instants]
    assert _active(items, tz, when) == [reference(items, tz, w) for w in when]
