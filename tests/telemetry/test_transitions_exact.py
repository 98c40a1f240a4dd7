"""The rule engine's transitions, field by field, and the corners of its bookkeeping
(several zones, several devices, global zones, victim pairs). Pure, on in-memory
snapshots; written to kill the mutants test_transitions.py let live (docs/mutation.md)."""

from __future__ import annotations

import pytest

from geofence import SubjectRules, WeeklyWindow
from telemetry.model import Fix, Position
from telemetry.rules import Dwell
from telemetry.snapshot import DeviceInfo, VictimLink
from telemetry.transitions import RuleEngine, Transition
from tests.telemetry.registry import fix, snapshot, square, state_of
from tests.telemetry.test_transitions import T0_LOCAL_S, live


def pos(f: Fix) -> Position:
    return Position(f.time_ms, f.lon, f.lat, f.accuracy_m)


def test_zone_open_and_close_transitions_field_by_field() -> None:
    snap = snapshot([square("home", "inclusion", 0, 0, 400)])
    engine = RuleEngine({})
    out, back, home = fix(0, 1000, 0), fix(60, 0, 0), fix(120, 10, 0)
    assert live(engine, snap, [out]) == [Transition("d1", "s1", "home", "open", pos(out), "gps", zone_id="home",
                                                    kind="inclusion_zone_left", distance_m=pytest.approx(800, rel=5e-3))]
    assert live(engine, snap, [back]) == []
    assert live(engine, snap, [home]) == [Transition("d1", "s1", "home", "close", pos(home), "gps", zone_id="home",
                                                     kind="inclusion_zone_left", distance_m=pytest.approx(190, rel=5e-3))]


def test_a_rule_out_of_force_closes_with_no_distance() -> None:
    window = (WeeklyWindow(T0_LOCAL_S - 3600, T0_LOCAL_S + 1800),)
    snap = snapshot([square("home", "inclusion", 0, 0, 400, windows=window)])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 1000, 0)])
    off = fix(2400, 1000, 0)
    assert live(engine, snap, [off]) == [Transition("d1", "s1", "home", "close", pos(off), "gps", zone_id="home",
                                                    kind="inclusion_zone_left", distance_m=None)]


def test_a_crossing_transition_field_by_field() -> None:
    snap = snapshot([square("school", "exclusion", 0, 0, 200)])
    a, b = fix(0, -1000, 0), fix(60, 1000, 0)
    assert live(RuleEngine({}), snap, [a, b]) == [Transition(
        "d1", "s1", "school", "crossed", pos(b), "gps", zone_id="school", kind="exclusion_zone_crossed",
        details={"from_time_ms": a.time_ms, "from_lat": a.lat, "from_lon": a.lon})]


def test_a_global_zone_closes_far_away_field_by_field_and_within_one_batch() -> None:
    snap = snapshot([square("border", "exclusion", 0, 0, 400, subject=None)])
    engine = RuleEngine({})
    inside, far1, far2 = fix(0, 0, 0), fix(60, -30_000, 0), fix(120, -30_000, 0)
    ts = live(engine, snap, [inside, far1, far2])  # opened and closed in one batch
    assert ts == [Transition("d1", "s1", "border", "open", pos(inside), "gps", zone_id="border",
                             kind="exclusion_zone_entered", distance_m=pytest.approx(200, abs=1)),
                  Transition("d1", "s1", "border", "close", pos(far2), "gps", zone_id="border")]
    assert engine.open == {} and engine.pending == {}


def test_a_pending_visit_to_a_global_zone_is_reset_far_away() -> None:
    snap = snapshot([square("border", "exclusion", 0, 0, 400, subject=None)], dwell={"border": Dwell(open_fixes=2)})
    engine = RuleEngine({})
    assert live(engine, snap, [fix(0, 0, 0)]) == []
    assert live(engine, snap, [fix(60, -30_000, 0)]) == []  # compliant far away: the count starts again
    assert live(engine, snap, [fix(120, 0, 0)]) == []
    assert [t.action for t in live(engine, snap, [fix(180, 0, 0)])] == ["open"]


def test_a_cell_fix_far_from_a_global_zone_changes_nothing() -> None:
    snap = snapshot([square("border", "exclusion", 0, 0, 400, subject=None)], dwell={"border": Dwell(open_fixes=2)})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 0, 0)])
    assert live(engine, snap, [fix(60, -30_000, 0, src="cell")]) == []
    assert [t.action for t in live(engine, snap, [fix(120, 0, 0)])] == ["open"]


