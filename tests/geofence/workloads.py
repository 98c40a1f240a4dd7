"""Seeded random zone workloads for the exactness tests (lon/lat around Tashkent)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

TASHKENT = (69.2401, 41.2995)
M_PER_DEG_LAT = 111_000.0


def star_ring(rng: np.random.Generator, lon: float, lat: float, r_min: float, r_max: float, n: int) -> list[list[float]]:
    """A closed star-shaped ring (valid, counter-clockwise) with radii in metres."""
    # evenly spread angles with jitter keep every gap below pi: the ring stays simple
    step = 2 * math.pi / n
    angles = np.arange(n) * step + rng.uniform(0, 0.5 * step, n)
    radii = rng.uniform(r_min, r_max, n)
    m_lon = M_PER_DEG_LAT * math.cos(math.radians(lat))
    pts = [[lon + r * math.cos(a) / m_lon, lat + r * math.sin(a) / M_PER_DEG_LAT] for a, r in zip(angles, radii, strict=True)]
    pts.append(pts[0])
    return pts


def rect_ring(lon: float, lat: float, w_m: float, h_m: float) -> list[list[float]]:
    m_lon = M_PER_DEG_LAT * math.cos(math.radians(lat))
    dx, dy = w_m / 2 / m_lon, h_m / 2 / M_PER_DEG_LAT
    return [[lon - dx, lat - dy], [lon + dx, lat - dy], [lon + dx, lat + dy], [lon - dx, lat + dy], [lon - dx, lat - dy]]


def random_geometry(rng: np.random.Generator, lon: float, lat: float) -> tuple[dict[str, Any], float | None]:
    """A random Polygon (maybe with a hole), MultiPolygon, axis-aligned box, or circle."""
    kind = rng.integers(0, 5)
    if kind == 0:
        return {"type": "Point", "coordinates": [lon, lat]}, float(rng.uniform(50, 1000))
    if kind == 1:
        return {"type": "Polygon", "coordinates": [rect_ring(lon, lat, rng.uniform(50, 800), rng.uniform(50, 800))]}, None
    if kind == 2:
        shell = star_ring(rng, lon, lat, 400, 900, int(rng.integers(8, 64)))
        hole = star_ring(rng, lon, lat, 50, 300, int(rng.integers(3, 12)))
        return {"type": "Polygon", "coordinates": [shell, hole[::-1]]}, None
    if kind == 3:
        a = star_ring(rng, lon - 0.01, lat, 100, 400, int(rng.integers(3, 30)))
        b = star_ring(rng, lon + 0.01, lat, 100, 400, int(rng.integers(3, 30)))
        return {"type": "MultiPolygon", "coordinates": [[a], [b]]}, None
    return {"type": "Polygon", "coordinates": [star_ring(rng, lon, lat, 50, 1000, int(rng.integers(3, 200)))]}, None
