"""The ground truth of a simulated run: what the engine must report, written as JSON lines.

The first line describes the run (``"type": "run"``: fleet size, the simulated span,
the compression, the devices and subjects of the fleet); every other line is one
injected event (``"type": "event"``) that must raise exactly one alert:

    id            stable id of the event ("<scenario>:<device>:<n>")
    scenario      curfew_breach, exclusion_entry, drive_through, victim_approach,
                  strap_cut, case_tamper, battery_drain, gps_loss, communication_loss,
                  coverage_gap, late_evidence, clock_skew, duplicate_resends, last_will
    device_id, subject_id
    kind          the alert kind expected (inclusion_zone_left, exclusion_zone_entered,
                  exclusion_zone_crossed, victim_proximity, strap_cut, case_tamper,
                  battery_low, battery_critical, gps_fix_lost, communication_loss,
                  device_clock_off, device_offline)
    clock         "device": start_ms/end_ms are device times of fixes (the alert's
                  fix_time must fall inside, give or take ``slack_ms``); "any": the
                  alert is matched on device and kind alone (status-based conditions,
                  whose device time is set when the report is sent)
    start_ms, end_ms, slack_ms
    zone_id       the zone involved, when there is one
    late          True when the engine must mark the alert late (evidence uploaded
                  after a newer live fix)
    event_wall_ms the wall time at which the event happened in the replay (filled in by
                  the publisher: the replay's start + simulated time / compression)
    allowed       other alert kinds this device may legitimately raise (not false)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TruthEvent:
    id: str
    scenario: str
    device_id: str
    subject_id: str | None
    kind: str
    start_ms: int
    end_ms: int
    clock: str = "device"
    slack_ms: int = 0
    zone_id: str | None = None
    late: bool = False
    start_sim_s: float = 0.0
    event_wall_ms: int | None = None
    allowed: list[str] = field(default_factory=list)


@dataclass
class RunInfo:
    seed: int
    devices: list[str]
    subjects: list[str]
    span_s: float
    compression: float
    anchor_ms: int
    scenario_devices: dict[str, str]  # device -> scenario ("compliant" for the rest)
    started_wall_ms: int | None = None
    ended_wall_ms: int | None = None
    # the compliant background fleet (simulator.background): its devices and how long
    # (wall seconds) they reported; none of them has a truth event
    background: list[str] = field(default_factory=list)
    background_s: float = 0.0

    @property
    def device_days(self) -> float:
        return (len(self.devices) * self.span_s + len(self.background) * self.background_s) / 86400.0


def write_truth(path: str | Path, run: RunInfo, events: list[TruthEvent]) -> None:
    """Write (atomically) the run line and one line per event."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with tmp.open("w") as fh:
        fh.write(json.dumps({"type": "run", **asdict(run)}) + "\n")
        for e in events:
            fh.write(json.dumps({"type": "event", **asdict(e)}) + "\n")
    tmp.replace(p)


def read_truth(path: str | Path) -> tuple[RunInfo, list[TruthEvent]]:
    run: RunInfo | None = None
    events: list[TruthEvent] = []
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        obj: dict[str, Any] = json.loads(line)
        kind = obj.pop("type")
        if kind == "run":
            run = RunInfo(**obj)
        elif kind == "event":
            events.append(TruthEvent(**obj))
    if run is None:
        raise ValueError(f"{path}: no run line")
    return run, events


__all__ = ["RunInfo", "TruthEvent", "read_truth", "write_truth"]