def test_every_zone_and_every_device_of_a_batch_is_evaluated() -> None:
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor")}
    zones = [square("a", "exclusion", 0, 0, 400), square("b", "exclusion", 3000, 0, 400),
             square("g1", "exclusion", -5000, 0, 400, subject=None), square("g2", "exclusion", 5000, 0, 400, subject=None)]
    snap = snapshot(zones, devices=devices)
    engine = RuleEngine({})
    # d1 quiet (nothing open or pending: not watched), d2 in zone b
    ts = live(engine, snap, [fix(0, 1500, 0), fix(0, 3000, 0, device="d2")])
    assert [(t.device_id, t.action, t.rule) for t in ts] == [("d2", "open", "b")]
    # d2 in both global zones' reach in turn: g2 opens, then leaving to g1 closes g2 and opens g1
    ts = live(engine, snap, [fix(60, 5000, 0, device="d2"), fix(120, -5000, 0, device="d2"),
                             fix(180, -5000, 0, device="d2")])
    assert [(t.action, t.rule) for t in ts] == [("open", "g2"), ("close", "b"), ("open", "g1"), ("close", "g2")]


def test_several_crossings_on_one_path_and_one_zone_skipped() -> None:
    zones = [square("a", "exclusion", -500, 0, 200), square("b", "exclusion", 500, 0, 200)]
    snap = snapshot(zones, dwell={"a": Dwell(open_fixes=3)})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -500, 0)])  # inside a: pending (dwell 3), so a is followed
    ts = live(engine, snap, [fix(60, 1500, 0)])
    assert [(t.action, t.rule) for t in ts] == [("crossed", "b")]


def test_a_path_ending_inside_a_zone_is_no_crossing() -> None:
    snap = snapshot([square("school", "exclusion", 0, 0, 200)], dwell={"school": Dwell(open_fixes=3)})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0)])
    assert live(engine, snap, [fix(60, 0, 0)]) == []  # inside now: the dwell counts it


def test_crossing_the_first_fix_of_a_batch_and_of_other_devices() -> None:
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor")}
    snap = snapshot([square("school", "exclusion", 0, 0, 200)], devices=devices)
    engine = RuleEngine({})
    ts = live(engine, snap, [fix(0, -1000, 0), fix(0, -1000, 0, device="d2"), fix(60, 1000, 0, device="d2")])
    assert [(t.device_id, t.action) for t in ts] == [("d2", "crossed")]  # d1 has no previous fix: nothing, d2 goes on
    ts = live(engine, snap, [fix(30, -1000, 0, src="cell"), fix(120, -1000, 0, device="d2")])
    assert [(t.device_id, t.action) for t in ts] == [("d2", "crossed")]


def test_crossings_only_count_the_subjects_own_zones() -> None:
    subjects = [SubjectRules("s1"), SubjectRules("s2")]
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s2", "ankle_monitor")}
    zones = [square("z1", "exclusion", 0, 3000, 200), square("z2", "exclusion", 0, 0, 200, subject="s2")]
    snap = snapshot(zones, subjects=subjects, devices=devices)
    engine = RuleEngine({})
    assert live(engine, snap, [fix(0, -1000, 0), fix(60, 1000, 0)]) == []  # d1 crosses s2's zone: not its rule
    ts = live(engine, snap, [fix(0, -1000, 0, device="d2"), fix(60, 1000, 0, device="d2")])
    assert [(t.device_id, t.rule) for t in ts] == [("d2", "z2")]


def test_a_subject_zone_crossing_is_found_beside_global_zones() -> None:
    zones = [square("school", "exclusion", 0, 0, 200), square("g", "exclusion", 0, 20_000, 200, subject=None),
             square("g-near", "exclusion", 0, 500, 200, subject=None)]
    snap = snapshot(zones)
    ts = live(RuleEngine({}), snap, [fix(0, -1000, 0), fix(60, 1000, 0), fix(120, 1000, 1000), fix(180, -1000, 0)])
    assert [(t.action, t.rule) for t in ts] == [("crossed", "school"), ("crossed", "g-near")]


