"""Geofence benchmark: the numba evaluator against a vectorized shapely 2 peer, same run.

    python -m benchmarks.geofence --quick --json PATH   # ~1 minute
    python -m benchmarks.geofence --json PATH           # the full run quoted in the README
    python -m benchmarks.geofence --variant poor-accuracy [--quick] --json PATH
    python -m benchmarks.geofence --variant big-vertex [--quick] --json PATH

Full workload (seeded): 100,000 subjects (home inclusion zone of 8-64 vertices or a
circle, half with a night curfew; two exclusion zones of 8-200 vertices, 50-2,000 m
across), 5,000 global exclusion zones for one subject category, 1,000,000 fixes around
Tashkent with ~3% violating. Both sides classify every (fix, zone) pair as inside /
outside / uncertain (accuracy circle plus buffer against the boundary distance) or
inactive (schedule), and every global zone the fix may touch; ``mismatches`` counts the
pairs where they differ. The peer: pyproj projection, prepared geometries, bounding-box
prefilter, ``contains_xy`` plus ``dwithin`` to the boundary, an STRtree ``dwithin``
query for global zones (each fix at its own reach), and zoneinfo for schedules.

Variants (same subjects, peer and checks):
- ``poor-accuracy``: 50,000 global zones (quick 5,000), and 2% of the fixes are cell
  fixes with accuracy 300-1,500 m (issue 15: such fixes used to scan every global zone).
- ``big-vertex``: 10,000 subjects (quick 1,000), each with two exclusion zones of
  500-5,000 vertices (20,000 such zones; quick 2,000) and 20% of the fixes spread over
  them (within 1 km of their centre), 1,000,000 fixes (quick 100,000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from benchmarks.geofence_workload import Workload, build
from geofence import compile_zones, evaluate, project_with_pyproj, scale_factor

OUTSIDE, INSIDE, UNCERTAIN, INACTIVE = 0, 1, 2, 3
SIZES = {"quick": (10_000, 500, 100_000), "full": (100_000, 5_000, 1_000_000)}
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "poor-accuracy": {"sizes": {"quick": (10_000, 5_000, 100_000), "full": (100_000, 50_000, 1_000_000)},
                      "build": {"poor_share": 0.02}},
    "big-vertex": {"sizes": {"quick": (1_000, 500, 100_000), "full": (10_000, 5_000, 1_000_000)},
                   "build": {"ex_vertices": (500, 5_001), "near_ex_share": 0.2}},
}


class Peer:
    """shapely 2, vectorized: the best straightforward use of the library for this job."""

    def __init__(self, w: Workload) -> None:
        t = time.perf_counter()
        self.w = w
        n = len(w.zones)
        geoms = np.empty(n, dtype=object)
        self.is_circle = np.zeros(n, bool)
        self.radius = np.zeros(n)
        self.k = np.zeros(n)
        self.buffer = np.array([z.buffer_m for z in w.zones])
        self.windows = [z.windows for z in w.zones]
        for i, z in enumerate(w.zones):
            if z.geometry["type"] == "Point":
                lon, lat = z.geometry["coordinates"]
                x, y = project_with_pyproj(np.array([lon]), np.array([lat]))
                geoms[i] = shapely.Point(x[0], y[0])
                self.is_circle[i] = True
                self.k[i] = scale_factor(lat)
                self.radius[i] = float(z.radius_m or 0) * self.k[i]
            else:
                ring = np.asarray(z.geometry["coordinates"][0])
                x, y = project_with_pyproj(ring[:, 0], ring[:, 1])
                geoms[i] = shapely.Polygon(np.column_stack([x, y]))
                self.k[i] = scale_factor((ring[:, 1].min() + ring[:, 1].max()) / 2)
        shapely.prepare(geoms)
        self.geoms = geoms
        self.boundary = shapely.boundary(geoms)
        self.bounds = shapely.bounds(geoms)
        self.bounds[self.is_circle] = np.column_stack([
            self.bounds[self.is_circle, 0] - self.radius[self.is_circle],
            self.bounds[self.is_circle, 1] - self.radius[self.is_circle],
            self.bounds[self.is_circle, 2] + self.radius[self.is_circle],
            self.bounds[self.is_circle, 3] + self.radius[self.is_circle]])
        self.n_subject_zones = 3 * len(w.subjects)
        self.global_ids = np.arange(self.n_subject_zones, n)
        self.tree = shapely.STRtree(geoms[self.global_ids])
        self.subject_has_cat = np.array([s.category is not None for s in w.subjects])
        self.compile_s = time.perf_counter() - t

    def _active(self, zone: np.ndarray, t: np.ndarray) -> np.ndarray:
        active = np.ones(zone.shape[0], bool)
        sched = np.fromiter((bool(self.windows[z]) for z in zone), bool, zone.shape[0])
        if sched.any():
            tz = ZoneInfo("Asia/Tashkent")
            hours = t[sched] // 3600
            uniq = np.unique(hours)
            offs = np.array([datetime.fromtimestamp(int(h) * 3600, tz).utcoffset().total_seconds() for h in uniq])
            local = t[sched] + offs[np.searchsorted(uniq, hours)].astype(np.int64)
            sow = (local + 3 * 86400) % (7 * 86400)
            idx = np.flatnonzero(sched)
            hit = np.zeros(idx.shape[0], bool)
            for q, z in enumerate(zone[idx]):
                hit[q] = any(wnd.start_s <= sow[q] < wnd.end_s for wnd in self.windows[z])
            active[idx] = hit
        return active

    def _classify(self, zone: np.ndarray, x: np.ndarray, y: np.ndarray, acc: np.ndarray) -> np.ndarray:
        margin = (acc + self.buffer[zone]) * self.k[zone]
        b = self.bounds[zone]
        state = np.full(zone.shape[0], OUTSIDE, np.int8)
        near = (x >= b[:, 0] - margin) & (x <= b[:, 2] + margin) & (y >= b[:, 1] - margin) & (y <= b[:, 3] + margin)
        circ = near & self.is_circle[zone]
        c = np.flatnonzero(circ)
        if c.size:
            dc = shapely.distance(self.geoms[zone[c]], shapely.points(x[c], y[c]))
            r = self.radius[zone[c]]
            d = np.abs(dc - r)
            state[c] = np.where(d <= margin[c], UNCERTAIN, np.where(dc < r, INSIDE, OUTSIDE))
        p = np.flatnonzero(near & ~circ)
        if p.size:
            inside = shapely.contains_xy(self.geoms[zone[p]], x[p], y[p])
            close = shapely.dwithin(self.boundary[zone[p]], shapely.points(x[p], y[p]), margin[p])
            state[p] = np.where(close, UNCERTAIN, np.where(inside, INSIDE, OUTSIDE))
        return state

    def evaluate(self, lon: np.ndarray, lat: np.ndarray, acc: np.ndarray, subj: np.ndarray,
                 t: np.ndarray) -> tuple[np.ndarray, set[tuple[int, int, int]]]:
        x, y = project_with_pyproj(lon, lat)
        states = np.empty((lon.shape[0], 3), np.int8)
        for j in range(3):
            zone = 3 * subj.astype(np.int64) + j
            st = self._classify(zone, x, y, acc)
            st[~self._active(zone, t)] = INACTIVE
            states[:, j] = st
        fixes = np.flatnonzero(self.subject_has_cat[subj])
        reach = (acc[fixes] + self.buffer[self.global_ids].max()) * self.k[self.global_ids].max() + 1.0
        qi, ti = self.tree.query(shapely.points(x[fixes], y[fixes]), predicate="dwithin", distance=reach)
        f = fixes[qi]
        z = self.global_ids[ti]
        gst = self._classify(z, x[f], y[f], acc[f])
        keep = gst != OUTSIDE
        hits = {(int(a), int(b), int(c)) for a, b, c in zip(f[keep], z[keep], gst[keep], strict=True)}
        return states, hits


def _ours_global_hits(ev: Any, n_subject_zones: int) -> set[tuple[int, int, int]]:
    fix = ev.pair_fix()
    g = (ev.pair_zone >= n_subject_zones) & (ev.pair_state != OUTSIDE)
    return {(int(a), int(b), int(c)) for a, b, c in zip(fix[g], ev.pair_zone[g], ev.pair_state[g], strict=True)}


def _warm_start_s() -> float:
    code = ("import time; t=time.perf_counter(); import numpy as np; "
            "from geofence import compile_zones, evaluate, ZoneSpec, SubjectRules; "
            "zs=compile_zones([ZoneSpec('z','inclusion',{'type':'Point','coordinates':[69.2,41.3]},radius_m=100,"
            "subject_id='s')],[SubjectRules('s')]); "
            "evaluate(zs,np.array([69.2]),np.array([41.3]),np.array([5.0]),np.zeros(1,np.int32),np.zeros(1,np.int64)); "
            "print(time.perf_counter()-t)")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)  # make sure the cache is warm
    t = time.perf_counter()
    inner = float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    return round(time.perf_counter() - t, 3) if inner else 0.0


def _rss_kb(field: str) -> int:
    """A field of /proc/self/status in kB (0 where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def run(mode: str, repeats: int, variant: str = "base") -> dict[str, Any]:
    spec = VARIANTS[variant]
    n_subj, n_global, n_fix = spec.get("sizes", SIZES)[mode]
    t = time.perf_counter()
    w = build(n_subj, n_global, n_fix, **spec.get("build", {}))
    build_s = time.perf_counter() - t
    rss_before = _rss_kb("VmRSS")
    peak_reset = _reset_peak_rss()
    t = time.perf_counter()
    zs = compile_zones(w.zones, w.subjects, validate=False)
    compile_s = time.perf_counter() - t
    compile_peak_mb = (_rss_kb("VmHWM") - rss_before) / 1024 if peak_reset else None
    zone_set_mb = sum(a.nbytes for a in zs.arrays if isinstance(a, np.ndarray)) / 2**20
    args = (w.lon, w.lat, w.acc, w.subject, w.time_s)
    evaluate(zs, *(a[:1000] for a in args))  # JIT/cached code loaded before timing
    times = []
    ev = None
    for _ in range(repeats):
        t = time.perf_counter()
        ev = evaluate(zs, *args)
        times.append(time.perf_counter() - t)
    assert ev is not None
    best = min(times)
    one = tuple(a[:1] for a in args)
    evaluate(zs, *one)
    single = []
    for i in range(2000):
        j = i % n_fix
        sl = tuple(a[j:j + 1] for a in args)
        t = time.perf_counter()
        evaluate(zs, *sl)
        single.append(time.perf_counter() - t)
    peer = Peer(w)
    t = time.perf_counter()
    peer_states, peer_hits = peer.evaluate(*args)
    peer_s = time.perf_counter() - t
    counts = ev.fix_count
    ours_subject = np.empty((n_fix, 3), np.int8)
    starts = ev.fix_start
    for j in range(3):
        assert (ev.pair_zone[starts + j] == 3 * w.subject + j).all()
        ours_subject[:, j] = ev.pair_state[starts + j]
    ours_hits = _ours_global_hits(ev, 3 * n_subj)
    mismatch_subject = int((ours_subject != peer_states).sum())
    mismatch_global = len(ours_hits ^ peer_hits)
    violating = ((ours_subject[:, 0] == OUTSIDE) | (ours_subject[:, 1:] == INSIDE).any(axis=1)
                 | np.isin(np.arange(n_fix), [h[0] for h in ours_hits if h[2] == INSIDE]))
    return {
        "mode": mode,
        "variant": variant,
        "fixes": n_fix,
        "subjects": n_subj,
        "zones": len(w.zones),
        "global_zones": n_global,
        "vertices": int(zs.arrays.vx.shape[0]),
        "poor_accuracy_fixes": int((w.acc >= 300.0).sum()),
        "pairs": int(counts.sum()),
        "violating_fraction": round(float(violating.mean()), 4),
        "workload_build_s": round(build_s, 2),
        "compile_s": round(compile_s, 2),
        "compile_peak_rss_growth_mb": None if compile_peak_mb is None else round(compile_peak_mb, 1),
        "zone_set_arrays_mb": round(zone_set_mb, 1),
        "eval_s_best": round(best, 4),
        "eval_s_all": [round(v, 4) for v in times],
        "positions_per_s": round(n_fix / best),
        "peer_compile_s": round(peer.compile_s, 2),
        "peer_eval_s": round(peer_s, 3),
        "peer_positions_per_s": round(n_fix / peer_s),
        "speedup_vs_peer": round(peer_s / best, 1),
        "mismatches": mismatch_subject + mismatch_global,
        "mismatches_subject_zones": mismatch_subject,
        "mismatches_global_zones": mismatch_global,
        "single_fix_us": round(statistics.median(single) * 1e6, 2),
        "warm_start_s": _warm_start_s(),
        "threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--variant", choices=sorted(VARIANTS), default="base")
    a = p.parse_args(argv)
    result = run("quick" if a.quick else "full", a.repeats, a.variant)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    return 0 if result["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
