"""The rule engine on an in-memory registry snapshot: zones, dwell, crossings, victims,
late evidence. Pure: no database, no broker."""

from __future__ import annotations

import itertools

import pytest

from geofence import SubjectRules, WeeklyWindow
from telemetry.model import Fix
from telemetry.rules import Dwell
from telemetry.snapshot import DeviceInfo, RegistrySnapshot, VictimLink
from telemetry.transitions import CROSSING_MIN_GAP_S, MAX_PLAUSIBLE_SPEED_MPS, RuleEngine, Transition
from tests.telemetry.registry import absence, fix, snapshot, square, state_of

_ids = itertools.count(1)


def live(engine: RuleEngine, snap: RegistrySnapshot, fixes: list[Fix]) -> list[Transition]:
    """Plan a batch of fresh fixes, commit it (violation ids invented), return its transitions."""
    plan = engine.plan(snap, sorted(fixes, key=lambda f: (f.device_id, f.time_ms)))
    engine.apply(plan, {t.key: next(_ids) for t in plan.transitions if t.action == "open"})
    return plan.transitions


def actions(ts: list[Transition]) -> list[tuple[str, str]]:
    return [(t.action, t.rule) for t in ts]


# --- late evidence (issue 9, item 3) -------------------------------------------------------
EXCL = square("victim-home", "exclusion", 0, 0, 400)  # 200 m from centre to each side


def test_late_upload_proving_a_past_entry_reports_one_past_violation_and_changes_no_state() -> None:
    snap = snapshot([EXCL])
    engine = RuleEngine({})
    assert live(engine, snap, [fix(0, 600, 0)]) == []  # live fix at T, well outside
    before = state_of(engine)
    # buffered T-10 min .. T-1 min: outside, five 55-70 m inside the boundary (8 m accuracy), outside
    east = [400, 300, 145, 140, 135, 130, 142, 300, 400, 500]
    late = [fix(-600 + 60 * k, e, 0, acc=8.0) for k, e in enumerate(east)]
    past = engine.plan_late(snap, late)
    assert len(past) == 1
    (t,) = past
    assert (t.action, t.kind, t.rule, t.zone_id, t.late) == ("past", "exclusion_zone_entered", "victim-home",
                                                              "victim-home", True)
    assert t.ref.t_ms == late[2].time_ms  # the first fix inside opened it (default dwell: one fix)
    assert t.close_ref is not None and t.close_ref.t_ms == late[8].time_ms  # two compliant fixes close it
    assert t.distance_m == pytest.approx(55, abs=1)
    assert state_of(engine) == before
    # and the next live fix behaves as if the late upload never happened
    assert live(engine, snap, [fix(60, 600, 0)]) == []


def test_late_run_ending_inside_has_no_close_and_dwell_parameters_apply() -> None:
    snap = snapshot([EXCL], dwell={"victim-home": Dwell(open_fixes=3, open_s=100)})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 600, 0)])
    # three inside, but only 60 s apart in all: not enough for open_s=100
    assert engine.plan_late(snap, [fix(-300 + 30 * k, 100, 0) for k in range(3)]) == []
    late = [fix(-300 + 60 * k, 100, 0) for k in range(3)]
    (t,) = engine.plan_late(snap, late)
    assert (t.ref.t_ms, t.close_ref) == (late[2].time_ms, None)


def test_late_replay_ignores_non_gps_and_uncertain_fixes() -> None:
    snap = snapshot([EXCL])
    engine = RuleEngine({})
    late = [fix(-300, 100, 0, src="cell"), fix(-240, 100, 0, src="wifi"), fix(-180, 190, 0, acc=30.0)]
    assert engine.plan_late(snap, late) == []


def test_late_replay_starts_fresh_per_device_and_ignores_live_state() -> None:
    snap = snapshot([EXCL, ],
                    devices={"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor")})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 0, 0)])  # d1 violating now, live
    assert ("d1", "victim-home") in engine.open
    before = state_of(engine)
    late = [fix(-120, 0, 0), fix(-60, 0, 0), fix(-100, 0, 0, device="d2")]
    past = engine.plan_late(snap, sorted(late, key=lambda f: (f.device_id, f.time_ms)))
    assert sorted((t.device_id, t.ref.t_ms, t.close_ref) for t in past) == [
        ("d1", late[0].time_ms, None), ("d2", late[2].time_ms, None)]
    assert state_of(engine) == before


# --- victim proximity: closing speed (issue 9, item 3) -------------------------------------
VICTIM_DEVICES = {"d1": DeviceInfo("s1", "ankle_monitor"), "v1": DeviceInfo(None, "victim_phone")}
LINK = VictimLink("v1", "s1", 300.0)


