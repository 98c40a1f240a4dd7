"""A seeded fleet, its registry, its messages and its ground truth.

``build(config)`` returns a ``Plan``: the registry the fleet needs (subjects, zones,
devices, victim links, as API request bodies), every MQTT message each device sends
(in simulated seconds), and the ``TruthEvent`` each injected scenario must raise.

The simulated span [0, span_s) starts with a curfew ("night", the first ``night_s``
seconds: every subject's home zone is scheduled active then) and continues with a day,
when home is not enforced and people make trips. Device times are real epoch times:
``anchor_ms`` + simulated time, with the anchor far enough in the past that a replay
compressed ``compression`` times is never ahead of the wall clock (the engine flags
future fixes): anchor <= start - span x (1 - 1/compression).

Per subject (local metres around its home H): the home zone, a square of 60 m; an
exclusion zone E (a victim's home or a school), a circle of 120-150 m at 1.5 km; for a
restraining order, a victim phone that spends the day around V, 2.5 km from H on the
other side. Day trips go sideways (perpendicular to H-E), so no compliant path comes
near E or V.

Compliant behaviours: ``homebody`` (home all the time, indoor fixes: poor GPS, wifi,
cell), ``commuter`` (a day trip on foot or by car), ``boundary_home`` (sits 5 m inside
the home boundary all night), ``boundary_exclusion`` (walks an arc 35 m outside E's
edge in the day, on good GPS: the distance keeps even the straight path between two
noisy fixes out of the zone, see ``tests/simulator`` for the closer case).

Scenarios (each on its own device; the expected alert in brackets): curfew_breach
[inclusion_zone_left], exclusion_entry [exclusion_zone_entered], drive_through
[exclusion_zone_crossed: sparse 60 s fixes on both sides of E at 12 m/s],
victim_approach [victim_proximity], strap_cut, case_tamper, battery_drain
[battery_low, battery_critical], gps_loss [gps_fix_lost: status says no GPS, fixes go
on from wifi/cell], communication_loss [silent from early on], coverage_gap [a visit
to E during a 30-minute gap, uploaded as one store-and-forward batch:
exclusion_zone_entered], late_evidence [the same visit, but a live fix is sent before
the buffer: the alert must be marked late], clock_skew [clock 15 minutes behind:
device_clock_off], duplicate_resends [every message sent twice; one
exclusion_zone_entered], last_will [the broker's will payload: device_offline].

An injected zone event carries evidence the engine can act on: while the person is in
the zone (or near the victim, or walking the boundary arc) its GPS accuracy is capped
at 12 m, so at least one fix is certainly inside; the rest of the time fixes come with
the situation's accuracy (indoors 12-40 m, wifi, cell up to 1,500 m, urban canyon).
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from simulator.movement import DRIVE_MPS, WALK_MPS, Itinerary, Leg, Point, read, square, to_lonlat
from simulator.truth import RunInfo, TruthEvent
from telemetry.wire import encode_fix, encode_payload, fixes_topic, status_topic

TASHKENT = (69.2401, 41.2995)
SCENARIOS = (
    "curfew_breach", "exclusion_entry", "drive_through", "victim_approach", "strap_cut", "case_tamper",
    "battery_drain", "gps_loss", "communication_loss", "coverage_gap", "late_evidence", "clock_skew",
    "duplicate_resends", "last_will",
)
COMPLIANT = ("homebody", "commuter", "boundary_home", "boundary_exclusion")
DEFAULT_RATES: dict[str, float] = dict.fromkeys(SCENARIOS, 0.01)
HOME_HALF_M = 30.0
EXCL_DIST_M = 1500.0
VICTIM_DIST_M = 2500.0
VICTIM_RADIUS_M = 300.0
STATUS_EVERY_S = 300.0
CLOCK_SKEW_MS = -15 * 60 * 1000
# the engine's default profile (telemetry.conditions.Profile): what a replay compresses
DEFAULT_GPS_LOSS_S = 600
DEFAULT_SILENCE_S = 300 + 120


@dataclass(frozen=True)
class SimConfig:
    devices: int = 50  # all devices, victim phones included
    seed: int = 1
    span_s: float = 7200.0
    night_s: float = 2400.0
    compression: float = 1.0
    prefix: str = "sim"
    rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    every_scenario: bool = True  # at least one device per scenario
    scenarios: tuple[str, ...] = SCENARIOS  # the scenarios to inject (others get no device)
    victim_share: float = 0.15  # share of devices that are victim phones
    origin: tuple[float, float] = TASHKENT
    spread_m: float = 8000.0
    timezone: str = "Asia/Tashkent"
    start_wall_ms: int | None = None  # default: now
    # compliant devices upload this many fixes per message (store and forward: each
    # message goes when its last fix is taken); scenario devices always send one, so the
    # ground truth's timing is the same in both modes
    fixes_per_message: int = 1

    def check(self) -> None:
        if self.night_s < 2000 or self.span_s < self.night_s + 4800 or self.night_s % 60:
            raise ValueError("the scenarios need night_s >= 2000 (whole minutes) and span_s >= night_s + 4800")
        if self.compression < 1:
            raise ValueError("compression must be >= 1")
        unknown = (set(self.rates) | set(self.scenarios)) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}")


@dataclass(slots=True)
class Message:
    """One MQTT publish: at ``sim_s`` (simulated seconds) on ``topic``. A fixes message
    carries its payload; a status message carries its body without ``t``: the publisher
    stamps the device clock (wall time + ``skew_ms``) when it sends it."""

    sim_s: float
    device_id: str
    topic: str
    payload: bytes | None = None
    status: dict[str, Any] | None = None
    skew_ms: int = 0
    repeat: int = 1
    fix_times: tuple[int, ...] = ()
    track: bool = False  # record when it was published (scenario devices)
    n_fixes: int = 0


@dataclass
class Plan:
    config: SimConfig
    anchor_ms: int
    subjects: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    victim_links: list[tuple[str, dict[str, Any]]]  # (subject id, body)
    messages: list[Message]
    events: list[TruthEvent]
    behaviour: dict[str, str]  # device -> scenario or compliant behaviour
    profiles: dict[str, str]  # device -> device profile name it needs (see ``profiles_needed``)

    def run_info(self) -> RunInfo:
        return RunInfo(seed=self.config.seed, devices=[d["id"] for d in self.devices],
                       subjects=[s["id"] for s in self.subjects], span_s=self.config.span_s,
                       compression=self.config.compression, anchor_ms=self.anchor_ms,
                       scenario_devices=dict(self.behaviour))

    @property
    def fixes(self) -> int:
        return sum(m.n_fixes * m.repeat for m in self.messages)

    def profiles_needed(self) -> dict[str, dict[str, int]]:
        """Device profiles a compressed replay needs (name -> thresholds), since the
        engine's thresholds are wall-clock seconds: ``sim`` compresses the GPS-loss
        time; ``sim-silent`` makes communication loss due within seconds. Empty at
        compression 1 (the engine's defaults apply). There is no API route for
        profiles: whoever runs the stack writes ``device_profiles`` and
        ``devices.profile`` (tests/simulator and benchmarks.e2e do it with SQL)."""
        if self.config.compression <= 1:
            return {}
        k = self.config.compression
        return {"sim": {"gps_loss_s": max(2, round(DEFAULT_GPS_LOSS_S / k))},
                "sim-silent": {"gps_loss_s": max(2, round(DEFAULT_GPS_LOSS_S / k)), "report_interval_s": 15,
                               "grace_s": 15}}


def _curfew_window(anchor_ms: int, night_s: float, tz: str) -> list[dict[str, Any]]:
    local = datetime.fromtimestamp(anchor_ms / 1000, ZoneInfo(tz))
    end = datetime.fromtimestamp((anchor_ms + night_s * 1000) / 1000, ZoneInfo(tz))
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return [{"days": [days[local.weekday()]], "start": local.strftime("%H:%M"), "end": end.strftime("%H:%M")}]


def _assign(cfg: SimConfig, n_ankle: int, rng: random.Random) -> list[str]:
    order = list(range(n_ankle))
    rng.shuffle(order)
    out = [""] * n_ankle
    k = 0
    for name in cfg.scenarios:
        want = round(cfg.rates.get(name, 0.0) * n_ankle)
        if cfg.every_scenario:
            want = max(want, 1)
        for _ in range(want):
            if k < n_ankle:
                out[order[k]] = name
                k += 1
    for i in order[k:]:
        out[i] = COMPLIANT[rng.randrange(len(COMPLIANT))]
    return out


@dataclass
class _Device:
    """How one device behaves: its track, reporting and the faults it shows."""

    id: str
    subject_id: str | None
    origin: tuple[float, float]  # H in WGS84: the local frame's (0, 0)
    itin: Itinerary
    interval_s: float
    behaviour: str
    is_victim: bool = False
    silent_from: float = math.inf
    gaps: list[tuple[float, float, bool]] = field(default_factory=list)  # (from, to, live fix first: late)
    gps_off: tuple[float, float] | None = None
    good_gps: list[tuple[float, float]] = field(default_factory=list)  # windows with GPS accuracy capped
    skew_ms: int = 0
    repeat: int = 1
    battery: tuple[float, float] = (90.0, 85.0)  # level at start, at end of span
    strap_at: float = math.inf
    case_at: float = math.inf
    will_at: float = math.inf
    events: list[TruthEvent] = field(default_factory=list)


def build(cfg: SimConfig) -> Plan:
    """The whole deterministic plan for ``cfg`` (same seed, same plan, anchored at the
    given or current wall time)."""
    import time

    cfg.check()
    rng = random.Random(cfg.seed)
    start_ms = cfg.start_wall_ms if cfg.start_wall_ms is not None else int(time.time() * 1000)
    shift_s = cfg.span_s * (1.0 - 1.0 / cfg.compression) + 5.0
    anchor_ms = int((start_ms - shift_s * 1000) // 60_000 * 60_000)
    n_victims = max(1, round(cfg.devices * cfg.victim_share))
    n_ankle = cfg.devices - n_victims
    if n_ankle < 1:
        raise ValueError("too few devices")
    roles = _assign(cfg, n_ankle, rng)
    schedule = _curfew_window(anchor_ms, cfg.night_s, cfg.timezone)
    subjects: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[tuple[str, dict[str, Any]]] = []
    sims: list[_Device] = []
    # victim phones go to victim_approach subjects first, then to others
    victim_for = [i for i, r in enumerate(roles) if r == "victim_approach"]
    victim_for += [i for i, r in enumerate(roles) if r in COMPLIANT][: max(0, n_victims - len(victim_for))]
    victim_for = victim_for[:n_victims]
    extra_victims = n_victims - len(victim_for)
    p = cfg.prefix
    for i, role in enumerate(roles):
        drng = random.Random(cfg.seed * 1_000_003 + i)
        sid, did = f"{p}-s{i:05d}", f"{p}-d{i:05d}"
        home = to_lonlat(cfg.origin, (drng.uniform(-cfg.spread_m, cfg.spread_m),
                                      drng.uniform(-cfg.spread_m, cfg.spread_m)))
        theta = drng.uniform(0, 2 * math.pi)
        ux, uy = math.cos(theta), math.sin(theta)
        e_c: Point = (EXCL_DIST_M * ux, EXCL_DIST_M * uy)
        e_r = drng.uniform(120.0, 150.0)
        restraining = i in victim_for
        subjects.append({"id": sid, "full_name": f"Simulated person {i}",
                         "order_type": "restraining_order" if restraining else "house_arrest"})
        zones.append({"id": f"{sid}-home", "name": "home", "kind": "inclusion", "subject_id": sid,
                      "geometry": {"type": "Polygon", "coordinates": [square(home, (0.0, 0.0), HOME_HALF_M)]},
                      "buffer_m": 5.0, "schedule": schedule})
        e_id = f"{sid}-excl"
        zones.append({"id": e_id, "name": "victim's home", "kind": "exclusion", "subject_id": sid,
                      "geometry": {"type": "Point", "coordinates": list(to_lonlat(home, e_c))}, "radius_m": round(e_r, 1)})
        devices.append({"id": did, "subject_id": sid})
        interval = 60.0 if role == "drive_through" else drng.choice((15.0, 30.0, 30.0, 60.0))
        dev = _Device(did, sid, home, Itinerary((0.0, 0.0)), interval, role,
                      battery=(drng.uniform(60.0, 100.0), 0.0))
        dev.battery = (dev.battery[0], dev.battery[0] - drng.uniform(0.0, 8.0))
        v_c: Point = (-VICTIM_DIST_M * ux, -VICTIM_DIST_M * uy)
        side = drng.choice((1.0, -1.0))
        perp: Point = (-uy * side, ux * side)
        _behave(dev, cfg, drng, e_c, e_r, v_c, perp, e_id)
        sims.append(dev)
        if restraining:
            vid = f"{p}-v{i:05d}"
            devices.append({"id": vid, "kind": "victim_phone"})
            links.append((sid, {"victim_device_id": vid, "radius_m": VICTIM_RADIUS_M}))
            vit = Itinerary(v_c).stay(cfg.span_s, wander_m=40.0)
            sims.append(_Device(vid, None, home, vit, 60.0, "victim_phone", is_victim=True))
    for j in range(extra_victims):  # victim phones without a link (a registered phone, nobody near)
        vid = f"{p}-vx{j:05d}"
        devices.append({"id": vid, "kind": "victim_phone"})
        vorigin = to_lonlat(cfg.origin, (rng.uniform(-cfg.spread_m, cfg.spread_m), rng.uniform(-cfg.spread_m, cfg.spread_m)))
        sims.append(_Device(vid, None, vorigin, Itinerary((0.0, 0.0)).stay(cfg.span_s, wander_m=40.0), 60.0,
                            "victim_phone", is_victim=True))
    messages: list[Message] = []
    events: list[TruthEvent] = []
    profiles: dict[str, str] = {}
    for dev in sims:
        drng = random.Random(zlib.crc32(f"{cfg.seed}:{dev.id}".encode()))
        messages += _messages(dev, cfg, anchor_ms, drng)
        for e in dev.events:
            e.start_ms += anchor_ms + dev.skew_ms
            e.end_ms += anchor_ms + dev.skew_ms
        events += dev.events
        if not dev.is_victim:
            profiles[dev.id] = "sim-silent" if dev.behaviour == "communication_loss" else "sim"
    messages.sort(key=lambda m: m.sim_s)
    return Plan(cfg, anchor_ms, subjects, zones, devices, links, messages, events,
                {d.id: d.behaviour for d in sims}, profiles)


def _event(dev: _Device, scenario: str, kind: str, t0: float, t1: float, *, clock: str = "device",
           zone_id: str | None = None, late: bool = False, slack_s: float | None = None) -> None:
    n = len(dev.events)
    dev.events.append(TruthEvent(
        id=f"{scenario}:{dev.id}:{n}", scenario=scenario, device_id=dev.id, subject_id=dev.subject_id, kind=kind,
        start_ms=int(t0 * 1000), end_ms=int(t1 * 1000), clock=clock,
        slack_ms=int((2 * dev.interval_s if slack_s is None else slack_s) * 1000), zone_id=zone_id, late=late,
        start_sim_s=t0))


def _visit(it: Itinerary, target: Point, speed: float, stay_s: float) -> tuple[float, float]:
    """Go to ``target``, stay, come back home; returns (arrival, departure) times."""
    home = it.here
    it.move(target, speed)
    arrive = it.t
    it.stay(it.t + stay_s, wander_m=10.0)
    leave = it.t
    it.move(home, speed)
    return arrive, leave


def _toward(c: Point, r: float) -> Point:
    """The point at distance ``r`` from ``c`` on the way from home (0, 0) to ``c``."""
    d = math.hypot(*c)
    return (c[0] * (1 - r / d), c[1] * (1 - r / d))


def _behave(dev: _Device, cfg: SimConfig, rng: random.Random, e_c: Point, e_r: float, v_c: Point,
            perp: Point, e_id: str) -> None:
    """Build the device's track, its faults and its truth events."""
    N, D = cfg.night_s, cfg.span_s
    it = dev.itin
    role = dev.behaviour
    if role == "boundary_home":
        # all night 5 m inside the home boundary (a bench in the yard), then a day at home
        spot = (HOME_HALF_M - 5.0, rng.uniform(-HOME_HALF_M + 5, HOME_HALF_M - 5))
        it.move(spot, WALK_MPS).stay(N, wander_m=1.0).move((0.0, 0.0), WALK_MPS)
    else:
        it.stay(N if role != "curfew_breach" else 300.0, wander_m=8.0, indoors=True)
    if role == "curfew_breach":
        out = (perp[0] * 400.0, perp[1] * 400.0)
        it.move((perp[0] * 35.0, perp[1] * 35.0), WALK_MPS)
        t_out = it.t
        arrive, leave = _visit(it, out, WALK_MPS, 600.0)
        _event(dev, role, "inclusion_zone_left", t_out, it.t, zone_id=f"{dev.subject_id}-home")
        it.stay(N, wander_m=8.0, indoors=True)
    day0 = it.t + 300.0
    it.stay(day0, wander_m=8.0, indoors=True)
    if role in ("commuter", "boundary_home"):
        far = rng.uniform(600.0, 3000.0)
        dest = (perp[0] * far, perp[1] * far)
        _visit(it, dest, rng.choice((WALK_MPS, DRIVE_MPS)), rng.uniform(1200.0, 3600.0))
    elif role == "boundary_exclusion":
        r = e_r + 35.0
        start = _toward(e_c, r)
        it.move(start, WALK_MPS)
        t0 = it.t
        base = math.atan2(start[1] - e_c[1], start[0] - e_c[0])
        for k in list(range(1, 7)) + list(range(5, -7, -1)) + list(range(-5, 1)):
            a = base + math.radians(10.0 * k)
            it.move((e_c[0] + r * math.cos(a), e_c[1] + r * math.sin(a)), WALK_MPS)
        dev.good_gps.append((t0 - 120.0, it.t + 120.0))
        it.move((0.0, 0.0), WALK_MPS)
    elif role in ("exclusion_entry", "duplicate_resends"):
        arrive, leave = _visit(it, _toward(e_c, 30.0), WALK_MPS if role == "exclusion_entry" else DRIVE_MPS, 600.0)
        dev.good_gps.append((arrive, leave))
        _event(dev, role, "exclusion_zone_entered", arrive - 300.0, leave + 300.0, zone_id=e_id)
        if role == "duplicate_resends":
            dev.repeat = 2
    elif role == "drive_through":
        p_a = (e_c[0] - perp[0] * 1500.0, e_c[1] - perp[1] * 1500.0)
        p_b = (e_c[0] + perp[0] * 1500.0, e_c[1] + perp[1] * 1500.0)
        leg0 = math.hypot(*p_a) / DRIVE_MPS
        # pass E's centre halfway between two 60 s fixes: both ends 360 m from the centre
        t_centre_min = it.t + leg0 + 1500.0 / DRIVE_MPS
        k = math.ceil((t_centre_min - 30.0) / dev.interval_s)
        depart = k * dev.interval_s + 30.0 - leg0 - 1500.0 / DRIVE_MPS
        it.stay(depart, wander_m=8.0, indoors=True)
        it.move(p_a, DRIVE_MPS).move(p_b, DRIVE_MPS)
        t_c = depart + leg0 + 1500.0 / DRIVE_MPS
        it.move((0.0, 0.0), DRIVE_MPS)
        _event(dev, role, "exclusion_zone_crossed", t_c - 60.0, t_c + 60.0, zone_id=e_id)
    elif role == "victim_approach":
        arrive, leave = _visit(it, _toward(v_c, 40.0), WALK_MPS, 300.0)
        dev.good_gps.append((arrive - 600.0, leave + 600.0))
        _event(dev, role, "victim_proximity", arrive - 900.0, leave + 120.0)
    elif role == "coverage_gap":
        g0 = day0 + 60.0
        it.stay(g0 + 60.0, wander_m=8.0, indoors=True)
        arrive, leave = _visit(it, _toward(e_c, 30.0), DRIVE_MPS, 600.0)
        dev.good_gps.append((arrive, leave))
        dev.gaps.append((g0, g0 + 1800.0, False))
        _event(dev, role, "exclusion_zone_entered", arrive - 300.0, leave + 300.0, zone_id=e_id)
    elif role == "late_evidence":
        g0 = N + 2400.0
        it.stay(g0 + 100.0, wander_m=8.0, indoors=True)
        arrive, leave = _visit(it, _toward(e_c, 30.0), DRIVE_MPS, 600.0)
        dev.good_gps.append((arrive, leave))
        dev.gaps.append((g0, g0 + 1500.0, True))
        _event(dev, role, "exclusion_zone_entered", arrive - 300.0, leave + 300.0, zone_id=e_id, late=True)
    elif role == "strap_cut":
        dev.strap_at = N + 600.0
        _event(dev, role, "strap_cut", dev.strap_at, D, clock="any")
    elif role == "case_tamper":
        dev.case_at = N + 900.0
        _event(dev, role, "case_tamper", dev.case_at, D, clock="any")
    elif role == "battery_drain":
        dev.battery = (30.0, 1.0)
        _event(dev, role, "battery_low", 0.0, D, clock="any")
        _event(dev, role, "battery_critical", 0.0, D, clock="any")
    elif role == "gps_loss":
        dev.gps_off = (N + 600.0, N + 2400.0)
        _event(dev, role, "gps_fix_lost", N + 600.0, N + 2400.0, clock="any")
    elif role == "communication_loss":
        dev.silent_from = 300.0
        _event(dev, role, "communication_loss", 300.0, D, clock="any")
    elif role == "clock_skew":
        dev.skew_ms = CLOCK_SKEW_MS
        _event(dev, role, "device_clock_off", 0.0, D, clock="any")
    elif role == "last_will":
        dev.will_at = N + 1800.0
        dev.silent_from = dev.will_at + 1.0
        _event(dev, role, "device_offline", dev.will_at, D, clock="any")
    it.stay(D, wander_m=8.0, indoors=True)
    wall = cfg.compression
    silent_wall = (D - min(dev.silent_from, D)) / wall
    gap_wall = max((b - a for a, b, _ in dev.gaps), default=0.0) / wall
    if max(silent_wall, gap_wall) >= DEFAULT_SILENCE_S - 60 and role != "communication_loss":
        for e in dev.events:
            e.allowed.append("communication_loss")


def _messages(dev: _Device, cfg: SimConfig, anchor_ms: int, rng: random.Random) -> list[Message]:
    out: list[Message] = []
    track = dev.behaviour in SCENARIOS
    fixes_t = fixes_topic(dev.id)
    t = rng.uniform(0.0, dev.interval_s) if dev.behaviour != "drive_through" else 0.0
    seq = 0
    buffered: dict[int, list[tuple[float, dict[str, Any]]]] = {}
    per_message = 1 if track else max(1, cfg.fixes_per_message)
    held: list[dict[str, Any]] = []  # store and forward: the fixes of the next upload
    hold_s = max(300.0, 3.0 * cfg.compression)  # late evidence: the buffer goes a few wall seconds after the live fix
    while t < cfg.span_s:
        if t >= dev.silent_from:
            break
        leg = dev.itin.leg_at(t)
        truth = leg.at(t, rng)
        gps = not (dev.gps_off is not None and dev.gps_off[0] <= t < dev.gps_off[1])
        good = any(a <= t < b for a, b in dev.good_gps)
        r = read(leg, truth, rng, gps=gps, max_acc=12.0 if good else None)
        if good and r.src != "gps":
            r = read(leg, truth, rng, gps=True, max_acc=12.0)
            if r.src != "gps":  # indoors: keep the GPS reading only
                r = read(Leg(leg.t0, leg.t1, leg.a, leg.b, leg.wander_m, False), truth, rng, max_acc=12.0)
        lon, lat = to_lonlat(dev.origin, r.pos)
        seq += 1
        t_ms = anchor_ms + int(t * 1000) + dev.skew_ms
        fix = encode_fix(t_ms=t_ms, lat=lat, lon=lon, acc=r.acc, spd=r.spd, src=r.src, seq=seq)
        gap = next((g for g, (a, b, _) in enumerate(dev.gaps) if a <= t < b), None)
        if gap is not None:
            buffered.setdefault(gap, []).append((t, fix))
        elif per_message > 1:
            held.append(fix)
            if len(held) == per_message:
                out.append(Message(t, dev.id, fixes_t, encode_payload(held), repeat=dev.repeat,
                                   fix_times=tuple(f["t"] for f in held), n_fixes=len(held)))
                held = []
        else:
            out.append(Message(t, dev.id, fixes_t, encode_payload([fix]), repeat=dev.repeat, fix_times=(t_ms,),
                               track=track, n_fixes=1))
            for g, (_a, b, late) in enumerate(dev.gaps):
                if g in buffered and t >= b:
                    items = buffered.pop(g)
                    send = t + hold_s if late else t
                    out.append(Message(send if late else t - 0.001, dev.id, fixes_t,
                                       encode_payload([f for _, f in items]), repeat=dev.repeat,
                                       fix_times=tuple(f["t"] for _, f in items), track=track, n_fixes=len(items)))
        t += dev.interval_s
    if held:
        out.append(Message(min(t, cfg.span_s), dev.id, fixes_t, encode_payload(held), repeat=dev.repeat,
                           fix_times=tuple(f["t"] for f in held), n_fixes=len(held)))
    if not dev.is_victim:
        t = rng.uniform(0.0, STATUS_EVERY_S)
        while t < cfg.span_s and t < dev.silent_from:
            if not any(a <= t < b for a, b, _ in dev.gaps):
                f = t / cfg.span_s
                body: dict[str, Any] = {
                    "bat": round(dev.battery[0] + f * (dev.battery[1] - dev.battery[0]), 1), "chg": False,
                    "strap": "cut" if t >= dev.strap_at else "closed",
                    "case": "open" if t >= dev.case_at else "closed",
                    "gsm": -70 - rng.randrange(30),
                    "gps": not (dev.gps_off is not None and dev.gps_off[0] <= t < dev.gps_off[1])}
                out.append(Message(t, dev.id, status_topic(dev.id), status=body, skew_ms=dev.skew_ms,
                                   repeat=dev.repeat, track=track))
            t += STATUS_EVERY_S if dev.gps_off is None or not (dev.gps_off[0] - STATUS_EVERY_S <= t < dev.gps_off[1]) \
                else STATUS_EVERY_S / 3
        if dev.will_at < math.inf:
            out.append(Message(dev.will_at, dev.id, status_topic(dev.id), status={"online": False},
                               track=track))
    return out


__all__ = ["COMPLIANT", "DEFAULT_RATES", "SCENARIOS", "TASHKENT", "Message", "Plan", "SimConfig", "build"]
