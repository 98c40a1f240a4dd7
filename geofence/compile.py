"""Compile zone and rule specifications into the flat arrays the kernels read.

The result, a ``ZoneSet``, is immutable: a registry change builds a new one and the
owner swaps a single reference, so an evaluation never sees a half-built zone set.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from geofence import _kernels as K
from geofence.errors import ZoneGeometryError
from geofence.projection import project_with_pyproj, scale_factor
from geofence.zones import (
    SubjectRules,
    ZoneSpec,
    check_region,
    check_zone_fields,
    circle_centre,
    circle_extent,
    polygon_rings,
    raw_polygon_rings,
)

DEFAULT_TIMEZONE = "Asia/Tashkent"
GRID_CELL_M = 500.0
# Fixes whose accuracy is within this margin read one cell of the finest grid level;
# worse ones (cell-tower fixes) read the coarser levels (see the note above K.G_X0).
GRID_MARGIN_M = 200.0
GRID_LEVEL_CELLS_M = tuple(1000.0 * 2.0**i for i in range(11))  # 1 km .. 1,024 km
_TZ_TABLE_YEARS = (1800, 2500)  # the kernel reads later instants 400 years earlier (K.TZ_TABLE_END_S)
# Each polygon zone is cut into horizontal slabs of about this many segments (at most
# MAX_SLABS_PER_ZONE), so a fix reads a few segments of the outline instead of all.
SEGMENTS_PER_SLAB = 4
# A circle's box is grown by (accuracy + buffer) * k_c * CIRCLE_REACH to find the fixes
# that may touch it: k changes by a factor below 1.045 between 24 and 56 N, so a fix
# whose ground distance is within reach is within this many frame metres per metre.
CIRCLE_REACH = 1.05
MAX_SLABS_PER_ZONE = 64

ZoneArrays = namedtuple(
    "ZoneArrays",
    [
        "shape", "bbox", "circle", "slab_off", "slab_seg", "zone_ring_off", "ring_off", "vx", "vy", "zone_k",
        "win", "tz_off", "tz_at", "tz_val", "subj_term", "subj_cat", "exc_off", "exc",
        "subj_zone_off", "subj_zone_ids", "zone_cat", "grid", "cell_off", "global_ids",
        "n_global_all", "zone_rec", "raster", "cell_rec", "global_rec", "hash_keys", "hash_vals",
    ],
)


@dataclass(frozen=True)
class ZoneSet:
    """A compiled, immutable set of zones and subject rules."""

    arrays: ZoneArrays
    zone_ids: tuple[str, ...]
    zone_kind: np.ndarray  # int8: 0 inclusion, 1 exclusion (public: see also geofence.zone_is_exclusion)
    subject_index: dict[str, int]
    # every zone that applies to a category (or everyone) rather than one subject: the
    # global exclusion zones of the index (listed for a fix only near it) and the global
    # inclusion zones (listed for every fix of a subject they apply to, see compile_zones)
    global_zone_ids: frozenset[str] = frozenset()
    # (the input ZoneSpecs are not kept: evaluation reads only the arrays, and the specs
    # with their GeoJSON lists cost more memory than the arrays; issue 15)
    # compiled kernel entry points for this zone set's argument types (see geofence._dispatch)
    entries: dict[Hashable, Callable[..., Any]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_zones(self) -> int:
        return len(self.zone_ids)

    @property
    def n_subjects(self) -> int:
        return len(self.subject_index)


@lru_cache(maxsize=64)
def _tz_transitions(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(instants, offsets) of a time zone between the table years, found by probing each
    day and bisecting every change down to the second (zoneinfo exposes no table). About
    0.4 s per zone, once per process."""
    tz = ZoneInfo(name)

    def offset(t: int) -> int:
        off = datetime.fromtimestamp(t, tz).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    start = int(datetime(_TZ_TABLE_YEARS[0], 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(_TZ_TABLE_YEARS[1], 1, 1, tzinfo=UTC).timestamp())
    if end != K.TZ_TABLE_END_S:
        raise RuntimeError("the time-zone table must end where the kernel's 400-year reading starts")
    at = [-(2**62)]
    val = [offset(start)]
    day = int(timedelta(days=1).total_seconds())
    t = start
    while t < end:
        nxt = t + day
        if offset(nxt) != val[-1]:
            lo, hi = t, nxt  # offset(lo) == val[-1] != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid) == val[-1]:
                    lo = mid
                else:
                    hi = mid
            at.append(hi)
            val.append(offset(hi))
        t = nxt
    return tuple(at), tuple(val)


def _csr(lists: Sequence[Sequence[int]], dtype: type = np.int32) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(lists) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(x) for x in lists])
    flat: np.ndarray = np.fromiter((v for x in lists for v in x), dtype=dtype, count=int(off[-1]))
    return off, flat