def _approach(victim_age_s: float, *, one_batch: bool, victim_speed: float = 0.0) -> list[Transition]:
    """The person walks west toward the victim at 10 m/s from 2 km, a fix every 30 s; the
    victim's phone reports ``victim_age_s`` before each person fix (walking east at
    ``victim_speed``)."""
    snap = snapshot([], devices=VICTIM_DEVICES, links=[LINK])
    engine = RuleEngine({})
    events: list[Fix] = []
    for k in range(8):
        t_v = 30 * k - victim_age_s
        events.append(fix(t_v, victim_speed * (t_v + 30), 0, device="v1"))
        events.append(fix(30 * k, 2000 - 10 * 30 * k, 0))
    if one_batch:
        return live(engine, snap, events)
    return [t for f in events for t in live(engine, snap, [f])]


@pytest.mark.parametrize("one_batch", [False, True])
@pytest.mark.parametrize("victim_age_s", [3.0, 15.0])
def test_closing_speed_matches_the_true_approach_speed(victim_age_s: float, one_batch: bool) -> None:
    opened = [t for t in _approach(victim_age_s, one_batch=one_batch) if t.action == "open"]
    assert len(opened) == 1
    assert opened[0].kind == "victim_proximity"
    assert opened[0].details["closing_speed_mps"] == pytest.approx(10.0, abs=0.5)


def test_closing_speed_adds_the_victims_own_approach() -> None:
    opened = [t for t in _approach(3.0, one_batch=False, victim_speed=2.0) if t.action == "open"]
    assert len(opened) == 1
    assert opened[0].details["closing_speed_mps"] == pytest.approx(12.0, abs=0.5)


# --- zones and dwell (issue 17) ------------------------------------------------------------
HOME = square("home", "inclusion", 0, 0, 400)
DAY = 86_400
WED = 2 * DAY  # T0 is Wednesday 15:00 in Tashkent (UTC+5)
T0_LOCAL_S = WED + 15 * 3600


def _one_by_one(engine: RuleEngine, snap: RegistrySnapshot, fixes: list[Fix]) -> list[tuple[str, str, int]]:
    """(action, rule, seconds after T0) of each transition, one batch per fix."""
    out = []
    for f in fixes:
        out += [(t.action, t.rule, (t.ref.t_ms - fixes[0].time_ms) // 1000) for t in live(engine, snap, [f])]
    return out


def test_plan_changes_nothing_until_apply() -> None:
    snap = snapshot([HOME])
    engine = RuleEngine({})
    before = state_of(engine)
    plan = engine.plan(snap, [fix(0, 1000, 0)])
    assert actions(plan.transitions) == [("open", "home")]
    assert state_of(engine) == before
    engine.apply(plan, {("d1", "home"): 7})
    assert engine.open == {("d1", "home"): 7}
    assert ("d1" in engine.last) and engine.last["d1"].t_ms == plan.last["d1"].t_ms


def test_open_transition_carries_kind_ref_and_distance() -> None:
    snap = snapshot([HOME, square("school", "exclusion", 1000, 0, 200)])
    (left,) = live(RuleEngine({}), snap, [fix(0, 400, 0)])
    assert (left.action, left.kind, left.zone_id, left.subject_id, left.source) == (
        "open", "inclusion_zone_left", "home", "s1", "gps")
    assert left.distance_m == pytest.approx(200, abs=1)
    assert left.ref.t_ms == fix(0, 400, 0).time_ms
    (entered,) = live(RuleEngine({}), snapshot([square("school", "exclusion", 1000, 0, 200)]), [fix(0, 1000, 50)])
    assert (entered.kind, entered.zone_id) == ("exclusion_zone_entered", "school")
    assert entered.distance_m == pytest.approx(50, abs=1)


def test_a_violation_closes_by_its_dwell_seconds_not_only_its_fix_count() -> None:
    snap = snapshot([HOME], dwell={"home": Dwell(close_fixes=2, close_s=120)})
    fixes = [fix(0, 1000, 0)] + [fix(t, 0, 0) for t in (30, 60, 90, 150)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 0), ("close", "home", 150)]


def test_a_violation_opens_by_its_dwell_seconds_and_fixes() -> None:
    snap = snapshot([HOME], dwell={"home": Dwell(open_fixes=3, open_s=60)})
    fixes = [fix(t, 1000, 0) for t in (0, 20, 40, 60)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 60)]


def test_a_schedule_window_ending_closes_an_open_violation() -> None:
    window = (WeeklyWindow(T0_LOCAL_S - 3600, T0_LOCAL_S + 1800),)  # Wed 14:00-15:30 local
    snap = snapshot([square("home", "inclusion", 0, 0, 400, windows=window)])
    fixes = [fix(0, 1000, 0), fix(600, 1000, 0), fix(2400, 1000, 0), fix(3000, 1000, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 0), ("close", "home", 2400)]


