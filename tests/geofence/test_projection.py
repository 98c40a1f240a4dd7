"""The evaluation frame: our numba projection against pyproj, and the stated metric
error bound against geodesics on the WGS84 ellipsoid (pyproj.Geod)."""

from __future__ import annotations

import numpy as np
import pyproj

from geofence import project, project_with_pyproj, scale_factor

# Uzbekistan with a margin: 37-46 N, 56-73 E (fixed data; each test draws the rest from
# its own seeded generator, so no test's inputs depend on which tests ran before it)
_fixed = np.random.default_rng(42)
LON = _fixed.uniform(56.0, 73.0, 20_000)
LAT = _fixed.uniform(37.0, 46.0, 20_000)


def test_numba_projection_agrees_with_pyproj_to_a_micrometre() -> None:
    x, y = project(LON, LAT)
    px, py = project_with_pyproj(LON, LAT)
    assert np.abs(x - px).max() < 1e-6
    assert np.abs(y - py).max() < 1e-6


def test_numba_projection_agrees_with_pyproj_worldwide() -> None:
    """A device abroad is projected as PROJ would (longitude differences wrap), to 1e-12
    of its distance from the projection's centre."""
    rng = np.random.default_rng(43)
    lon = rng.uniform(-180.0, 180.0, 20_000)
    lat = rng.uniform(-89.0, 89.0, 20_000)
    x, y = project(lon, lat)
    px, py = project_with_pyproj(lon, lat)
    assert (np.hypot(x - px, y - py) / np.hypot(px, py)).max() < 1e-12


def test_scale_factor_matches_pyproj() -> None:
    from geofence.projection import PROJ_STRING

    f = pyproj.Proj(PROJ_STRING).get_factors(LON[:500], LAT[:500])
    k = np.array([scale_factor(v) for v in LAT[:500]])
    assert np.abs(k - f.meridional_scale).max() < 1e-9


def _errors(max_m: float, seed: int) -> np.ndarray:
    """|projected distance / k(first point) - geodesic distance| for random pairs."""
    rng = np.random.default_rng(seed)
    geod = pyproj.Geod(ellps="WGS84")
    az = rng.uniform(0, 360, LON.shape[0])
    dist = rng.uniform(0, max_m, LON.shape[0])
    lon2, lat2, _ = geod.fwd(LON, LAT, az, dist)
    x1, y1 = project(LON, LAT)
    x2, y2 = project(np.asarray(lon2), np.asarray(lat2))
    k = np.array([scale_factor(v) for v in LAT])
    return np.abs(np.hypot(x2 - x1, y2 - y1) / k - dist)


def test_distance_error_bounds_stated_in_the_projection_module() -> None:
    assert _errors(2_000.0, seed=44).max() <= 0.03
    assert _errors(5_000.0, seed=45).max() <= 0.2
    assert _errors(50_000.0, seed=46).max() <= 20.0


def test_batch_projection_handles_fixes_outside_the_band_anywhere_in_a_block() -> None:
    """``project_into`` skips the slow formulas for blocks with no fix outside the band:
    a lone fix abroad, at a block's first or last place or in between, is still projected
    by them."""
    rng = np.random.default_rng(47)
    lon = rng.uniform(56.0, 73.0, 5_000)
    lat = rng.uniform(37.0, 46.0, 5_000)
    abroad = np.array([0, 255, 256, 511, 700, 1_023, 4_999])
    lon[abroad] = rng.uniform(-180.0, 180.0, abroad.size)
    lat[abroad] = rng.uniform(-60.0, 20.0, abroad.size)
    x, y = project(lon, lat)
    px, py = project_with_pyproj(lon, lat)
    assert (np.hypot(x - px, y - py) / np.hypot(px, py)).max() < 1e-12