def compile_zones(
    zones: Sequence[ZoneSpec],
    subjects: Sequence[SubjectRules],
    *,
    validate: bool = True,
    grid_cell_m: float = GRID_CELL_M,
    grid_margin_m: float = GRID_MARGIN_M,
) -> ZoneSet:
    """Build a ZoneSet. Zones of unknown subjects raise ZoneGeometryError."""
    subject_index = {s.subject_id: i for i, s in enumerate(subjects)}
    categories: dict[str, int] = {}

    def cat_code(c: str | None) -> int:
        return -1 if c is None else categories.setdefault(c, len(categories))

    tz_names: dict[str, int] = {}

    def tz_code(name: str) -> int:
        if name not in tz_names:
            try:
                ZoneInfo(name)
            except Exception as exc:  # zoneinfo raises several types for bad keys
                raise ZoneGeometryError("-", f"unknown time zone {name!r}") from exc
            tz_names[name] = len(tz_names)
        return tz_names[name]

    n = len(zones)
    shape = np.zeros(n, dtype=np.int8)
    circle = np.zeros((n, 6))  # circles: centre x, y (frame), radius (ground m), k at the centre, lon, lat
    bbox = np.zeros((n, 4))
    zone_k = np.ones(n)
    reach_k = np.ones(n)  # frame metres per ground metre of accuracy when a zone's box is grown by it
    zone_buffer = np.zeros(n)
    zone_tz = np.zeros(n, dtype=np.int32)
    zone_cat = np.full(n, -1, dtype=np.int32)
    zone_kind = np.zeros(n, dtype=np.int8)
    windows: list[list[tuple[int, int]]] = []
    zone_rings: list[int] = [0]
    ring_lens: list[int] = []
    lon_parts: list[np.ndarray] = []
    lat_parts: list[np.ndarray] = []
    subj_zones: list[list[int]] = [[] for _ in subjects]
    global_ids: list[int] = []
    # global inclusion zones (a region every subject of a category must stay in): listed
    # with each such subject's own zones, never through the index, because a fix far from
    # the zone is the one that matters: an index lists a global zone only near a fix, and
    # "not listed" reads as OUTSIDE, which is compliant for an exclusion zone only
    global_inclusion: list[int] = []
    polygon_zones: list[int] = []
    # circle zones as (zone, lon, lat, radius_m), projected together after the loop
    circles: list[tuple[int, float, float, float]] = []  # zones whose box comes from their projected vertices

    for z, spec in enumerate(zones):
        if validate:
            check_zone_fields(spec)
        zone_kind[z] = 0 if spec.kind == "inclusion" else 1
        zone_buffer[z] = spec.buffer_m
        if spec.subject_id is not None:
            s = subject_index.get(spec.subject_id)
            if s is None:
                raise ZoneGeometryError(spec.zone_id, f"unknown subject {spec.subject_id!r}")
            subj_zones[s].append(z)
            tz_name = spec.timezone or subjects[s].timezone
        else:
            (global_inclusion if spec.kind == "inclusion" else global_ids).append(z)
            zone_cat[z] = cat_code(spec.category)
            tz_name = spec.timezone or DEFAULT_TIMEZONE
        zone_tz[z] = tz_code(tz_name)
        windows.append([(w.start_s, w.end_s) for w in spec.windows])
        if spec.geometry.get("type") == "Point":
            if validate:
                lon, lat, r = circle_centre(spec)
            else:
                lon, lat = (float(v) for v in spec.geometry["coordinates"][:2])
                r = float(spec.radius_m or 0.0)
            check_region(spec.zone_id, *circle_extent(lon, lat, r))
            shape[z] = K.SHAPE_CIRCLE
            circles.append((z, lon, lat, r))
            zone_rings.append(zone_rings[-1])
            continue
        rings = polygon_rings(spec) if validate else raw_polygon_rings(spec)
        lat_min, lat_max = 90.0, -90.0
        lon_lo, lon_hi = 180.0, -180.0
        for poly in rings:
            for ring in poly:
                arr = np.asarray(ring, dtype=np.float64)
                if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
                    raise ZoneGeometryError(spec.zone_id, "a ring needs positions of two numbers")
                lon_parts.append(arr[:, 0])
                lat_parts.append(arr[:, 1])
                ring_lens.append(arr.shape[0])
                lat_min = min(lat_min, float(arr[:, 1].min()))
                lat_max = max(lat_max, float(arr[:, 1].max()))
                lon_lo = min(lon_lo, float(arr[:, 0].min()))
                lon_hi = max(lon_hi, float(arr[:, 0].max()))
        # every part in the served region (NaN compares false: refused as well)
        check_region(spec.zone_id, lon_lo, lon_hi, lat_min, lat_max)
        zone_rings.append(len(ring_lens))
        zone_k[z] = scale_factor((lat_min + lat_max) / 2.0)
        reach_k[z] = zone_k[z]
        polygon_zones.append(z)

    if circles:
        cz = np.array([c[0] for c in circles], dtype=np.int64)
        clat = np.array([c[2] for c in circles])
        cx, cy = project_with_pyproj(np.array([c[1] for c in circles]), clat)
        ck = np.array([scale_factor(v) for v in clat])
        cr = np.array([c[3] for c in circles])
        circle[cz] = np.column_stack([cx, cy, cr, ck, np.array([c[1] for c in circles]), clat])
        zone_k[cz] = ck
        # the frame's extent of the circle: within r * k_c up to the bound on D / k_c (see
        # K.E1_COEF), doubled, plus a millimetre
        half = cr * ck * (1.0 + 2.0 * K.E1_COEF * cr * ck) + 1e-3
        bbox[cz] = np.column_stack([cx - half, cy - half, cx + half, cy + half])
        reach_k[cz] = ck * CIRCLE_REACH
    ring_off = np.zeros(len(ring_lens) + 1, dtype=np.int64)
    ring_off[1:] = np.cumsum(ring_lens)
    if lon_parts:
        vx, vy = project_with_pyproj(np.concatenate(lon_parts), np.concatenate(lat_parts))
    else:
        vx, vy = np.zeros(0), np.zeros(0)
    zone_ring_off = np.asarray(zone_rings, dtype=np.int64)
    for z in polygon_zones:
        a = ring_off[zone_ring_off[z]]
        b = ring_off[zone_ring_off[z + 1]]
        bbox[z] = (vx[a:b].min(), vy[a:b].min(), vx[a:b].max(), vy[a:b].max())

    win_off, win_flat = _csr([[v for w in ws for v in w] for ws in windows], dtype=np.int64)
    win = win_flat.reshape(-1, 2)
    win_off //= 2

    tz_off = np.zeros(len(tz_names) + 1, dtype=np.int64)
    tz_at_parts: list[tuple[int, ...]] = []
    tz_val_parts: list[tuple[int, ...]] = []
    for name, i in sorted(tz_names.items(), key=lambda kv: kv[1]):
        at, val = _tz_transitions(name)
        tz_at_parts.append(at)
        tz_val_parts.append(val)
        tz_off[i + 1] = tz_off[i] + len(at)
    tz_at = np.fromiter((v for p in tz_at_parts for v in p), dtype=np.int64)
    tz_val = np.fromiter((v for p in tz_val_parts for v in p), dtype=np.int64)

    zone_pos = {spec.zone_id: z for z, spec in enumerate(zones)}
    subj_term = np.array([(s.term_start, s.term_end) for s in subjects], dtype=np.int64).reshape(-1, 2)
    subj_cat = np.array([cat_code(s.category) for s in subjects], dtype=np.int32)
    exc_lists: list[list[int]] = []
    for rules in subjects:
        row: list[int] = []
        for e in rules.exceptions:
            row.extend((e.start, e.end, -1 if e.zone_id is None else zone_pos.get(e.zone_id, -2)))
        exc_lists.append(row)
    exc_off, exc_flat = _csr(exc_lists, dtype=np.int64)
    exc = exc_flat.reshape(-1, 3)
    exc_off //= 3
    for z in global_inclusion:
        for s, rules in enumerate(subjects):
            if zones[z].category is None or rules.category == zones[z].category:
                subj_zones[s].append(z)
    subj_zone_off, subj_zone_ids = _csr(subj_zones)

    if vx.shape[0] >= 2**31:
        raise ZoneGeometryError("-", "too many vertices in one zone set (2**31)")
    zone_slab_off, slab_h, slab_off, slab_seg = K.build_slabs(
        shape, bbox, zone_ring_off, ring_off, vy, SEGMENTS_PER_SLAB, MAX_SLABS_PER_ZONE)
    grid, hash_keys, hash_vals, cell_off, cell_zones, cell_first = _build_grid(global_ids, bbox, reach_k, zone_buffer,
                                                                                grid_cell_m, grid_margin_m)
    gids = np.asarray(global_ids, dtype=np.int32)
    grown = bbox + np.outer(zone_buffer * reach_k, [-1.0, -1.0, 1.0, 1.0])  # box grown by the zone buffer
    core = K.zone_cores(shape, bbox, zone_ring_off, ring_off, vx, vy)
    # rasters where fixes come near the outline: inclusion zones (a person's home) and
    # global zones (each is near many people's fixes; fill pass 80.5 -> 75.7 ms on the
    # benchmark workload). A subject's exclusion zones are far from almost every fix:
    # their box decides, and rasters for them would cost 289 bytes each for nothing.
    rastered = zone_kind == 0
    rastered[gids] = True
    zone_rec, raster = _zone_records(shape, bbox, circle, core, zone_k, zone_buffer, win_off, zone_tz, zone_slab_off,
                                     slab_h, rastered, zone_ring_off, ring_off, vx, vy)
    arrays = ZoneArrays(
        shape=shape, bbox=bbox, circle=circle, zone_ring_off=zone_ring_off, ring_off=ring_off, slab_off=slab_off,
        slab_seg=slab_seg, vx=np.ascontiguousarray(vx), vy=np.ascontiguousarray(vy), zone_k=zone_k,
        win=np.ascontiguousarray(win), tz_off=tz_off, tz_at=tz_at, tz_val=tz_val,
        subj_term=np.ascontiguousarray(subj_term), subj_cat=subj_cat, exc_off=exc_off,
        exc=np.ascontiguousarray(exc), subj_zone_off=subj_zone_off, subj_zone_ids=subj_zone_ids,
        zone_cat=zone_cat, grid=grid, cell_off=cell_off, global_ids=gids,
        n_global_all=int((zone_cat[gids] < 0).sum()),
        zone_rec=zone_rec, raster=raster, cell_rec=_candidate_rows(cell_zones, grown, reach_k, zone_cat, cell_first),
        global_rec=_candidate_rows(gids, grown, reach_k, zone_cat, np.full(gids.shape[0], -1.0)),
        hash_keys=hash_keys, hash_vals=hash_vals,
    )
    return ZoneSet(
        arrays=arrays,
        zone_ids=tuple(z.zone_id for z in zones),
        zone_kind=zone_kind,
        subject_index=subject_index,
        global_zone_ids=frozenset(zones[z].zone_id for z in (*global_ids, *global_inclusion)),
    )


