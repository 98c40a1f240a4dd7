"""The simulator's pure parts: honest noise, the plan's truth, the scoring rules."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.movement import noisy
from simulator.scenarios import SimConfig, build
from simulator.truth import RunInfo, TruthEvent
from simulator.verify import evaluate


@settings(max_examples=300, deadline=None)
@given(st.floats(0.5, 2000.0), st.integers(0, 2**32 - 1))
def test_noise_stays_inside_the_stated_accuracy(acc: float, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        e, n = noisy((0.0, 0.0), acc, rng)
        assert math.hypot(e, n) <= 0.95 * acc + 1e-9


def test_plan_status_reports_and_fixes_are_well_formed() -> None:
    plan = build(SimConfig(devices=40, seed=9, compression=100.0, start_wall_ms=1_764_000_000_000))
    kinds = {e.kind for e in plan.events}
    assert {"battery_low", "battery_critical", "exclusion_zone_crossed", "victim_proximity"} <= kinds
    ids = {d["id"] for d in plan.devices}
    assert all(m.device_id in ids for m in plan.messages)
    assert all(m.payload is not None or m.status is not None for m in plan.messages)
    assert all(len(m.payload) <= 256 * 1024 for m in plan.messages if m.payload is not None)
    # victim phones send fixes only; every linked victim is a registered victim_phone
    phones = {d["id"] for d in plan.devices if d.get("kind") == "victim_phone"}
    assert {body["victim_device_id"] for _, body in plan.victim_links} <= phones
    assert not any(m.status is not None for m in plan.messages if m.device_id in phones)


def _run() -> RunInfo:
    return RunInfo(seed=1, devices=["d1", "d2"], subjects=["s1", "s2"], span_s=86400.0, compression=1.0,
                   anchor_ms=0, scenario_devices={"d1": "exclusion_entry", "d2": "commuter"}, started_wall_ms=0)


def _alert(i: int, kind: str, device: str, fix_ms: int | None, late: bool = False) -> dict[str, object]:
    iso = None if fix_ms is None else f"1970-01-01T00:00:{fix_ms // 1000:02d}+00:00"
    return {"id": i, "kind": kind, "device_id": device, "fix_time": iso, "status_time": None,
            "created_at": "1970-01-01T00:01:00+00:00", "details": {"late": True} if late else {}}


def test_scoring_counts_misses_false_duplicate_and_late_flags() -> None:
    ev = TruthEvent("x:d1:0", "exclusion_entry", "d1", "s1", "exclusion_zone_entered", 10_000, 20_000, slack_ms=1000)
    late = TruthEvent("l:d1:1", "late_evidence", "d1", "s1", "exclusion_zone_entered", 40_000, 50_000, late=True)
    r = evaluate(_run(), [ev, late], [
        _alert(1, "exclusion_zone_entered", "d1", 15_000),  # matches ev
        _alert(2, "exclusion_zone_entered", "d1", 16_000),  # a second alert for the same visit: false
        _alert(3, "inclusion_zone_left", "d2", 5_000),  # a compliant device: false
        _alert(4, "exclusion_zone_entered", "d1", 45_000),  # matches the late event, but not marked late
        _alert(5, "strap_cut", "other", None),  # not of this fleet: ignored
    ])
    assert (r.expected, r.detected, r.false_alerts, r.late_mismatch) == (2, 2, 2, 1)
    assert r.false_per_1k_device_days == 2 / 2.0 * 1000
    r = evaluate(_run(), [ev], [_alert(1, "exclusion_zone_entered", "d1", 25_000)])  # outside the window + slack
    assert (r.detected, r.false_alerts, r.missed) == (0, 1, ["x:d1:0"])
    ev.allowed = ["communication_loss"]
    r = evaluate(_run(), [ev], [_alert(1, "communication_loss", "d1", None)])
    assert (r.false_alerts, r.allowed_extra) == (0, 1)
