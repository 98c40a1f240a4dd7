"""The answer to "who was within R metres of P between t1 and t2": prefiltered fixes in,
subjects and devices out, each certain or possible with the fixes that make it so.

A device is **certain** when at least one of its fixes is certain (see
:mod:`telemetry.reach`), else **possible** when one is possible; a subject takes the
strongest class of its devices. Fixes are listed per device in time order, the certain
ones first when a device has more than ``fixes_limit`` (the counts are always complete).
Pure: rows in, a plain dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from telemetry.reach import CERTAIN, LABELS, POSSIBLE, classify_reach

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Circle:
    lat: float
    lon: float
    radius_m: float


def _fix_out(row: Row, distance_m: float, cls: int) -> Row:
    return {"device_time": row["device_time"], "lat": row["lat"], "lon": row["lon"], "accuracy_m": row["accuracy_m"],
            "source": row["source"], "flags": list(row.get("flags") or []), "distance_m": round(distance_m, 3),
            "class": LABELS[cls]}


def _device_out(device_id: str, kind: str | None, items: list[tuple[Row, float, int]], fixes_limit: int) -> Row:
    certain = [it for it in items if it[2] == CERTAIN]
    possible = [it for it in items if it[2] == POSSIBLE]
    shown = sorted((certain + possible)[:fixes_limit], key=lambda it: it[0]["device_time"])
    return {"device_id": device_id, "device_kind": kind, "class": "certain" if certain else "possible",
            "certain_fixes": len(certain), "possible_fixes": len(possible),
            "first_time": items[0][0]["device_time"], "last_time": items[-1][0]["device_time"],
            "fixes": [_fix_out(r, d, c) for r, d, c in shown], "fixes_truncated": len(items) > len(shown)}


def answer(rows: Sequence[Row], circle: Circle, *, fixes_limit: int) -> list[Row]:
    """Subjects (``subject_id`` null for fixes of a device worn by nobody) with their
    devices, certain subjects first, then by id. ``rows`` are the prefilter's fixes."""
    if not rows:
        return []
    d, cls = classify_reach(np.array([r["lat"] for r in rows]), np.array([r["lon"] for r in rows]),
                            np.array([r["accuracy_m"] for r in rows]), center_lat=circle.lat, center_lon=circle.lon,
                            radius_m=circle.radius_m)
    by_device: dict[tuple[str | None, str], list[tuple[Row, float, int]]] = {}
    kinds: dict[str, str | None] = {}
    for row, dist, c in zip(rows, d.tolist(), cls.tolist(), strict=True):
        if c in (CERTAIN, POSSIBLE):
            by_device.setdefault((row["subject_id"], row["device_id"]), []).append((row, dist, c))
            kinds[row["device_id"]] = row.get("device_kind")
    subjects: dict[str | None, list[Row]] = {}
    for (subject_id, device_id), items in by_device.items():
        items.sort(key=lambda it: it[0]["device_time"])
        subjects.setdefault(subject_id, []).append(_device_out(device_id, kinds[device_id], items, fixes_limit))
    out = []
    for subject_id, devices in subjects.items():
        devices.sort(key=lambda dev: (dev["class"] != "certain", dev["device_id"]))
        out.append({"subject_id": subject_id, "class": devices[0]["class"], "devices": devices})
    out.sort(key=lambda s: (s["class"] != "certain", s["subject_id"] is None, s["subject_id"] or ""))
    return out


__all__ = ["Circle", "answer"]
