"""Turning evaluated fixes into violation opens and closes: zones, crossings, victims.

``RuleEngine`` holds the committed state of every (device, rule): open violations,
dwell counters, each device's latest evaluated position and the last victim distance.
``plan`` reads that state and the fresh fixes of a batch and returns a ``Plan``: the
transitions to write and the state it implies. Nothing changes until ``apply`` is called
with the plan, after the batch's transaction has committed, so a failed batch leaves
the engine exactly as it was.

Rules (rule key = zone id, or ``victim:<victim device>``):
- zone: a fix's state against each zone of its subject (and nearby global zones) feeds
  the dwell machine (``telemetry.rules``); only GPS fixes count.
- crossing: when two consecutive GPS fixes of a device are at least CROSSING_MIN_GAP_S
  apart and the straight path between them (at a plausible speed, at most
  MAX_PLAUSIBLE_SPEED_MPS) certainly crossed an exclusion zone that neither fix is
  inside (the line runs deeper into it than the fixes' accuracy, at a time the zone is
  in force: ``telemetry.crossing``), an ``exclusion_zone_crossed`` alert is raised on the later fix (a violation opened and
  closed at once). A zone the dwell machine was already following before the later fix
  (a violation open, or violating fixes pending) was seen from inside: it is the
  dwell's business, not a crossing. So with a dwell of three fixes, two fixes inside
  followed by one outside raise nothing: the zone's configured dwell decided that
  visit was not a violation, and a crossing must not overrule it (else any dwell above
  one would be moot whenever the person walks out). Nor does the fix that closes a
  violation also raise a crossing.
- victim: the person's fix against each linked victim's latest fix (and each victim
  fix against the person's latest), see ``telemetry.proximity``; the alert carries the
  distance and the closing speed. The closing speed is the sum of each party's own
  contribution: how much its latest move (previous fix to this one, against the other's
  latest position) shortened the distance, over its own time step. Dividing the change
  of the pair distance by the time between pair events is wrong when the two report at
  different moments (a victim fix 3 s old made a 10 m/s approach read 100 m/s).
- late evidence: ``plan_late`` replays late fixes against the zones with a fresh dwell
  state and reports each violation they prove as a past one; it never touches the
  engine's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from geofence import Evaluation, ZoneState, evaluate, path_candidates, path_crosses
from telemetry.crossing import certain_crossings
from telemetry.model import Fix, Position, position_of
from telemetry.proximity import MAX_VICTIM_FIX_AGE_S, distance_m, proximity_signal
from telemetry.rules import COMPLIANT, DEFAULT_DWELL, NEUTRAL, RULE_OFF, VIOLATING, Action, Dwell, Pending, step
from telemetry.snapshot import RegistrySnapshot

Key = tuple[str, str]  # (device, rule)
CROSSING_MIN_GAP_S = 10
MAX_PLAUSIBLE_SPEED_MPS = 70.0
_EXCLUSION = 1


@dataclass(frozen=True, slots=True)
class Transition:
    device_id: str
    subject_id: str
    rule: str
    action: Literal["open", "close", "crossed", "past"]
    ref: Position  # the stored fix of ``device_id`` the violation / alert refers to (a past one: its opening fix)
    source: str
    zone_id: str | None = None
    victim_device_id: str | None = None
    kind: str = ""
    distance_m: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    close_ref: Position | None = None  # "past" only: the late fix that closed it (None: still violating at the end)
    late: bool = False  # proven by late fixes (``RuleEngine.plan_late``)

    @property
    def key(self) -> Key:
        return (self.device_id, self.rule)


@dataclass
class Plan:
    transitions: list[Transition] = field(default_factory=list)
    opened: dict[Key, bool] = field(default_factory=dict)  # final open/closed per touched key
    pending: dict[Key, Pending | None] = field(default_factory=dict)
    last: dict[str, Position] = field(default_factory=dict)
    pair_distance: dict[Key, tuple[float, int]] = field(default_factory=dict)
    pair_rate: dict[Key, tuple[float | None, float | None]] = field(default_factory=dict)


def _signal(f: Fix, state: int, violating: bool) -> int:
    """A fix's zone state as a dwell signal: only GPS counts, uncertain is neutral, a
    rule out of force is off."""
    if state == ZoneState.INACTIVE:
        return RULE_OFF
    if f.source != "gps" or state == ZoneState.UNCERTAIN:
        return NEUTRAL
    return VIOLATING if violating else COMPLIANT


@dataclass(slots=True)
class _Replay:
    """One (device, zone)'s fresh dwell state in a late replay."""

    is_open: bool = False
    pending: Pending | None = None
    opened_by: Position | None = None
    distance_m: float | None = None