# --- late replay: fields, global zones, several devices ---------------------------------------
def test_a_past_violation_field_by_field() -> None:
    snap = snapshot([square("x", "exclusion", 0, 0, 400)])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 600, 0)])
    a, b, c = fix(-300, 100, 0), fix(-240, 600, 0), fix(-180, 600, 0)
    assert engine.plan_late(snap, [a, b, c]) == [Transition(
        "d1", "s1", "x", "past", pos(a), "gps", zone_id="x", kind="exclusion_zone_entered",
        distance_m=pytest.approx(100, abs=1), close_ref=pos(c), late=True)]


def test_late_replay_of_inclusion_and_global_zones() -> None:
    zones = [square("home", "inclusion", 0, 0, 400), square("g", "exclusion", 5000, 0, 400, subject=None)]
    snap = snapshot(zones)
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 0, 0)])
    before = state_of(engine)
    late = [fix(-600, 5000, 0), fix(-540, 5000, 0), fix(-480, -30_000, 0), fix(-420, -30_000, 0), fix(-360, 0, 0),
            fix(-300, 0, 0)]
    past = engine.plan_late(snap, late)
    assert sorted((t.rule, t.kind, t.ref.t_ms, t.close_ref.t_ms if t.close_ref else None) for t in past) == [
        ("g", "exclusion_zone_entered", late[0].time_ms, late[3].time_ms),
        ("home", "inclusion_zone_left", late[0].time_ms, late[5].time_ms)]
    assert state_of(engine) == before


def test_late_replay_of_a_global_zone_ignores_cell_fixes_and_resets_pending() -> None:
    snap = snapshot([square("g", "exclusion", 5000, 0, 400, subject=None)], dwell={"g": Dwell(open_fixes=2)})
    engine = RuleEngine({})
    late = [fix(-600, 5000, 0), fix(-540, -30_000, 0), fix(-480, 5000, 0), fix(-420, -30_000, 0, src="cell"),
            fix(-360, 5000, 0)]
    (t,) = engine.plan_late(snap, late)
    assert (t.ref.t_ms, t.close_ref) == (late[4].time_ms, None)


def test_late_replay_keeps_devices_apart() -> None:
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor")}
    snap = snapshot([square("x", "exclusion", 0, 0, 400)], devices=devices, dwell={"x": Dwell(open_fixes=2)})
    late = [fix(-600, 0, 0), fix(-300, 0, 0, device="d2")]  # one fix inside each: neither is a violation
    assert RuleEngine({}).plan_late(snap, late) == []
    late = [fix(-600, 0, 0), fix(-540, 0, 0), fix(-300, 1000, 0, device="d2"), fix(-240, 1000, 0, device="d2")]
    assert [(t.device_id, t.close_ref) for t in RuleEngine({}).plan_late(snap, late)] == [("d1", None)]


def test_late_replay_needs_zones() -> None:
    assert RuleEngine({}).plan_late(snapshot([]), [fix(0, 0, 0)]) == []
    devices = {"p1": DeviceInfo(None, "victim_phone")}
    assert RuleEngine({}).plan_late(snapshot([square("x", "exclusion", 0, 0, 400)], devices=devices),
                                    [fix(0, 0, 0, device="p1")]) == []


# --- victims ----------------------------------------------------------------------------------
DEVICES = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor"),
           "v1": DeviceInfo(None, "victim_phone"), "x1": DeviceInfo("s2", "ankle_monitor")}
LINK = VictimLink("v1", "s1", 300.0)


def _victims(**kw: object) -> tuple[RuleEngine, object]:
    subjects = [SubjectRules("s1"), SubjectRules("s2"), SubjectRules("s3")]
    return RuleEngine({}), snapshot([], subjects=subjects, devices=DEVICES, links=[LINK], **kw)  # type: ignore[arg-type]


def test_a_victim_proximity_open_field_by_field() -> None:
    engine, snap = _victims()
    v, p = fix(0, 0, 0, device="v1"), fix(10, 100, 0)
    assert live(engine, snap, [v]) == []  # type: ignore[arg-type]
    assert live(engine, snap, [p]) == [Transition(  # type: ignore[arg-type]
        "d1", "s1", "victim:v1", "open", pos(p), "gps", victim_device_id="v1", kind="victim_proximity",
        distance_m=pytest.approx(100, abs=1),
        details={"victim_device_id": "v1", "radius_m": 300.0, "closing_speed_mps": None, "victim_fix_time_ms": v.time_ms})]
    assert engine.pair_distance[("d1", "victim:v1")] == (pytest.approx(100, abs=1), p.time_ms)


