"""The sparse, multi-level global-zone index: memory grows with the zones, not with the
area between them, and a fix of any accuracy gets exactly the global zones it can reach."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from geofence import SubjectRules, ZoneGeometryError, ZoneSpec, compile_zones, evaluate, project
from geofence import _kernels as K
from tests.geofence.workloads import TASHKENT, rect_ring, star_ring


def _global_circle(zone_id: str, lon: float, lat: float, r: float = 200.0) -> ZoneSpec:
    return ZoneSpec(zone_id, "exclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=r)


def _index_size(zs) -> int:  # type: ignore[no-untyped-def]
    a = zs.arrays
    return int(a.hash_keys.nbytes + a.hash_vals.nbytes + a.cell_off.nbytes + a.cell_rec.nbytes + a.grid.nbytes)


def test_global_zones_far_apart_compile_in_bounded_memory() -> None:
    """Two 200 m circles at opposite corners of the served region (3,000 km apart) take a
    few kilobytes of index (the dense grid took 1.6 GB for Tashkent-Moscow); two 10,000 km
    apart are refused at the door, without building anything."""
    zones = [_global_circle("sw", 51.5, 31.0), _global_circle("ne", 78.5, 49.0), _global_circle("tashkent", *TASHKENT)]
    tracemalloc.start()
    zs = compile_zones(zones, [SubjectRules("s")])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert _index_size(zs) < 64_000
    assert peak < 20_000_000
    lon = np.array([51.5, 78.5, TASHKENT[0], 65.0])
    lat = np.array([31.0, 49.0, TASHKENT[1], 40.0])
    for acc in (5.0, 800.0, 40_000.0):
        ev = evaluate(zs, lon, lat, np.full(4, acc), np.zeros(4, np.int32), np.zeros(4, np.int64))
        assert [ev.pair_zone[list(ev.pairs_of(i))].tolist() for i in range(4)] == [[0], [1], [2], []]
        assert (ev.pair_state == (1 if acc < 200.0 else 2)).all()
    with pytest.raises(ZoneGeometryError):
        compile_zones([_global_circle("tashkent", *TASHKENT), _global_circle("sao-paulo", -46.63, -23.55)],
                      [SubjectRules("s")])


@pytest.mark.parametrize("seed", [1, 2])
def test_every_accuracy_gets_exactly_the_reachable_global_zones(seed: int) -> None:
    """Fixes with accuracies from 0 to 2,000 km against 600 global zones (small and large
    polygons and circles, two categories and none): each fix lists every global zone whose
    grown box lies within its accuracy (times the zone's factor), once, and no other."""
    rng = np.random.default_rng(seed)
    zones: list[ZoneSpec] = []
    for g in range(600):
        lon = TASHKENT[0] + rng.uniform(-0.6, 0.6)
        lat = TASHKENT[1] + rng.uniform(-0.5, 0.5)
        cat = (None, "a", "b")[g % 3]
        if g % 50 == 0:  # large: more cells than a level lists a zone in
            geom = {"type": "Polygon", "coordinates": [rect_ring(lon, lat, rng.uniform(10_000, 40_000), 20_000)]}
            zones.append(ZoneSpec(f"g{g}", "exclusion", geom, buffer_m=20.0, category=cat))
        elif g % 3 == 1:
            zones.append(ZoneSpec(f"g{g}", "exclusion", {"type": "Point", "coordinates": [lon, lat]},
                                  radius_m=float(rng.uniform(20, 5000)), category=cat))
        else:
            ring = star_ring(rng, lon, lat, 50, 400, int(rng.integers(4, 20)))
            zones.append(ZoneSpec(f"g{g}", "exclusion", {"type": "Polygon", "coordinates": [ring]}, buffer_m=10.0,
                                  category=cat))
    subjects = [SubjectRules("none"), SubjectRules("a", category="a"), SubjectRules("b", category="b")]
    zs = compile_zones(zones, subjects)
    n = 3000
    lon = TASHKENT[0] + rng.uniform(-0.8, 0.8, n)
    lat = TASHKENT[1] + rng.uniform(-0.7, 0.7, n)
    acc = np.concatenate([rng.choice([0.0, 5.0, 150.0, 200.0], n // 3),
                          rng.uniform(200.0, 1_500.0, n // 3),
                          rng.choice([3_000.0, 20_000.0, 150_000.0, 2_000_000.0], n - 2 * (n // 3))])
    subj = rng.integers(0, 3, n).astype(np.int32)
    ev = evaluate(zs, lon, lat, acc, subj, np.zeros(n, np.int64))
    x, y = project(lon, lat)
    rows = zs.arrays.global_rec
    for i in range(n):
        got = ev.pair_zone[list(ev.pairs_of(i))]
        g = acc[i] * rows[:, K.CAND_K] + 1e-6
        cat = rows[:, K.CAND_CAT]
        sc = zs.arrays.subj_cat[subj[i]]
        near = ((x[i] >= rows[:, K.CAND_X0] - g) & (x[i] <= rows[:, K.CAND_X1] + g) & (y[i] >= rows[:, K.CAND_Y0] - g)
                & (y[i] <= rows[:, K.CAND_Y1] + g) & ((cat < 0) | (cat == sc)))
        want = rows[near, K.CAND_ZONE].astype(np.int32)
        assert sorted(got.tolist()) == sorted(want.tolist()), (i, acc[i])
        assert len(set(got.tolist())) == got.shape[0]
    # the large zones sit in the big-zone lists of the fine levels
    g0 = zs.arrays.grid[0]
    assert g0[K.G_BIG_HI] > g0[K.G_BIG_LO]