def test_an_authorised_absence_starting_closes_an_open_violation() -> None:
    snap = snapshot([HOME], subjects=[SubjectRules("s1", exceptions=(absence(900, 7200, "home"),))])
    fixes = [fix(0, 1000, 0), fix(600, 1000, 0), fix(1200, 1000, 0), fix(1800, 1000, 0), fix(7300, 1000, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 0), ("close", "home", 1200),
                                                        ("open", "home", 7300)]


def test_the_term_ending_closes_an_open_violation() -> None:
    snap = snapshot([HOME], subjects=[SubjectRules("s1", term_end=fix(1000, 0, 0).time_ms // 1000)])
    fixes = [fix(0, 1000, 0), fix(1200, 1000, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 0), ("close", "home", 1200)]


@pytest.mark.parametrize("src", ["cell", "wifi"])
def test_cell_and_wifi_fixes_never_open_nor_close_a_violation(src: str) -> None:
    glob = square("border", "exclusion", 5000, 0, 400, subject=None)
    snap = snapshot([HOME, glob])
    engine = RuleEngine({})
    assert _one_by_one(engine, snap, [fix(t, 1000, 0, src=src) for t in (0, 60, 120)]) == []
    assert _one_by_one(engine, snap, [fix(0, 5000, 0)]) == [("open", "home", 0), ("open", "border", 0)]
    # compliant cell/wifi fixes: at home (both zones listed) and far away (the global one not listed)
    far = [fix(60 * k, 0, 0, src=src) for k in range(1, 4)] + [fix(60 * k, -30_000, 0, src=src) for k in range(4, 7)]
    assert _one_by_one(engine, snap, far) == []
    assert set(engine.open) == {("d1", "home"), ("d1", "border")}
    # GPS closes both: the global zone by not being listed, far away
    closes = _one_by_one(engine, snap, [fix(600, -30_000, 0), fix(660, -30_000, 0), fix(720, 0, 0), fix(780, 0, 0)])
    assert closes == [("close", "border", 60), ("close", "home", 180)]


def test_uncertain_fixes_neither_count_nor_reset() -> None:
    snap = snapshot([HOME], dwell={"home": Dwell(open_fixes=2)})
    # outside, then uncertain (the 60 m accuracy circle straddles the boundary), then outside
    fixes = [fix(0, 1000, 0), fix(60, 210, 0, acc=60.0), fix(120, 1000, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 120)]


def test_a_device_with_only_a_pending_dwell_is_still_watched() -> None:
    snap = snapshot([HOME], dwell={"home": Dwell(open_fixes=3)})
    engine = RuleEngine({})
    # two violating fixes pending, a compliant one resets the count, then two violating: no open
    fixes = [fix(0, 1000, 0), fix(60, 1000, 0), fix(120, 0, 0), fix(180, 1000, 0), fix(240, 1000, 0)]
    assert _one_by_one(engine, snap, fixes) == []
    assert engine.pending[("d1", "home")].count == 2
    assert _one_by_one(engine, snap, [fix(300, 1000, 0)]) == [("open", "home", 0)]


def test_a_pending_close_is_reset_by_a_violating_fix() -> None:
    snap = snapshot([HOME], dwell={"home": Dwell(close_fixes=2)})
    fixes = [fix(0, 1000, 0), fix(60, 0, 0), fix(120, 1000, 0), fix(180, 0, 0), fix(240, 0, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == [("open", "home", 0), ("close", "home", 240)]


def test_devices_of_other_kinds_or_without_zones_are_not_evaluated() -> None:
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "p1": DeviceInfo("s1", "victim_phone"),
               "d9": DeviceInfo(None, "ankle_monitor")}
    snap = snapshot([HOME], devices=devices)
    assert live(RuleEngine({}), snap, [fix(0, 1000, 0, device="p1"), fix(0, 1000, 0, device="d9")]) == []
    assert live(RuleEngine({}), snapshot([], devices=devices), [fix(0, 1000, 0)]) == []


# --- crossings -----------------------------------------------------------------------------
SCHOOL = square("school", "exclusion", 0, 0, 200)  # the path from x=-1000 to x=+1000 crosses it


def test_a_path_through_an_exclusion_zone_between_sparse_fixes_is_a_crossing() -> None:
    snap = snapshot([SCHOOL])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    (t,) = live(engine, snap, [fix(60, 1000, 0)])
    assert (t.action, t.kind, t.zone_id, t.rule) == ("crossed", "exclusion_zone_crossed", "school", "school")
    assert t.details["from_time_ms"] == fix(0, 0, 0).time_ms
    assert (t.details["from_lon"], t.details["from_lat"]) == (fix(0, -1000, 0).lon, fix(0, -1000, 0).lat)
    assert engine.open == {}  # opened and closed at once: nothing stays open


def test_crossing_within_one_batch() -> None:
    snap = snapshot([SCHOOL])
    ts = live(RuleEngine({}), snap, [fix(0, -1000, 0), fix(60, 1000, 0)])
    assert actions(ts) == [("crossed", "school")]


def test_crossing_needs_the_minimum_gap() -> None:
    snap = snapshot([SCHOOL])
    # 300 m in a gap just below the minimum (30 m/s, a plausible speed): no crossing
    engine = RuleEngine({})
    gap = CROSSING_MIN_GAP_S
    live(engine, snap, [fix(0, -150, 0)])
    assert live(engine, snap, [fix(gap - 0.5, 150, 0)]) == []
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -150, 0)])
    assert actions(live(engine, snap, [fix(gap, 150, 0)])) == [("crossed", "school")]


def test_crossing_needs_a_plausible_speed() -> None:
    snap = snapshot([SCHOOL])
    # 2000 m in 25 s (80 m/s) is no path a person took; in 30 s (66.7 m/s) it is
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    assert live(engine, snap, [fix(2000 / (MAX_PLAUSIBLE_SPEED_MPS + 10), 1000, 0)]) == []
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    assert actions(live(engine, snap, [fix(2000 / (MAX_PLAUSIBLE_SPEED_MPS - 3), 1000, 0)])) == [("crossed", "school")]


def test_only_gps_fixes_make_a_crossing_and_only_exclusion_zones_count() -> None:
    snap = snapshot([SCHOOL, square("park", "inclusion", 0, 500, 4000)])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    assert live(engine, snap, [fix(60, 1000, 0, src="cell")]) == []
    snap = snapshot([square("park", "inclusion", 0, 0, 200), square("big", "inclusion", 0, 0, 4000)])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    assert [t.action for t in live(engine, snap, [fix(60, 1000, 0)])] == []


def test_a_global_exclusion_zone_crossed_counts_for_its_category_only() -> None:
    zone = square("school", "exclusion", 0, 0, 200, subject=None, category="minors")
    for category, expected in (("minors", [("crossed", "school")]), ("adults", [])):
        snap = snapshot([zone], subjects=[SubjectRules("s1", category=category)])
        engine = RuleEngine({})
        live(engine, snap, [fix(0, -1000, 0)])
        assert actions(live(engine, snap, [fix(60, 1000, 0)])) == expected


def test_a_zone_seen_from_inside_is_the_dwells_business_not_a_crossing() -> None:
    """Two fixes inside with a dwell of three, then one outside: no crossing (the zone was
    seen from inside; the configured dwell decided it was not a violation)."""
    snap = snapshot([SCHOOL], dwell={"school": Dwell(open_fixes=3)})
    fixes = [fix(0, 0, 0), fix(60, 10, 0), fix(120, 1000, 0)]
    assert _one_by_one(RuleEngine({}), snap, fixes) == []
    assert live(RuleEngine({}), snap, fixes) == []
    # and with an open violation closed by that fix (close dwell of one): a close, no crossing
    snap = snapshot([SCHOOL], dwell={"school": Dwell(close_fixes=1)})
    assert _one_by_one(RuleEngine({}), snap, [fix(0, 0, 0), fix(60, 1000, 0)]) == [
        ("open", "school", 0), ("close", "school", 60)]


def test_a_crossing_is_not_raised_while_the_zone_is_open() -> None:
    snap = snapshot([SCHOOL], dwell={"school": Dwell(close_fixes=3)})
    engine = RuleEngine({})
    assert _one_by_one(engine, snap, [fix(0, 0, 0), fix(60, 1000, 0), fix(120, -1000, 0)]) == [("open", "school", 0)]


def test_a_global_inclusion_zone_left_far_behind_opens_and_stays_open() -> None:
    """A region every subject of a category must stay in: a fix far outside it is the
    violation (an index that lists global zones only near a fix would miss it, and read
    "not listed" as outside = compliant, which holds for exclusion zones only)."""
    region = square("region", "inclusion", 0, 0, 2000, subject=None, category="curfew")
    for category, expected in (("curfew", [("open", "region")]), ("other", [])):
        snap = snapshot([region], subjects=[SubjectRules("s1", category=category)])
        engine = RuleEngine({})
        assert live(engine, snap, [fix(0, 0, 0)]) == []
        assert actions(live(engine, snap, [fix(60, 50_000, 0)])) == expected
        # farther still: the violation stays open (it closed here before the fix)
        assert live(engine, snap, [fix(120, 200_000, 0)]) == []
        # back inside: the default dwell closes it on the second compliant fix
        assert actions(live(engine, snap, [fix(180, 0, 0), fix(240, 0, 0)])) == [("close", "region")] * len(expected)
