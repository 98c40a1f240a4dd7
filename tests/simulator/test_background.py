"""The background fleet (simulator.background): seeded, in time order, streamed per
share, and compliant — no fix of it is ever certainly outside its home or certainly
inside its exclusion zone, judged against the registry it creates (the engine's own
verdict on it runs in test_simulation.py)."""

from __future__ import annotations

import json
import math
from collections import Counter

from shapely.geometry import Point, Polygon

from simulator.background import BEHAVIOURS, BackgroundConfig, messages, registry
from simulator.movement import M_PER_DEG_LAT

CFG = BackgroundConfig(devices=600, seed=5, interval_s=10.0, duration_s=120.0, prefix="bt", fixes_per_message=1)
START_MS = 1_764_000_000_000


def _local(origin: tuple[float, float], lon: float, lat: float) -> tuple[float, float]:
    """WGS84 to local metres around ``origin`` (the inverse of movement.to_lonlat)."""
    lon0, lat0 = origin
    return ((lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0)), (lat - lat0) * M_PER_DEG_LAT)


def test_shares_partition_the_fleet_and_each_stream_is_in_time_order() -> None:
    whole = list(messages(CFG, 0, 1, START_MS))
    parts = [list(messages(CFG, k, 3, START_MS)) for k in range(3)]
    assert sorted((m.sim_s, m.device_id, m.topic, m.payload) for p in parts for m in p) == \
        sorted((m.sim_s, m.device_id, m.topic, m.payload) for m in whole)
    for stream in (whole, *parts):
        assert [m.sim_s for m in stream] == sorted(m.sim_s for m in stream)
    assert sum(m.n_fixes for m in whole) == CFG.expected_fixes
    assert {m.device_id for m in whole} == set(CFG.device_ids)
    # a fix's device time is when it is due, never later than the message that carries it
    for m in whole:
        assert all(t <= START_MS + m.sim_s * 1000 + 1 for t in m.fix_times)
    batched = BackgroundConfig(**{**CFG.__dict__, "fixes_per_message": 10})
    assert sum(m.n_fixes for m in messages(batched, 0, 1, START_MS)) == batched.expected_fixes


def test_every_fix_is_compliant_within_its_stated_accuracy() -> None:
    homes: dict[str, Polygon] = {}
    exclusions: dict[str, tuple[tuple[float, float], float]] = {}
    origin: dict[str, tuple[float, float]] = {}  # local frame: the home's centre, or the exclusion's
    kinds: Counter[str] = Counter()
    for subject, zones, device in registry(CFG):
        kinds[subject["order_type"]] += 1
        by_kind = {z["kind"]: z for z in zones}
        if "inclusion" in by_kind:
            z = by_kind["inclusion"]
            ring = z["geometry"]["coordinates"][0]
            o = origin[device["id"]] = ((ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2)
            homes[device["id"]] = Polygon([_local(o, *q) for q in ring]).buffer(z["buffer_m"], join_style="mitre")
        z = by_kind["exclusion"]
        o = origin.setdefault(device["id"], tuple(z["geometry"]["coordinates"]))  # type: ignore[arg-type]
        exclusions[device["id"]] = (_local(o, *z["geometry"]["coordinates"]), z["radius_m"])
    assert kinds["house_arrest"] and kinds["probation"]
    closest_home = closest_exclusion = math.inf
    for m in messages(CFG, 0, 1, START_MS):
        if m.payload is None:
            continue
        doc = json.loads(m.payload)
        for f in doc if isinstance(doc, list) else [doc]:
            p = Point(_local(origin[m.device_id], f["lon"], f["lat"]))
            if m.device_id in homes:  # certainly outside: farther out than the accuracy
                out = homes[m.device_id].exterior.distance(p) if not homes[m.device_id].contains(p) else 0.0
                assert out <= f["acc"], (m.device_id, f)
                closest_home = min(closest_home, f["acc"] - out)
            centre, radius = exclusions[m.device_id]
            gap = p.distance(Point(centre)) - radius  # certainly inside: deeper in than the accuracy
            assert gap + f["acc"] > 0, (m.device_id, f)
            closest_exclusion = min(closest_exclusion, gap)
    assert closest_exclusion < 40.0  # the boundary walkers do come close to the edge
    assert closest_home < 30.0


def test_behaviours_are_mixed_and_seeded() -> None:
    a = [(s, z, d) for s, z, d in registry(CFG, range(50))]
    assert a == list(registry(CFG, range(50)))
    assert len(BEHAVIOURS) == 4
    assert CFG.estimated_messages > 0
