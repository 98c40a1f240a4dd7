"""The public face telemetry uses: crossing candidates, zone kinds, ground distances."""

from __future__ import annotations

import numpy as np
import pyproj

from geofence import compile_zones, ground_distance_m, path_candidates, path_crosses, zone_is_exclusion
from geofence.projection import lcc_forward
from tests.geofence.test_batch import _workload


def _candidates_as_telemetry_found_them(zs, subj: np.ndarray, lon0, lat0, lon1, lat1) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """The candidate search ``telemetry.transitions.RuleEngine._crossing_hits`` made by
    reading the zone set's arrays (before ``path_candidates`` existed), kept as the twin."""
    a = zs.arrays
    glob = a.global_ids[zs.zone_kind[a.global_ids] == 1]
    rows: list[tuple[int, int]] = []
    for i in range(subj.shape[0]):
        s = int(subj[i])
        zones = [int(z) for z in a.subj_zone_ids[a.subj_zone_off[s]:a.subj_zone_off[s + 1]] if zs.zone_kind[z] == 1]
        if glob.size:
            x0, y0 = lcc_forward(lon0[i], lat0[i])
            x1, y1 = lcc_forward(lon1[i], lat1[i])
            b = a.bbox[glob]
            near = ((b[:, 0] <= max(x0, x1)) & (b[:, 2] >= min(x0, x1)) & (b[:, 1] <= max(y0, y1))
                    & (b[:, 3] >= min(y0, y1)) & ((a.zone_cat[glob] < 0) | (a.zone_cat[glob] == a.subj_cat[s])))
            zones += [int(z) for z in glob[near]]
        rows += [(i, z) for z in zones]
    return rows


def test_path_candidates_are_the_candidates_telemetry_computed() -> None:
    zones, subjects, lon, lat, _acc, subj, _t = _workload(seed=21, n_subjects=40, n_global=30, n_fixes=3000)
    zs = compile_zones(zones, subjects)
    subj = np.maximum(subj, 0)
    rng = np.random.default_rng(5)
    lon1 = lon + rng.normal(0, 0.01, lon.shape[0])
    lat1 = lat + rng.normal(0, 0.01, lat.shape[0])
    seg, zone = path_candidates(zs, subj, lon, lat, lon1, lat1)
    assert seg.dtype == np.int64 and zone.dtype == np.int32
    want = _candidates_as_telemetry_found_them(zs, subj, lon, lat, lon1, lat1)
    assert list(zip(seg.tolist(), zone.tolist(), strict=True)) == want
    assert len(want) > lon.shape[0]  # globals were found, not only the subjects' own zones
    hit = path_crosses(zs, lon[seg], lat[seg], lon1[seg], lat1[seg], zone)
    assert 0 < hit.sum() < hit.shape[0]
    empty = path_candidates(zs, np.zeros(0, np.int32), *(np.zeros(0),) * 4)
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


def test_path_candidates_without_a_subject_get_only_category_free_global_zones() -> None:
    zones, subjects, lon, lat, _acc, _subj, _t = _workload(seed=22, n_subjects=5, n_global=12, n_fixes=200)
    zs = compile_zones(zones, subjects)
    _seg, zone = path_candidates(zs, np.full(lon.shape[0], -1, np.int32), lon, lat, lon + 0.05, lat + 0.05)
    assert zone.size > 0
    assert (zs.arrays.zone_cat[zone] < 0).all()
    assert zone_is_exclusion(zs, zone).all()


def test_zone_is_exclusion_reads_the_zone_kinds() -> None:
    zones, subjects, *_ = _workload(seed=23, n_subjects=10, n_global=3, n_fixes=100)
    zs = compile_zones(zones, subjects)
    got = zone_is_exclusion(zs, np.arange(zs.n_zones))
    assert got.tolist() == [z.kind == "exclusion" for z in zones]
    assert (got == (zs.zone_kind == 1)).all()


def test_ground_distance_is_the_wgs84_geodesic() -> None:
    rng = np.random.default_rng(3)
    lon0, lat0 = rng.uniform(-180, 180, 2000), rng.uniform(-90, 90, 2000)
    lon1, lat1 = rng.uniform(-180, 180, 2000), rng.uniform(-90, 90, 2000)
    _, _, want = pyproj.Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)
    np.testing.assert_allclose(ground_distance_m(lon0, lat0, lon1, lat1), want, rtol=0, atol=1e-6)
    d = ground_distance_m(69.2401, 41.2995, 69.2401, 41.3995)  # 0.1 degree of latitude at Tashkent
    assert isinstance(d, float) and abs(d - 11_106.07) < 0.01
    assert ground_distance_m(np.array([[1.0, 2.0]]), 0.0, 1.0, 0.0).shape == (1, 2)


def test_global_zone_ids_name_the_category_zones() -> None:
    from geofence import SubjectRules, ZoneSpec, compile_zones

    point = {"type": "Point", "coordinates": [69.24, 41.30]}
    zs = compile_zones([ZoneSpec("own", "exclusion", point, 50.0, subject_id="s1"),
                        ZoneSpec("school", "exclusion", point, 80.0, category="minor"),
                        ZoneSpec("border", "inclusion", point, 900.0)], [SubjectRules("s1", category="minor")])
    assert zs.global_zone_ids == frozenset({"school", "border"})


def test_a_global_inclusion_zone_is_listed_for_every_fix_of_its_category_far_or_near() -> None:
    import numpy as np

    from geofence import SubjectRules, ZoneSpec, ZoneState, compile_zones, evaluate

    region = {"type": "Point", "coordinates": [69.24, 41.30]}
    zs = compile_zones([ZoneSpec("region", "inclusion", region, 5_000.0, category="curfew"),
                        ZoneSpec("school", "exclusion", region, 80.0, category="curfew")],
                       [SubjectRules("s1", category="curfew"), SubjectRules("s2", category="other")])
    # s1 near the centre, s1 three degrees east (far from both zones), s2 near the centre
    ev = evaluate(zs, np.array([69.24, 72.24, 69.24]), np.array([41.30, 41.30, 41.30]), np.array([5.0, 5.0, 5.0]),
                  np.array([0, 0, 1], dtype=np.int32), np.full(3, 1_800_000_000, dtype=np.int64))
    listed = [{zs.zone_ids[ev.pair_zone[p]]: int(ev.pair_state[p]) for p in ev.pairs_of(i)} for i in range(3)]
    assert listed[0] == {"region": ZoneState.INSIDE, "school": ZoneState.INSIDE}
    assert listed[1] == {"region": ZoneState.OUTSIDE}  # the far exclusion zone is not listed: outside
    assert listed[2] == {}
    assert zs.global_zone_ids == frozenset({"region", "school"})