def test_another_subjects_monitor_is_no_victim_pair_and_a_missing_position_skips_only_its_pair() -> None:
    engine, snap = _victims()
    live(engine, snap, [fix(0, 50, 0, device="x1"), fix(0, 50, 0, device="d2")])  # type: ignore[arg-type]
    ts = live(engine, snap, [fix(5, 0, 0, device="v1")])  # type: ignore[arg-type]
    assert [(t.device_id, t.action) for t in ts] == [("d2", "open")]  # d1 has no fix yet; x1 is not s1's


def test_a_link_to_a_subject_without_a_monitor_is_harmless() -> None:
    snap = snapshot([], subjects=[SubjectRules("s1"), SubjectRules("s3")], devices=DEVICES,
                    links=[VictimLink("v1", "s3", 300.0), LINK])
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 50, 0)])
    assert [t.action for t in live(engine, snap, [fix(5, 0, 0, device="v1")])] == ["open"]


def test_closing_speed_counts_only_the_approach_not_a_sideways_walk() -> None:
    """Walking past the victim at 10 m/s, 400 m to the side: the distance barely changes
    at the closest point, so the closing speed is near zero there, not the walking speed."""
    engine, snap = _victims()
    live(engine, snap, [fix(0, 0, 0, device="v1")])  # type: ignore[arg-type]
    live(engine, snap, [fix(0, -15, 250, acc=60)])  # type: ignore[arg-type]  # too uncertain to tell
    (t,) = live(engine, snap, [fix(3, 15, 250)])  # type: ignore[arg-type]
    assert t.action == "open"
    assert t.details["closing_speed_mps"] == pytest.approx(0.0, abs=0.05)


def test_closing_speed_components_are_kept_per_party() -> None:
    from pyproj import Geod

    geod = Geod(ellps="WGS84")

    def ground(a: Fix, b: Fix) -> float:
        return float(geod.inv(a.lon, a.lat, b.lon, b.lat)[2])

    engine, snap = _victims()
    fixes: dict[str, list[Fix]] = {"v1": [], "d1": []}
    for k in range(3):  # victim walks toward the person at 2 m/s, the person toward the victim at 10 m/s
        fixes["v1"].append(fix(30 * k, 2 * 30 * k, 0, device="v1"))
        live(engine, snap, [fixes["v1"][-1]])  # type: ignore[arg-type]
        fixes["d1"].append(fix(30 * k + 5, 2000 - 10 * (30 * k + 5), 0))
        live(engine, snap, [fixes["d1"][-1]])  # type: ignore[arg-type]
    p0, p1 = fixes["d1"][-2:]
    v0, v1 = fixes["v1"][-2:]
    want_person = (ground(p0, v1) - ground(p1, v1)) / 30.0
    want_victim = (ground(v0, p0) - ground(v1, p0)) / 30.0
    person, victim = engine.pair_rate[("d1", "victim:v1")]
    assert person == pytest.approx(want_person, rel=2e-4)
    assert victim == pytest.approx(want_victim, rel=2e-4)


def test_closing_speed_ignores_a_step_too_long_ago_to_tell() -> None:
    from telemetry.proximity import MAX_VICTIM_FIX_AGE_S

    age = MAX_VICTIM_FIX_AGE_S
    for gap, known in ((age, True), (age + 0.001, False), (1.0, True)):
        engine, snap = _victims()
        live(engine, snap, [fix(0, 1000, 0)])  # type: ignore[arg-type]
        live(engine, snap, [fix(gap - 0.5, 0, 0, device="v1")])  # type: ignore[arg-type]
        (t,) = live(engine, snap, [fix(gap, 100, 0)])  # type: ignore[arg-type]
        assert t.action == "open"
        closing = t.details["closing_speed_mps"]
        assert (closing is not None) is known, gap
        if known:
            assert closing == pytest.approx(900 / gap, rel=5e-3)


