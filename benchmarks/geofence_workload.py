"""The seeded geofence benchmark workload (issue 3): subjects around Tashkent, each with
a home inclusion zone (8-64 vertices or a circle, half of them with a night curfew) and
two exclusion zones (8-200 vertices, 50-2000 m across), plus global exclusion zones
(schools) for one subject category, and fixes near the homes with ~3% violating."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geofence import SubjectRules, WeeklyWindow, ZoneSpec

TASHKENT = (69.2401, 41.2995)
M_LAT = 111_320.0
CURFEW = (*(WeeklyWindow(d * 86400 + 22 * 3600, d * 86400 + 30 * 3600) for d in range(6)),
    WeeklyWindow(6 * 86400 + 22 * 3600, 7 * 86400), WeeklyWindow(0, 6 * 3600))
WEEK_START = 1_764_547_200  # Monday 2025-12-01 00:00 UTC


@dataclass
class Workload:
    zones: list[ZoneSpec]
    subjects: list[SubjectRules]
    lon: np.ndarray
    lat: np.ndarray
    acc: np.ndarray
    subject: np.ndarray
    time_s: np.ndarray


def _star(rng: np.random.Generator, lon: float, lat: float, n: int, r_lo: float, r_hi: float) -> np.ndarray:
    step = 2 * math.pi / n
    ang = np.arange(n) * step + rng.uniform(0, 0.5 * step, n)
    rad = rng.uniform(r_lo, r_hi, n)
    m_lon = M_LAT * math.cos(math.radians(lat))
    ring = np.column_stack([lon + rad * np.cos(ang) / m_lon, lat + rad * np.sin(ang) / M_LAT])
    return np.vstack([ring, ring[:1]])


def build(n_subjects: int, n_global: int, n_fixes: int, *, seed: int = 20261126,
          spread_m: float = 30_000.0, ex_vertices: tuple[int, int] = (8, 201), poor_share: float = 0.0,
          near_ex_share: float = 0.015) -> Workload:
    """The workload; the variants change ``ex_vertices`` (the two exclusion zones' vertex
    counts, end exclusive), ``poor_share`` (the share of cell fixes, accuracy 300-1,500 m)
    and ``near_ex_share`` (the share of fixes at an exclusion zone, within its outline)."""
    rng = np.random.default_rng(seed)
    m_lon = M_LAT * math.cos(math.radians(TASHKENT[1]))
    home_e = rng.uniform(-spread_m, spread_m, n_subjects)
    home_n = rng.uniform(-spread_m, spread_m, n_subjects)
    home_lon = TASHKENT[0] + home_e / m_lon
    home_lat = TASHKENT[1] + home_n / M_LAT
    home_r = rng.uniform(40, 120, n_subjects)
    zones: list[ZoneSpec] = []
    subjects: list[SubjectRules] = []
    ex_centres = np.zeros((n_subjects, 2, 2))
    for s in range(n_subjects):
        sid = f"s{s}"
        cat = "school_ban" if s % 4 == 0 else None
        subjects.append(SubjectRules(sid, category=cat))
        windows = CURFEW if s % 2 == 0 else ()
        if s % 5 == 0:
            zones.append(ZoneSpec(f"{sid}-home", "inclusion", {"type": "Point", "coordinates": [home_lon[s], home_lat[s]]},
                                  radius_m=float(home_r[s]), buffer_m=5.0, subject_id=sid, windows=windows))
        else:
            ring = _star(rng, home_lon[s], home_lat[s], int(rng.integers(8, 65)), 0.6 * home_r[s], home_r[s])
            zones.append(ZoneSpec(f"{sid}-home", "inclusion", {"type": "Polygon", "coordinates": [ring]},
                                  buffer_m=5.0, subject_id=sid, windows=windows))
        for j in range(2):
            # a victim's home or a school: 50-2,000 m across, 300-2,500 m beyond the home
            ang = rng.uniform(0, 2 * math.pi)
            size = rng.uniform(25, 1000)
            dist = home_r[s] + size + rng.uniform(300, 2500)
            clon = home_lon[s] + dist * math.cos(ang) / m_lon
            clat = home_lat[s] + dist * math.sin(ang) / M_LAT
            ex_centres[s, j] = (clon, clat)
            ring = _star(rng, clon, clat, int(rng.integers(*ex_vertices)), 0.5 * size, size)
            zones.append(ZoneSpec(f"{sid}-ex{j}", "exclusion", {"type": "Polygon", "coordinates": [ring]},
                                  buffer_m=10.0, subject_id=sid))
    for g in range(n_global):
        glon = TASHKENT[0] + rng.uniform(-spread_m, spread_m) / m_lon
        glat = TASHKENT[1] + rng.uniform(-spread_m, spread_m) / M_LAT
        ring = _star(rng, glon, glat, int(rng.integers(8, 40)), 60, 200)
        zones.append(ZoneSpec(f"school-{g}", "exclusion", {"type": "Polygon", "coordinates": [ring]},
                              buffer_m=20.0, category="school_ban"))
    # fixes: 97% jitter at home, ~1.5% well away from home, ~1.5% at an exclusion centre
    subj = rng.integers(0, n_subjects, n_fixes).astype(np.int32)
    kind = rng.uniform(0, 1, n_fixes)
    r = np.sqrt(rng.uniform(0, 1, n_fixes)) * home_r[subj] * 0.5
    a = rng.uniform(0, 2 * math.pi, n_fixes)
    lon = home_lon[subj] + r * np.cos(a) / m_lon
    lat = home_lat[subj] + r * np.sin(a) / M_LAT
    away = kind < 0.015
    lon[away] += rng.uniform(300, 800, away.sum()) / m_lon
    inex = (kind >= 0.015) & (kind < 0.015 + near_ex_share)
    which = rng.integers(0, 2, n_fixes)
    lon[inex] = ex_centres[subj[inex], which[inex], 0]
    lat[inex] = ex_centres[subj[inex], which[inex], 1]
    acc = rng.choice(np.array([3.0, 5.0, 8.0, 12.0, 25.0, 60.0]), n_fixes, p=[0.2, 0.3, 0.25, 0.15, 0.08, 0.02])
    time_s = WEEK_START + rng.integers(0, 7 * 86400, n_fixes)
    # the variants' draws come last, so that the base workload stays the one of issue 3
    if near_ex_share > 0.015:  # spread over the zones (within 1 km of the centre), where their outlines are
        spread = rng.uniform(0.0, 1_000.0, n_fixes)
        turn = rng.uniform(0, 2 * math.pi, n_fixes)
        lon[inex] += (spread * np.cos(turn))[inex] / m_lon
        lat[inex] += (spread * np.sin(turn))[inex] / M_LAT
    if poor_share > 0.0:
        poor = rng.uniform(0, 1, n_fixes) < poor_share
        acc[poor] = rng.uniform(300.0, 1_500.0, poor.sum())
    return Workload(zones, subjects, lon, lat, acc, subj, time_s.astype(np.int64))


__all__ = ["Workload", "build"]
