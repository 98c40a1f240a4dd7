"""Plausibility flags of a fix. A flagged fix is stored (it is evidence) but it never
drives zone state: a GPS glitch must not open a violation nor close one.

- ``teleport``: faster than MAX_SPEED_MPS from the device's previous plausible fix
- ``zero_island``: at (0, 0), the classic uninitialised-receiver position
- ``future_time``: device time more than MAX_FUTURE_S ahead of the server clock
- ``poor_accuracy``: accuracy radius worse than MAX_ACCURACY_M
"""

from __future__ import annotations

import math

from telemetry.model import Fix, Position

MAX_SPEED_MPS = 70.0  # 252 km/h
MAX_FUTURE_S = 300
MAX_ACCURACY_M = 500.0
ZERO_ISLAND_DEG = 0.01
_M_PER_DEG_LAT = 111_195.0


def flags(fix: Fix, previous: Position | None, now_ms: int) -> list[str]:
    out: list[str] = []
    if abs(fix.lat) < ZERO_ISLAND_DEG and abs(fix.lon) < ZERO_ISLAND_DEG:
        out.append("zero_island")
    if fix.time_ms > now_ms + MAX_FUTURE_S * 1000:
        out.append("future_time")
    if fix.accuracy_m > MAX_ACCURACY_M:
        out.append("poor_accuracy")
    if previous is not None and fix.time_ms > previous.t_ms and not out:
        limit = MAX_SPEED_MPS * (fix.time_ms - previous.t_ms) / 1000.0
        # a local flat-earth distance is within 0.5% here: plenty for a plausibility flag,
        # and ten times cheaper than projecting both fixes (this runs for every fix)
        dy = (fix.lat - previous.lat) * _M_PER_DEG_LAT
        dx = (fix.lon - previous.lon) * _M_PER_DEG_LAT * math.cos(math.radians((fix.lat + previous.lat) / 2.0))
        if dx * dx + dy * dy > limit * limit:
            out.append("teleport")
    return out


__all__ = ["MAX_ACCURACY_M", "MAX_FUTURE_S", "MAX_SPEED_MPS", "flags"]