def _closing_component(before: Position | None, after: Position, other: Position) -> float | None:
    """How fast one party's own move from ``before`` to ``after`` shrinks its distance to
    ``other`` (m/s, positive when closing), over that party's own time step. None when
    the step is unknown, not forward in time, or older than a victim fix may be."""
    if before is None:
        return None
    dt_s = (after.t_ms - before.t_ms) / 1000.0
    if dt_s <= 0 or dt_s > MAX_VICTIM_FIX_AGE_S:
        return None
    return (distance_m(before, other) - distance_m(after, other)) / dt_s


def _evaluable(snap: RegistrySnapshot, fixes: list[Fix]) -> list[Fix]:
    zs = snap.zone_set
    return [f for f in fixes if snap.devices[f.device_id].kind == "ankle_monitor"
            and snap.subject_at(f.device_id, f.time_ms) in zs.subject_index]

def _evaluate(snap: RegistrySnapshot, evaluable: list[Fix]) -> tuple[Evaluation, np.ndarray, np.ndarray, np.ndarray]:
    """(evaluation, subject index per fix, zone kind per pair, violating per pair)."""
    zs = snap.zone_set
    n = len(evaluable)
    subj = np.fromiter((zs.subject_index[snap.subject_at(f.device_id, f.time_ms) or ""] for f in evaluable),
                       np.int32, n)
    ev = evaluate(zs, np.fromiter((f.lon for f in evaluable), np.float64, n),
                  np.fromiter((f.lat for f in evaluable), np.float64, n),
                  np.fromiter((f.accuracy_m for f in evaluable), np.float64, n), subj,
                  np.fromiter((f.time_ms // 1000 for f in evaluable), np.int64, n), exact_distance=True)
    kind = zs.zone_kind[ev.pair_zone]
    state = ev.pair_state
    violating = ((kind == _EXCLUSION) & (state == ZoneState.INSIDE)) | (
        (kind != _EXCLUSION) & (state == ZoneState.OUTSIDE))
    return ev, subj, kind, violating


class RuleEngine:
    def __init__(self, open_violations: dict[Key, int]) -> None:
        self.open = dict(open_violations)  # key -> violation id
        self.pending: dict[Key, Pending] = {}
        self.last: dict[str, Position] = {}
        self.pair_distance: dict[Key, tuple[float, int]] = {}
        # per victim pair: (person's, victim's) latest closing-speed component, m/s
        self.pair_rate: dict[Key, tuple[float | None, float | None]] = {}

    # --- reading through a plan's overlay ---------------------------------------------
    def _is_open(self, plan: Plan, key: Key) -> bool:
        return plan.opened.get(key, key in self.open)

    def _pending(self, plan: Plan, key: Key) -> Pending | None:
        return plan.pending[key] if key in plan.pending else self.pending.get(key)

    def _last(self, plan: Plan, device: str) -> Position | None:
        return plan.last.get(device) or self.last.get(device)

    def _step(self, plan: Plan, key: Key, signal: int, t_ms: int, dwell: Dwell) -> Action:
        is_open = self._is_open(plan, key)
        action, pending = step(is_open, self._pending(plan, key), signal, t_ms, dwell)
        plan.pending[key] = pending
        if action is not None:
            plan.opened[key] = action == "open"
        return action

    # --- planning ---------------------------------------------------------------------------
    def plan(self, snap: RegistrySnapshot, fresh: list[Fix]) -> Plan:
        """Transitions implied by fresh (stored, not late) fixes sorted by (device, time)."""
        plan = Plan()
        self._plan_zones(snap, fresh, plan)
        self._plan_victims(snap, fresh, plan)
        for i, f in enumerate(fresh):  # sorted by (device, time): each device's last fix
            if i + 1 == len(fresh) or fresh[i + 1].device_id != f.device_id:
                plan.last[f.device_id] = position_of(f)
        return plan

    def plan_late(self, snap: RegistrySnapshot, late: list[Fix]) -> list[Transition]:
        """Past zone violations proven by late fixes (stored, plausible, older than the
        device's latest evaluated fix; sorted by device, time).

        Late fixes never change the engine's state: each device's late fixes are replayed
        against its zones with a fresh dwell state (the live dwell parameters and
        signals: GPS only, uncertain neutral, a rule out of force closes). Every violation
        the replay opens becomes one ``action="past"`` transition, ``late=True``, with
        ``ref`` the fix that opened it and ``close_ref`` the fix that closed it (None when
        the late run ends still violating). Crossings and victim proximity are live rules
        only."""
        zs = snap.zone_set
        evaluable = _evaluable(snap, late)
        if not evaluable or zs.n_zones == 0:
            return []
        ev, _, kind, violating = _evaluate(snap, evaluable)
        state = ev.pair_state
        distance = ev.pair_distance
        assert distance is not None  # asked for: exact_distance=True
        global_ids = snap.zone_set.global_zone_ids
        out: list[Transition] = []
        replay: dict[Key, _Replay] = {}
        kinds: dict[str, str] = {}

        def finish(key: Key, r: _Replay, closed_by: Position | None) -> None:
            assert r.opened_by is not None
            sid = snap.subject_at(key[0], r.opened_by.t_ms) or ""
            out.append(Transition(key[0], sid, key[1], "past", r.opened_by, "gps", zone_id=key[1], kind=kinds[key[1]],
                                  distance_m=r.distance_m, close_ref=closed_by, late=True))

        def feed(key: Key, f: Fix, signal: int, d: float | None = None) -> None:
            r = replay.setdefault(key, _Replay())
            action, r.pending = step(r.is_open, r.pending, signal, f.time_ms, snap.zone_dwell.get(key[1], DEFAULT_DWELL))
            if action == "open":
                r.is_open, r.opened_by, r.distance_m = True, position_of(f), d
            elif action == "close":
                finish(key, r, position_of(f))
                r.is_open, r.opened_by, r.distance_m = False, None, None

        for i, f in enumerate(evaluable):
            listed: set[str] = set()
            for p in ev.pairs_of(i):
                zone_id = zs.zone_ids[ev.pair_zone[p]]
                listed.add(zone_id)
                kinds[zone_id] = "exclusion_zone_entered" if kind[p] == _EXCLUSION else "inclusion_zone_left"
                d = float(distance[p])
                feed((f.device_id, zone_id), f, _signal(f, int(state[p]), bool(violating[p])),
                     abs(d) if np.isfinite(d) else None)
            # a global zone not listed for this fix is OUTSIDE it: compliant for an exclusion
            for key, r in list(replay.items()):
                if key[0] == f.device_id and key[1] in global_ids and key[1] not in listed \
                        and (r.is_open or r.pending is not None) and f.source == "gps":
                    feed(key, f, COMPLIANT)
            last_of_device = i + 1 == len(evaluable) or evaluable[i + 1].device_id != f.device_id
            if last_of_device:
                for key, r in list(replay.items()):
                    if key[0] == f.device_id and r.is_open:
                        finish(key, r, None)
                replay = {k: v for k, v in replay.items() if k[0] != f.device_id}
        return out

    def _plan_zones(self, snap: RegistrySnapshot, fresh: list[Fix], plan: Plan) -> None:
        zs = snap.zone_set
        evaluable = _evaluable(snap, fresh)
        if not evaluable or zs.n_zones == 0:
            return
        ev, subj, kind, violating = _evaluate(snap, evaluable)
        state = ev.pair_state
        crossings = self._crossing_hits(snap, evaluable, subj)
        pair_fix = ev.pair_fix()
        distance = ev.pair_distance
        assert distance is not None  # asked for: exact_distance=True
        # only devices with something open or pending, or something happening now, can
        # change state: walk their fixes in order and skip everyone else
        watched = {d for d, _ in self.open} | {d for d, _ in self.pending}
        watched |= {evaluable[i].device_id for i in np.unique(pair_fix[violating])}
        watched |= {evaluable[i].device_id for i in crossings}
        global_ids = snap.zone_set.global_zone_ids
        # per device, the global zones it has something open or pending on (kept current below)
        global_keys: dict[str, set[str]] = {}
        for dev, rule in {*self.open, *self.pending}:
            if rule in global_ids:
                global_keys.setdefault(dev, set()).add(rule)
        for i, f in enumerate(evaluable):
            if f.device_id not in watched:
                continue
            sid = snap.subject_at(f.device_id, f.time_ms) or ""
            listed: dict[str, int] = {}
            # zones the dwell machine was already following before this fix (open, or a
            # visit pending): seen from inside, so never a crossing
            followed = {z for z in crossings.get(i, ()) if self._is_open(plan, (f.device_id, zs.zone_ids[z]))
                        or self._pending(plan, (f.device_id, zs.zone_ids[z])) is not None}
            for p in ev.pairs_of(i):
                zone_id = zs.zone_ids[ev.pair_zone[p]]
                st = int(state[p])
                listed[zone_id] = st
                if zone_id in global_ids:
                    global_keys.setdefault(f.device_id, set()).add(zone_id)
                signal = _signal(f, st, bool(violating[p]))
                action = self._step(plan, (f.device_id, zone_id), signal, f.time_ms,
                                    snap.zone_dwell.get(zone_id, DEFAULT_DWELL))
                if action is not None:
                    d = float(distance[p])
                    alert_kind = "exclusion_zone_entered" if kind[p] == _EXCLUSION else "inclusion_zone_left"
                    plan.transitions.append(Transition(
                        f.device_id, sid, zone_id, action, position_of(f), f.source, zone_id=zone_id,
                        kind=alert_kind, distance_m=abs(d) if np.isfinite(d) else None))
            # a global zone not listed for this fix is OUTSIDE it
            for rule in [r for r in global_keys.get(f.device_id, ()) if r not in listed]:
                key = (f.device_id, rule)
                if not (self._is_open(plan, key) or self._pending(plan, key)):
                    continue
                if f.source == "gps" and self._step(plan, key, COMPLIANT, f.time_ms,
                                                    snap.zone_dwell.get(rule, DEFAULT_DWELL)) == "close":
                    plan.transitions.append(Transition(f.device_id, sid, rule, "close", position_of(f), f.source,
                                                       zone_id=rule))
            for z in crossings.get(i, ()):
                zone_id = zs.zone_ids[z]
                # (a zone this fix opened is one it is inside: not OUTSIDE, so no second check)
                if z in followed or listed.get(zone_id, ZoneState.OUTSIDE) != ZoneState.OUTSIDE:
                    continue
                prev = self._previous(evaluable, i)
                assert prev is not None
                plan.transitions.append(Transition(
                    f.device_id, sid, zone_id, "crossed", position_of(f), f.source, zone_id=zone_id,
                    kind="exclusion_zone_crossed",
                    details={"from_time_ms": prev.t_ms, "from_lat": prev.lat, "from_lon": prev.lon}))

    def _previous(self, evaluable: list[Fix], i: int) -> Position | None:
        f = evaluable[i]
        if i > 0 and evaluable[i - 1].device_id == f.device_id:
            return position_of(evaluable[i - 1])
        return self.last.get(f.device_id)

    def _crossing_hits(self, snap: RegistrySnapshot, evaluable: list[Fix], subj: np.ndarray) -> dict[int, list[int]]:
        """Exclusion zones the path from each fix's previous fix certainly crossed, where
        the gap is long enough to hide a visit and the speed is plausible: the straight
        line meets the zone (``geofence.path_crosses``) and runs deeper into it than the
        fixes' accuracy (``telemetry.crossing``)."""
        zs = snap.zone_set
        segments: list[int] = []  # fix index of each path segment worth checking
        starts: list[Position] = []
        for i, f in enumerate(evaluable):
            prev = self._previous(evaluable, i)
            if prev is None or f.source != "gps" or prev.source != "gps":  # cell/wifi never open a violation
                continue
            gap_s = (f.time_ms - prev.t_ms) / 1000.0
            if gap_s < CROSSING_MIN_GAP_S or distance_m(prev, position_of(f)) > MAX_PLAUSIBLE_SPEED_MPS * gap_s:
                continue
            segments.append(i)
            starts.append(prev)
        if not segments:
            return {}
        lon0 = np.array([p.lon for p in starts])
        lat0 = np.array([p.lat for p in starts])
        lon1 = np.array([evaluable[i].lon for i in segments])
        lat1 = np.array([evaluable[i].lat for i in segments])
        seg, zone = path_candidates(zs, np.ascontiguousarray(subj[segments], dtype=np.int32), lon0, lat0, lon1, lat1)
        if not seg.size:
            return {}
        met = path_crosses(zs, lon0[seg], lat0[seg], lon1[seg], lat1[seg], zone)
        seg, zone = seg[met], zone[met]
        certain = certain_crossings(zs, [int(subj[segments[k]]) for k in seg], [starts[k] for k in seg],
                                    [position_of(evaluable[segments[k]]) for k in seg], zone)
        out: dict[int, list[int]] = {}
        for k, z in zip(seg[certain], zone[certain], strict=True):
            out.setdefault(segments[int(k)], []).append(int(z))
        return out

    def _plan_victims(self, snap: RegistrySnapshot, fresh: list[Fix], plan: Plan) -> None:
        if not snap.links_by_victim:
            return
        events = sorted((f for f in fresh if f.device_id in snap.links_by_victim
                         or snap.links_by_subject.get(snap.devices[f.device_id].subject_id or "")),
                        key=lambda f: f.time_ms)
        persons = {link.subject_id: [d for d in snap.devices_by_subject.get(link.subject_id, ())
                                     if snap.devices[d].kind == "ankle_monitor"]
                   for f in events for link in snap.links_by_victim.get(f.device_id, ())}
        for f in events:
            info = snap.devices[f.device_id]
            if f.device_id in snap.links_by_victim:
                pairs = [(person, f.device_id, link.radius_m, link.subject_id)
                         for link in snap.links_by_victim[f.device_id] for person in persons.get(link.subject_id, [])]
            else:
                pairs = [(f.device_id, link.victim_device_id, link.radius_m, link.subject_id)
                         for link in snap.links_by_subject.get(info.subject_id or "", [])]
            moved_from = self._last(plan, f.device_id)  # the mover's previous position
            plan.last[f.device_id] = position_of(f)
            for person, victim, radius, sid in pairs:
                p_pos = self._last(plan, person)
                v_pos = self._last(plan, victim)
                if p_pos is None or v_pos is None:
                    continue
                signal, d = proximity_signal(p_pos, v_pos, radius)
                key = (person, f"victim:{victim}")
                now_ms = max(p_pos.t_ms, v_pos.t_ms)
                closing = None
                if not math.isnan(d):
                    rates = plan.pair_rate.get(key) or self.pair_rate.get(key) or (None, None)
                    other = v_pos if f.device_id == person else p_pos
                    rate = _closing_component(moved_from, position_of(f), other)
                    rates = (rate, rates[1]) if f.device_id == person else (rates[0], rate)
                    plan.pair_rate[key] = rates
                    known = [r for r in rates if r is not None]
                    closing = sum(known) if known else None
                    plan.pair_distance[key] = (d, now_ms)
                action = self._step(plan, key, signal, now_ms, DEFAULT_DWELL)
                if action is not None:
                    plan.transitions.append(Transition(
                        person, sid, key[1], action, p_pos, "gps", victim_device_id=victim, kind="victim_proximity",
                        distance_m=d, details={"victim_device_id": victim, "radius_m": radius,
                                               "closing_speed_mps": closing, "victim_fix_time_ms": v_pos.t_ms}))

    # --- after commit ------------------------------------------------------------------------
    def apply(self, plan: Plan, violation_ids: dict[Key, int]) -> None:
        for key, is_open in plan.opened.items():
            if is_open:
                self.open[key] = violation_ids[key]
            else:
                self.open.pop(key, None)
        for key, pending in plan.pending.items():
            if pending is None:
                self.pending.pop(key, None)
            else:
                self.pending[key] = pending
        self.last.update(plan.last)
        self.pair_distance.update(plan.pair_distance)
        self.pair_rate.update(plan.pair_rate)


__all__ = ["CROSSING_MIN_GAP_S", "MAX_PLAUSIBLE_SPEED_MPS", "Plan", "RuleEngine", "Transition"]