# --- the third mutation run's survivors -----------------------------------------------------
def test_a_short_gap_before_another_devices_crossing_in_one_batch() -> None:
    devices = {"d1": DeviceInfo("s1", "ankle_monitor"), "d2": DeviceInfo("s1", "ankle_monitor")}
    snap = snapshot([square("school", "exclusion", 0, 0, 200)], devices=devices)
    engine = RuleEngine({})
    live(engine, snap, [fix(0, -1000, 0), fix(0, -1000, 0, device="d2")])
    ts = live(engine, snap, [fix(5, -1000, 10), fix(60, 1000, 0, device="d2")])  # d1: 5 s gap, no crossing check
    assert [(t.device_id, t.action) for t in ts] == [("d2", "crossed")]


def test_a_global_zone_closes_far_away_by_its_own_dwell() -> None:
    snap = snapshot([square("g", "exclusion", 0, 0, 400, subject=None)], dwell={"g": Dwell(close_fixes=3)})
    engine = RuleEngine({})
    live(engine, snap, [fix(0, 0, 0)])
    assert live(engine, snap, [fix(60, -30_000, 0), fix(120, -30_000, 0)]) == []
    assert [t.action for t in live(engine, snap, [fix(180, -30_000, 0)])] == ["close"]


def test_late_replay_treats_uncertain_as_neutral_and_a_rule_out_of_force_as_off() -> None:
    snap = snapshot([square("x", "exclusion", 0, 0, 400)], dwell={"x": Dwell(open_fixes=2)})
    late = [fix(-600, 0, 0), fix(-540, 200, 0, acc=50.0), fix(-480, 0, 0)]  # inside, straddling, inside
    (t,) = RuleEngine({}).plan_late(snap, late)
    assert t.ref.t_ms == late[2].time_ms
    window = (WeeklyWindow(T0_LOCAL_S - 3600, T0_LOCAL_S + 1800),)  # in force until T0 + 30 min
    snap = snapshot([square("x", "exclusion", 0, 0, 400, windows=window)])
    late = [fix(1500, 0, 0), fix(1560, 0, 0), fix(1860, 0, 0)]
    (t,) = RuleEngine({}).plan_late(snap, late)
    assert (t.ref.t_ms, t.close_ref) == (late[0].time_ms, pos(late[2]))


def test_closing_speed_within_one_batch_uses_the_batchs_earlier_components() -> None:
    engine, snap = _victims()
    events = []
    for k in range(8):
        t_v = 30 * k - 3
        events.append(fix(t_v, 2.0 * (t_v + 30), 0, device="v1"))
        events.append(fix(30 * k, 2000 - 300 * k, 0))
    opened = [t for t in live(engine, snap, events) if t.action == "open"]  # type: ignore[arg-type]
    assert len(opened) == 1
    assert opened[0].details["closing_speed_mps"] == pytest.approx(12.0, abs=0.1)


def test_a_victim_walking_sideways_does_not_close_in() -> None:
    engine, snap = _victims()
    live(engine, snap, [fix(0, 250, 0)])  # type: ignore[arg-type]
    live(engine, snap, [fix(1, 0, -15, device="v1", acc=60)])  # type: ignore[arg-type]
    (t,) = live(engine, snap, [fix(4, 0, 15, device="v1")])  # type: ignore[arg-type]
    assert t.action == "open"
    assert t.details["closing_speed_mps"] == pytest.approx(0.0, abs=0.05)


def test_a_victim_event_keeps_the_persons_component() -> None:
    engine, snap = _victims()
    live(engine, snap, [fix(0, 0, 0, device="v1")])  # type: ignore[arg-type]
    live(engine, snap, [fix(5, 2000, 0)])  # type: ignore[arg-type]
    live(engine, snap, [fix(35, 1700, 0)])  # type: ignore[arg-type]  # 10 m/s closer
    live(engine, snap, [fix(40, 0, 0, device="v1")])  # type: ignore[arg-type]  # the victim stays put
    person, victim = engine.pair_rate[("d1", "victim:v1")]
    assert person == pytest.approx(10.0, rel=5e-3)
    assert victim == 0.0


def test_a_global_zone_crossing_far_west_of_the_projection_centre() -> None:
    """West of the projection's central meridian x is negative: the prefilter of global
    zones must compare x with x (and y with y) there too."""
    snap = snapshot([square("g", "exclusion", -700_000, 0, 400, subject=None)])
    ts = live(RuleEngine({}), snap, [fix(0, -701_000, 0), fix(60, -699_000, 0)])
    assert [(t.action, t.rule) for t in ts] == [("crossed", "g")]