def _zone_records(
    shape: np.ndarray, bbox: np.ndarray, circle: np.ndarray, core: np.ndarray, zone_k: np.ndarray,
    zone_buffer: np.ndarray, win_off: np.ndarray, zone_tz: np.ndarray, zone_slab_off: np.ndarray, slab_h: np.ndarray,
    rastered: np.ndarray, zone_ring_off: np.ndarray, ring_off: np.ndarray, vx: np.ndarray, vy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The packed per-zone rows the evaluator reads (columns ``K.REC_*``) and the distance
    rasters of the polygons marked in ``rastered``."""
    n = shape.shape[0]
    rec = np.zeros((n, K.REC_COLUMNS))
    rec[:, K.REC_SHAPE] = shape
    rec[:, K.REC_X0:K.REC_Y1 + 1] = bbox
    is_circle = shape == K.SHAPE_CIRCLE
    rec[:, K.REC_CX:K.REC_CR + 1] = np.where(is_circle[:, None], circle[:, :3], core)
    rec[:, K.REC_K] = zone_k
    rec[:, K.REC_BUFFER] = zone_buffer
    rec[:, K.REC_WIN_A] = win_off[:-1]
    rec[:, K.REC_WIN_B] = win_off[1:]
    rec[:, K.REC_TZ] = zone_tz
    rec[:, K.REC_SLAB] = zone_slab_off[:-1]
    rec[:, K.REC_NSLAB] = np.diff(zone_slab_off)
    rec[:, K.REC_SLAB_H] = slab_h
    rec[:, K.REC_CELL_W] = (bbox[:, 2] - bbox[:, 0]) / K.RASTER_SIDE
    rec[:, K.REC_CELL_H] = (bbox[:, 3] - bbox[:, 1]) / K.RASTER_SIDE
    rec[:, K.REC_RASTER_STEP] = np.maximum(rec[:, K.REC_CELL_W], rec[:, K.REC_CELL_H]) / K.RASTER_STEPS
    with_raster = np.flatnonzero((shape == K.SHAPE_POLYGON) & rastered
                                 & (rec[:, K.REC_CELL_W] > 0) & (rec[:, K.REC_CELL_H] > 0))
    rec[:, K.REC_RASTER] = -1.0
    rec[is_circle, K.REC_LON] = circle[is_circle, 4]
    rec[is_circle, K.REC_LAT] = circle[is_circle, 5]
    rec[with_raster, K.REC_RASTER] = np.arange(with_raster.shape[0]) * float(K.RASTER_CORNERS)
    raster = K.build_rasters(rec, with_raster.astype(np.int64), zone_ring_off, ring_off, vx, vy)
    return rec, raster


def _candidate_rows(zones: np.ndarray, grown: np.ndarray, zone_k: np.ndarray, zone_cat: np.ndarray,
                    first: np.ndarray) -> np.ndarray:
    """One ``K.CAND_*`` row per listed global zone: grown box, scale factor, category, zone,
    first cell."""
    rows = np.zeros((zones.shape[0], K.CAND_COLUMNS))
    rows[:, K.CAND_X0:K.CAND_Y1 + 1] = grown[zones]
    rows[:, K.CAND_K] = zone_k[zones]
    rows[:, K.CAND_CAT] = zone_cat[zones]
    rows[:, K.CAND_ZONE] = zones
    rows[:, K.CAND_FIRST] = first
    return rows


def _build_grid(
    global_ids: list[int], bbox: np.ndarray, reach_k: np.ndarray, zone_buffer: np.ndarray,
    cell_m: float, margin_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The sparse, multi-level global-zone index (see the note above ``K.G_X0``): the
    ``grid`` rows, the levels' hash tables (keys, cell numbers), the cells' entry offsets,
    and per entry the zone and its first cell (``K.CAND_FIRST``)."""
    ids = np.asarray(global_ids, dtype=np.int64)
    kq = float(reach_k[ids].max()) if ids.size else 1.0
    levels = [(cell_m, margin_m)] + [(c, 0.0) for c in GRID_LEVEL_CELLS_M]
    grid = np.zeros((len(levels), K.G_COLUMNS))
    hash_keys: list[np.ndarray] = []
    hash_vals: list[np.ndarray] = []
    offs: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    zones: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    n_cells = 0
    n_entries = 0
    hoff = 0
    for level, (c, m) in enumerate(levels):
        row = grid[level]
        row[K.G_CELL] = c
        row[K.G_KQ] = kq
        # level 0: a fix within the margin reads its own cell; above: the accuracy square
        # (times kq, plus a metre) spans at most three cells per axis
        row[K.G_REACH] = m if level == 0 else (c - 1.0 - 1e-6 * c) / kq
        if ids.size == 0:
            keys = np.zeros(0, dtype=np.int64)
            entry_q = np.zeros(0, dtype=np.int64)
            first = np.zeros(0, dtype=np.int64)
            big_q = np.zeros(0, dtype=np.int64)
            cell_counts = np.zeros(0, dtype=np.int64)
        else:
            grow = (m + zone_buffer[ids]) * reach_k[ids] + 1.0
            lo_x = bbox[ids, 0] - grow
            lo_y = bbox[ids, 1] - grow
            hi_x = bbox[ids, 2] + grow
            hi_y = bbox[ids, 3] + grow
            row[K.G_X0] = x0 = math.floor(lo_x.min() / c) * c
            row[K.G_Y0] = y0 = math.floor(lo_y.min() / c) * c
            ix0 = np.floor((lo_x - x0) / c).astype(np.int64)
            ix1 = np.floor((hi_x - x0) / c).astype(np.int64)
            iy0 = np.floor((lo_y - y0) / c).astype(np.int64)
            iy1 = np.floor((hi_y - y0) / c).astype(np.int64)
            row[K.G_NX] = nx = int(ix1.max()) + 1
            row[K.G_NY] = ny = int(iy1.max()) + 1
            if max(nx, ny) >= 2**26:
                raise ZoneGeometryError("-", "global zones too far apart for the grid (2**26 cells per axis)")
            w = ix1 - ix0 + 1
            h = iy1 - iy0 + 1
            big = np.maximum(w, h) > K.GRID_MAX_SPAN
            small = np.flatnonzero(~big)
            big_q = np.flatnonzero(big)
            counts = w[small] * h[small]
            q = np.repeat(small, counts)  # position in ids of each (zone, cell) entry
            local = np.arange(q.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
            cx = ix0[q] + local % w[q]
            cy = iy0[q] + local // w[q]
            key = cx * 4_294_967_296 + cy
            order = np.lexsort((q, key))  # by cell, then in zone order
            key = key[order]
            entry_q = q[order]
            first = (ix0[entry_q] * 67_108_864 + iy0[entry_q]) if level > 0 else np.full(entry_q.shape[0], -1)
            keys, starts = np.unique(key, return_index=True)
            cell_counts = np.diff(np.append(starts, key.shape[0]))
        mask = 1
        while mask + 1 < 2 * keys.shape[0]:
            mask = 2 * mask + 1
        hk, hv = K.build_cell_hash(keys, n_cells, mask)
        row[K.G_HOFF] = hoff
        row[K.G_HMASK] = mask
        hash_keys.append(hk)
        hash_vals.append(hv)
        hoff += mask + 1
        offs.append(n_entries + np.cumsum(cell_counts))
        n_cells += keys.shape[0]
        n_entries += entry_q.shape[0]
        row[K.G_BIG_LO] = n_entries
        row[K.G_BIG_HI] = n_entries + big_q.shape[0]
        n_entries += big_q.shape[0]
        zones += [ids[entry_q], ids[big_q]]
        firsts += [first, np.full(big_q.shape[0], -1, dtype=np.int64)]
    return (grid, np.concatenate(hash_keys), np.concatenate(hash_vals), np.concatenate(offs).astype(np.int64),
            np.concatenate(zones).astype(np.int32), np.concatenate(firsts).astype(np.float64))


__all__ = ["DEFAULT_TIMEZONE", "ZoneArrays", "ZoneSet", "compile_zones"]
