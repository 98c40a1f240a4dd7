"""The batch path (fixes grouped by subject, evaluated in parallel, starts scattered
back) against the shapely/zoneinfo twin and against the one-fix-at-a-time path."""

from __future__ import annotations

import numpy as np

from geofence import (
    AuthorisedAbsence,
    SubjectRules,
    WeeklyWindow,
    ZoneSpec,
    compile_zones,
    evaluate,
    project,
)
from geofence.evaluate import SERIAL_BELOW
from tests.geofence import reference
from tests.geofence.workloads import TASHKENT, random_geometry, star_ring

T0 = 1_764_547_200  # Monday 2025-12-01 00:00 UTC
NIGHT = (WeeklyWindow(0, 6 * 3600), *(WeeklyWindow(d * 86400 + 22 * 3600, d * 86400 + 30 * 3600) for d in range(6)))


def _workload(seed: int, n_subjects: int, n_global: int, n_fixes: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    subjects: list[SubjectRules] = []
    zones: list[ZoneSpec] = []
    centre: dict[str, tuple[float, float]] = {}
    for s in range(n_subjects):
        sid = f"s{s}"
        lon = TASHKENT[0] + rng.uniform(-0.05, 0.05)
        lat = TASHKENT[1] + rng.uniform(-0.05, 0.05)
        centre[sid] = (lon, lat)
        absences: tuple[AuthorisedAbsence, ...] = ()
        if s % 5 == 1:  # a hospital visit: one zone, the first day
            absences = (AuthorisedAbsence(T0 + 8 * 3600, T0 + 20 * 3600, f"{sid}-home"),)
        if s % 7 == 2:  # leave from every rule on the second day
            absences = (AuthorisedAbsence(T0 + 86400, T0 + 2 * 86400, None),)
        term = (T0 + 3 * 86400, 2**62) if s % 6 == 3 else (-(2**62), 2**62)
        subjects.append(SubjectRules(sid, category="ban" if s % 3 == 0 else None, exceptions=absences,
                                     term_start=term[0], term_end=term[1]))
        ring = star_ring(rng, lon, lat, 60, 250, int(rng.integers(5, 60)))
        zones.append(ZoneSpec(f"{sid}-home", "inclusion", {"type": "Polygon", "coordinates": [ring]},
                              buffer_m=float(rng.choice([0.0, 5.0])), subject_id=sid,
                              windows=NIGHT if s % 2 == 0 else ()))
        for j in range(int(rng.integers(0, 3))):
            geom, radius = random_geometry(rng, lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01))
            kind = "exclusion" if j == 0 else "inclusion"
            zones.append(ZoneSpec(f"{sid}-z{j}", kind, geom, radius_m=radius, buffer_m=10.0, subject_id=sid))
    for g in range(n_global):
        lon = TASHKENT[0] + rng.uniform(-0.05, 0.05)
        lat = TASHKENT[1] + rng.uniform(-0.05, 0.05)
        ring = star_ring(rng, lon, lat, 100, 600, int(rng.integers(4, 30)))
        # most belong to the category; one in four applies to every subject
        zones.append(ZoneSpec(f"g{g}", "exclusion", {"type": "Polygon", "coordinates": [ring]}, buffer_m=20.0,
                              category=None if g % 4 == 0 else "ban"))
    subj = rng.integers(-1, n_subjects, n_fixes).astype(np.int32)  # -1: a device with no subject
    sid = [f"s{max(s, 0)}" for s in subj]
    base = np.array([centre[x] for x in sid])
    lon = base[:, 0] + rng.normal(0, 0.002, n_fixes)
    lat = base[:, 1] + rng.normal(0, 0.002, n_fixes)
    acc = rng.choice([0.0, 4.0, 15.0, 60.0, 250.0], n_fixes)  # 250 m: beyond the grid's margin
    t = T0 + rng.integers(0, 4 * 86400, n_fixes)
    return zones, subjects, lon, lat, acc, subj, t.astype(np.int64)


