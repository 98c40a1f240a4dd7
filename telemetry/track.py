"""A subject's track as GeoJSON (RFC 7946): fixes in, a FeatureCollection out.

Per device, in device-time order:

- a ``Point`` per fix (``properties.kind = "fix"``: device, device time, accuracy, source,
  speed, heading, plausibility flags);
- a ``LineString`` per continuous stretch (``kind = "stretch"``) of at least two
  plausible fixes: a stretch ends where consecutive fixes are further apart in time than
  the gap threshold;
- a ``LineString`` of the two fixes around each gap (``kind = "gap"``, with its start,
  end and length): drawn dashed, or not at all, it is where the track is not known.

The gap threshold is ``gap_factor`` times the device profile's reporting interval (a
device missing from the registry: ``DEFAULT_INTERVAL_S``). Fixes flagged implausible are
Points only: they are stored as evidence but are not part of the path.
Pure: rows in, a plain dict out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

Row = dict[str, Any]
DEFAULT_INTERVAL_S = 300
DEFAULT_GAP_FACTOR = 3.0


def _pos(row: Row) -> list[float]:
    return [row["lon"], row["lat"]]


def _point(row: Row) -> Row:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": _pos(row)},
            "properties": {"kind": "fix", "device_id": row["device_id"], "device_time": row["device_time"],
                           "accuracy_m": row["accuracy_m"], "source": row["source"],
                           "speed_mps": row.get("speed_mps"), "heading_deg": row.get("heading_deg"),
                           "flags": list(row.get("flags") or [])}}


def _line(kind: str, device_id: str, rows: Sequence[Row], **props: Any) -> Row:
    return {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [_pos(r) for r in rows]},
            "properties": {"kind": kind, "device_id": device_id, "start": rows[0]["device_time"],
                           "end": rows[-1]["device_time"], **props}}


def _stretches(rows: list[Row], threshold_s: float) -> Iterator[list[Row]]:
    current: list[Row] = []
    for row in rows:
        if current and (row["device_time"] - current[-1]["device_time"]).total_seconds() > threshold_s:
            yield current
            current = []
        current.append(row)
    if current:
        yield current


def device_features(device_id: str, rows: list[Row], threshold_s: float) -> list[Row]:
    """The features of one device's fixes (in time order)."""
    features = [_point(r) for r in rows]
    stretches = list(_stretches([r for r in rows if not r.get("flags")], threshold_s))
    for i, stretch in enumerate(stretches):
        if len(stretch) >= 2:
            features.append(_line("stretch", device_id, stretch, fixes=len(stretch)))
        if i + 1 < len(stretches):
            before, after = stretch[-1], stretches[i + 1][0]
            gap_s = (after["device_time"] - before["device_time"]).total_seconds()
            features.append(_line("gap", device_id, [before, after], duration_s=gap_s, threshold_s=threshold_s))
    return features


def track_collection(rows: Sequence[Row], *, gap_factor: float = DEFAULT_GAP_FACTOR) -> tuple[list[Row], list[Row]]:
    """(features, per-device summaries) for fixes ordered by device and time; each row
    has the device's ``report_interval_s`` (or null)."""
    features: list[Row] = []
    devices: list[Row] = []
    for device_id, group in groupby(rows, key=lambda r: r["device_id"]):
        fixes = list(group)
        interval = fixes[0].get("report_interval_s") or DEFAULT_INTERVAL_S
        threshold = gap_factor * interval
        feats = device_features(device_id, fixes, threshold)
        gaps = sum(1 for f in feats if f["properties"]["kind"] == "gap")
        devices.append({"device_id": device_id, "report_interval_s": interval, "gap_threshold_s": threshold,
                        "fixes": len(fixes), "gaps": gaps})
        features.extend(feats)
    return features, devices


__all__ = ["DEFAULT_GAP_FACTOR", "DEFAULT_INTERVAL_S", "device_features", "track_collection"]
