"""When a straight path between two fixes certainly crossed an exclusion zone.

``geofence.path_crosses`` says whether the straight line between the two *reported*
positions meets a zone. The true positions are only known to lie within each fix's
accuracy circle, so a line that clips a zone by less than that proves nothing: a person
walking past a school fence 2 m outside it, reported with 12 m accuracy, can be drawn
7 m inside (found by the simulator's false-alarm scenarios).

The rule here, under the same straight-line assumption: let ``m`` be the larger of the
two accuracy radii. Any true path (from a point within ``m`` of the first report to a
point within ``m`` of the second) passes, at each fraction ``t`` of the way, within
``m`` of the reported line's point at ``t``. So if the disc of radius ``m`` around some
point of the reported line lies inside the zone, the true path entered it. The line is
sampled at most every ``max(MIN_SPACING_M, m / 2, length / (MAX_SAMPLES - 1))`` metres
(5 m for any path under 20 km with fixes of 10 m or better), each sample evaluated like a
fix with accuracy ``m`` at the interpolated time, so schedules, absences and the
supervision term apply as they would to a fix there. A crossing whose part deeper than
``m`` is shorter than the spacing can be missed (a miss, never a false alert); a drive
through the middle of a zone is far deeper than that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from geofence import ZoneSet, ZoneState, evaluate, ground_distance_m
from telemetry.model import Position

MIN_SPACING_M = 5.0
MAX_SAMPLES = 4096


def certain_crossings(zone_set: ZoneSet, subject: Sequence[int], starts: Sequence[Position],
                      ends: Sequence[Position], zone: Sequence[int]) -> np.ndarray:
    """For each candidate k (the path from ``starts[k]`` to ``ends[k]`` of subject index
    ``subject[k]``, which met ``zone[k]``), whether the true path certainly entered it."""
    n = len(zone)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    lon: list[np.ndarray] = []
    lat: list[np.ndarray] = []
    t_s: list[np.ndarray] = []
    acc: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for k in range(n):
        a, b = starts[k], ends[k]
        margin = max(a.accuracy_m, b.accuracy_m)
        length = ground_distance_m(a.lon, a.lat, b.lon, b.lat)
        count = min(MAX_SAMPLES, max(2, math.ceil(length / max(MIN_SPACING_M, margin / 2.0)) + 1))
        f = np.linspace(0.0, 1.0, count)
        lon.append(a.lon + (b.lon - a.lon) * f)
        lat.append(a.lat + (b.lat - a.lat) * f)
        t_s.append((a.t_ms + (b.t_ms - a.t_ms) * f) // 1000)
        acc.append(np.full(count, margin))
        owner.append(np.full(count, k))
    who = np.concatenate(owner)
    ev = evaluate(zone_set, np.concatenate(lon), np.concatenate(lat), np.concatenate(acc),
                  np.asarray(subject, dtype=np.int32)[who], np.concatenate(t_s).astype(np.int64))
    wanted = np.asarray(zone, dtype=np.int64)
    for i in range(who.shape[0]):
        k = int(who[i])
        if out[k]:
            continue
        for p in ev.pairs_of(i):
            if int(ev.pair_zone[p]) == wanted[k] and int(ev.pair_state[p]) == ZoneState.INSIDE:
                out[k] = True
                break
    return out


__all__ = ["MAX_SAMPLES", "MIN_SPACING_M", "certain_crossings"]
