"""Circles are decided in ground metres: against the WGS84 geodesic (pyproj.Geod) at
sites across Uzbekistan, from 5 m to the largest radius, boundaries included."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest

from geofence import SubjectRules, ZoneSpec, compile_zones, evaluate, project, scale_factor
from geofence import _kernels as K
from geofence.zones import MAX_RADIUS_M

GEOD = pyproj.Geod(ellps="WGS84")
SITES = {"Nukus": (59.6103, 42.4531), "Muynak": (59.0214, 43.7683), "Fergana": (71.7843, 40.3864),
         "Termez": (67.2783, 37.2242), "Tashkent": (69.2401, 41.2995)}
RADII = (5.0, 20.0, 100.0, 500.0, 2_000.0, 10_000.0, 50_000.0, MAX_RADIUS_M)
ACCURACIES = (0.0, 3.0, 25.0, 300.0, 1_500.0)


def _states(g: np.ndarray, r: float, margin: np.ndarray) -> np.ndarray:
    """The reference's rule on the true geodesic distance g."""
    d = np.abs(g - r)
    return np.where((g < r) & (d > margin), 1, np.where((g > r) & (d > margin), 0, 2)).astype(np.int8)


def _fixes(rng: np.random.Generator, lon: float, lat: float, r: float) -> tuple[np.ndarray, ...]:
    """Fixes at random distances up to 2.5 r, and at r, r +- margin each within a few
    micrometres to ten metres, in random directions, with accuracies from 0 to 1.5 km."""
    n_random = 3000
    acc = [rng.choice(ACCURACIES, n_random)]
    dist = [rng.uniform(0.0, 2.5 * r, n_random)]
    for a in ACCURACIES:
        for edge in (r - a, r, r + a):
            for delta in (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0):
                for sign in (-1.0, 1.0):
                    if edge + sign * delta > 0:
                        dist.append(np.full(8, edge + sign * delta))
                        acc.append(np.full(8, a))
    d = np.concatenate(dist)
    az = rng.uniform(-180.0, 180.0, d.shape[0])
    flon, flat, _ = GEOD.fwd(np.full(d.shape[0], lon), np.full(d.shape[0], lat), az, d)
    return np.asarray(flon), np.asarray(flat), np.concatenate(acc)


@pytest.mark.parametrize("site", sorted(SITES))
def test_circles_agree_with_the_geodesic_at_sites_across_uzbekistan(site: str) -> None:
    rng = np.random.default_rng(sorted(SITES).index(site))
    lon, lat = SITES[site]
    checked = 0
    for r in RADII:
        zs = compile_zones([ZoneSpec("c", "exclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=r,
                                     subject_id="s")], [SubjectRules("s")])
        flon, flat, acc = _fixes(rng, lon, lat, r)
        _, _, g = GEOD.inv(np.full(flon.shape[0], lon), np.full(flon.shape[0], lat), flon, flat)
        want = _states(np.asarray(g), r, acc)
        n = flon.shape[0]
        for exact in (False, True):  # the fast path, and the path that gives exact distances
            ev = evaluate(zs, flon, flat, acc, np.zeros(n, np.int32), np.zeros(n, np.int64), exact_distance=exact)
            got = ev.by_fix(ev.pair_state, 1)[:, 0]
            bad = np.flatnonzero(got != want)
            assert bad.size == 0, (site, r, g[bad[:5]], acc[bad[:5]], got[bad[:5]], want[bad[:5]])
            if exact:
                assert ev.pair_distance is not None
                np.testing.assert_allclose(ev.pair_distance, np.asarray(g) - r, rtol=0,
                                           atol=K.E2_COEF * (2.5 * r) ** 3 + 1e-5)
        one = evaluate(zs, flon[:1], flat[:1], acc[:1], np.zeros(1, np.int32), np.zeros(1, np.int64))
        assert one.pair_state[0] == want[0]
        checked += n
    assert checked > 30_000


def test_the_stated_bounds_of_the_frame_estimates_hold_across_the_region() -> None:
    """E1 = D / k_c and E2 (Simpson over 1/k) against the geodesic, for centres in the
    supported region (30-50 N, 50-80 E) and fixes up to CIRCLE_FRAME_M away: each stays
    within half its stated bound (the bound used to decide has a factor of two to spare)."""
    rng = np.random.default_rng(15)
    n = 100_000
    clon, clat = rng.uniform(50.0, 80.0, n), rng.uniform(30.0, 50.0, n)
    dist = np.exp(rng.uniform(np.log(1.0), np.log(K.CIRCLE_FRAME_M / 1.05), n))
    flon, flat, _ = GEOD.fwd(clon, clat, rng.uniform(-180, 180, n), dist)
    cx, cy = project(clon, clat)
    px, py = project(np.asarray(flon), np.asarray(flat))
    d = np.hypot(px - cx, py - cy)
    kc = np.array([scale_factor(v) for v in clat])
    e1 = np.abs(d / kc - dist)
    assert (e1 <= 0.5 * (K.E1_COEF * d * d + K.EST_ABS_M)).all()
    e2 = np.abs(np.array([K.simpson_ground_m(px[i], py[i], cx[i], cy[i], d[i], kc[i]) for i in range(n)]) - dist)
    assert (e2 <= 0.5 * (K.E2_COEF * d ** 3 + K.EST_ABS_M)).all()
    assert (d <= K.CIRCLE_FRAME_M).all()


