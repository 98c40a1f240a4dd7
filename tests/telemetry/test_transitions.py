"""The rule engine on an in-memory registry snapshot: zones, dwell, crossings, victims,
late evidence. Pure: no database, no broker."""

from __future__ import annotations

import itertools

import pytest

from telemetry.model import Fix
from telemetry.rules import Dwell
from telemetry.snapshot import DeviceInfo, RegistrySnapshot, VictimLink
from telemetry.transitions import RuleEngine, Transition
from tests.telemetry.registry import fix, snapshot, square, state_of

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
