"""What a zone state means over time: the dwell state machine of one (device, rule).

``geofence`` says where a fix is; this module decides when that opens or closes a
violation. A violation opens after ``open_fixes`` consecutive violating fixes spanning
at least ``open_s`` seconds, and closes after ``close_fixes`` compliant fixes spanning
``close_s``. Neutral fixes (uncertain state, or not GPS) neither count nor reset; a
rule that stops applying (schedule, term, authorised absence) closes at once.

Defaults: open on the first violating GPS fix (an officer must hear of a victim-zone
entry at once; the uncertainty band already keeps GPS noise at a boundary from
counting), close only after two compliant fixes, so a device wobbling on a boundary
raises one alert, not one per wobble.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VIOLATING = 1
COMPLIANT = -1
NEUTRAL = 0
RULE_OFF = 2

Action = Literal["open", "close"] | None


@dataclass(frozen=True, slots=True)
class Dwell:
    open_fixes: int = 1
    open_s: int = 0
    close_fixes: int = 2
    close_s: int = 0


@dataclass(frozen=True, slots=True)
class Pending:
    """Consecutive fixes pointing the other way: how many, since when (epoch ms)."""

    count: int
    first_ms: int


DEFAULT_DWELL = Dwell()


def step(is_open: bool, pending: Pending | None, signal: int, t_ms: int, dwell: Dwell) -> tuple[Action, Pending | None]:
    """One fix's effect: (action, new pending counter)."""
    if signal == NEUTRAL:
        return None, pending
    if signal == RULE_OFF:
        return ("close" if is_open else None), None
    toward = (signal == COMPLIANT) if is_open else (signal == VIOLATING)
    if not toward:
        return None, None
    p = Pending(1, t_ms) if pending is None else Pending(pending.count + 1, pending.first_ms)
    need_fixes, need_s = (dwell.close_fixes, dwell.close_s) if is_open else (dwell.open_fixes, dwell.open_s)
    if p.count >= need_fixes and t_ms - p.first_ms >= need_s * 1000:
        return ("close" if is_open else "open"), None
    return None, p


__all__ = ["COMPLIANT", "DEFAULT_DWELL", "NEUTRAL", "RULE_OFF", "VIOLATING", "Action", "Dwell", "Pending", "step"]