def test_batch_path_matches_the_reference_pair_by_pair() -> None:
    zones, subjects, lon, lat, acc, subj, t = _workload(seed=7, n_subjects=60, n_global=12, n_fixes=4000)
    zs = compile_zones(zones, subjects, grid_cell_m=300.0)
    ev = evaluate(zs, lon, lat, acc, subj, t)
    assert lon.shape[0] >= SERIAL_BELOW
    x, y = project(lon, lat)
    # expected state of every (fix, zone) pair by the twin, one zone at a time
    want = np.full((lon.shape[0], len(zones)), -1, np.int8)
    for z, spec in enumerate(zones):
        if spec.subject_id is not None:
            rows = np.flatnonzero(subj == zs.subject_index[spec.subject_id])
        else:
            rows = np.flatnonzero([s >= 0 and (spec.category is None or subjects[s].category == spec.category)
                                   for s in subj])
        if rows.size == 0:
            continue
        st = reference.classify(spec, x[rows], y[rows], acc[rows])
        on = np.array([reference.active(spec, subjects[subj[i]], int(t[i])) for i in rows])
        want[rows, z] = np.where(on, st, reference.INACTIVE)
    got = np.full_like(want, -1)
    got[ev.pair_fix(), ev.pair_zone] = ev.pair_state
    n_subject_zones = sum(1 for z in zones if z.subject_id is not None)
    globals_ = np.arange(n_subject_zones, len(zones))
    # a global zone not listed for a fix is OUTSIDE it (whether or not its rule is on)
    g_got = got[:, globals_]
    g_want = want[:, globals_]
    unlisted = (g_got == -1) & (g_want != -1)
    assert np.isin(g_want[unlisted], [reference.OUTSIDE, reference.INACTIVE]).all()
    got[:, globals_] = np.where(unlisted, g_want, g_got)
    bad = np.argwhere(got != want)
    assert bad.size == 0, [(int(i), int(z), int(got[i, z]), int(want[i, z]), int(subj[i])) for i, z in bad[:10]]
    assert (got[subj == -1] == -1).all()
    assert set(np.unique(ev.pair_state)) == {0, 1, 2, 3}
    # the fix index of each pair and the per-fix blocks agree
    pair_fix = ev.pair_fix()
    for i in range(0, lon.shape[0], 97):
        assert (pair_fix[ev.pairs_of(i)] == i).all()
    assert int(ev.fix_count.sum()) == ev.pair_state.shape[0]


def test_batch_path_equals_one_fix_at_a_time() -> None:
    zones, subjects, lon, lat, acc, subj, t = _workload(seed=8, n_subjects=25, n_global=8, n_fixes=600)
    zs = compile_zones(zones, subjects, grid_cell_m=250.0)
    batch = evaluate(zs, lon, lat, acc, subj, t, exact_distance=True)
    for i in range(lon.shape[0]):
        one = evaluate(zs, lon[i:i + 1], lat[i:i + 1], acc[i:i + 1], subj[i:i + 1], t[i:i + 1], exact_distance=True)
        p = list(batch.pairs_of(i))
        assert list(one.pair_zone) == list(batch.pair_zone[p])
        assert list(one.pair_state) == list(batch.pair_state[p])
        assert one.pair_distance is not None and batch.pair_distance is not None
        np.testing.assert_array_equal(one.pair_distance, batch.pair_distance[p])
    assert evaluate(zs, lon, lat, acc, subj, t).pair_distance is None  # only when asked for


def test_batch_refuses_bad_input_naming_the_first_bad_fix() -> None:
    import pytest

    from geofence import EvaluationInputError

    zones, subjects, lon, lat, acc, subj, t = _workload(seed=9, n_subjects=5, n_global=2, n_fixes=500)
    zs = compile_zones(zones, subjects)
    lat = lat.copy()
    acc = acc.copy()
    lat[300] = 91.0
    acc[400] = -1.0
    with pytest.raises(EvaluationInputError) as info:
        evaluate(zs, lon, lat, acc, subj, t)
    assert info.value.argument == "lon/lat"
    lat[300] = 41.3
    with pytest.raises(EvaluationInputError) as info:
        evaluate(zs, lon, lat, acc, subj, t)
    assert info.value.argument == "accuracy_m"