def test_a_far_fix_and_a_huge_accuracy_are_decided_on_the_ellipsoid() -> None:
    """A fix 1,000 km and 5,000 km from the circle (beyond the frame estimate's range):
    OUTSIDE by the chord through the Earth, or by the geodesic when the accuracy reaches."""
    lon, lat = SITES["Tashkent"]
    zs = compile_zones([ZoneSpec("c", "inclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=1000.0,
                                 subject_id="s")], [SubjectRules("s")])
    flon, flat, _ = GEOD.fwd(np.full(4, lon), np.full(4, lat), np.array([0.0, 90.0, 200.0, 300.0]),
                             np.array([1e6, 5e6, 1e6, 5e6]))
    acc = np.array([5.0, 5.0, 1e6 - 1000.0 + 1.0, 5e6 - 1000.0 - 1.0])
    _, _, g = GEOD.inv(np.full(4, lon), np.full(4, lat), flon, flat)
    for exact in (False, True):
        ev = evaluate(zs, np.asarray(flon), np.asarray(flat), acc, np.zeros(4, np.int32), np.zeros(4, np.int64),
                      exact_distance=exact)
        assert ev.pair_state.tolist() == _states(np.asarray(g), 1000.0, acc).tolist() == [0, 0, 2, 0]


_INVERSE = pyproj.Transformer.from_crs(pyproj.CRS.from_proj4(
    "+proj=lcc +lat_1=38.5 +lat_2=44.5 +lat_0=41 +lon_0=64.5 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"),
    "EPSG:4326", always_xy=True)


@pytest.mark.parametrize("site", ["Termez", "Muynak"])
def test_path_crossing_meets_circles_by_the_geodesic(site: str) -> None:
    """A path (straight in the frame) meets a circle when one of its points is within the
    radius by the geodesic: against 20,001 points sampled along each path, for circles of
    100 m to 100 km and paths that pass near the boundary (within 1.5 radii, many within
    a metre), skipping only those whose sampled minimum is within its sampling error."""
    from geofence import path_crosses
    from geofence.projection import lcc_inverse

    rng = np.random.default_rng(7 if site == "Termez" else 8)
    lon, lat = SITES[site]
    compared = 0
    for r in (100.0, 5_000.0, 50_000.0, MAX_RADIUS_M):
        zs = compile_zones([ZoneSpec("c", "exclusion", {"type": "Point", "coordinates": [lon, lat]}, radius_m=r,
                                     subject_id="s")], [SubjectRules("s")])
        cx, cy = zs.arrays.circle[0, 0], zs.arrays.circle[0, 1]
        k = zs.arrays.circle[0, 3]
        n = 150
        # lines at frame distance r * k * (1 + delta) from the centre, in random directions
        delta = np.concatenate([rng.uniform(-0.5, 0.5, n // 3), rng.normal(0, 1e-4, n // 3),
                                rng.normal(0, 2e-6 * 1e5 / r, n - 2 * (n // 3))])
        ang = rng.uniform(0, 2 * np.pi, n)
        px, py = cx + r * k * (1 + delta) * np.cos(ang), cy + r * k * (1 + delta) * np.sin(ang)
        half = r * k * rng.uniform(0.2, 1.5, n)
        shift = rng.uniform(-0.8, 0.8, n) * half
        ux, uy = -np.sin(ang), np.cos(ang)
        x0, y0 = px + (shift - half) * ux, py + (shift - half) * uy
        x1, y1 = px + (shift + half) * ux, py + (shift + half) * uy
        ends = np.array([lcc_inverse(a, b) for a, b in zip(np.r_[x0, x1], np.r_[y0, y1], strict=True)])
        got = path_crosses(zs, ends[:n, 0], ends[:n, 1], ends[n:, 0], ends[n:, 1], np.zeros(n, np.int64))
        from geofence import project

        fx0, fy0 = project(ends[:n, 0], ends[:n, 1])
        fx1, fy1 = project(ends[n:, 0], ends[n:, 1])
        t = np.linspace(0.0, 1.0, 20_001)
        for i in range(n):
            sx, sy = fx0[i] + t * (fx1[i] - fx0[i]), fy0[i] + t * (fy1[i] - fy0[i])
            slon, slat = _INVERSE.transform(sx, sy)
            _, _, g = GEOD.inv(np.full(t.shape[0], lon), np.full(t.shape[0], lat), slon, slat)
            g = np.asarray(g)
            spacing = 2.0 * half[i] / 20_000
            tol = spacing * spacing / r + 1e-4  # the sampled minimum's error, with room for rounding
            if abs(g.min() - r) <= tol:
                continue
            assert bool(got[i]) == bool(g.min() <= r), (site, r, i, g.min() - r)
            compared += 1
    assert compared > 500
