"""The accuracy report: the alerts an engine raised, read back through the API, against
the ground truth of the run.

Matching: an alert matches an injected event of the same device and kind (for
fix-based events, when the alert's fix time lies in the event's window, give or take
its slack); each event takes its first matching alert. Every other alert of a fleet
device is false, a second alert for an already matched event included, unless its
kind is one the event ``allowed``. A matched event whose ``late`` differs from the
alert's ``details.late`` counts in ``late_mismatch``.

Delays: event -> alert stored is ``created_at`` minus the moment the evidence was due
in the replay (a fix's simulated time mapped to wall time: for a fix uploaded after a
coverage gap that includes the wait; a status report's send time); publish -> visible
is when an ``AlertWatcher`` first saw the alert through the API minus when the
message with its evidence was published. ``communication_loss`` is left out of both:
no message triggers it, its delay is the silence threshold plus the check interval. Counts are exact; times depend on the machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from simulator.registry import Api, fetch_alerts
from simulator.truth import RunInfo, TruthEvent

# raised by the engine's periodic check, not by a message: no publish -> alert delay
NO_TRIGGER = frozenset({"communication_loss"})


def _ms(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100.0 * (len(s) - 1))))]


class AlertWatcher:
    """Polls ``GET /alerts?after_id=`` in a thread and records when each alert was first
    visible (wall ms)."""

    def __init__(self, api: Api, *, interval_s: float = 0.1) -> None:
        self._api = api
        self._interval = interval_s
        self.first_seen: dict[int, int] = {}
        self._after = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-watcher", daemon=True)

    def __enter__(self) -> AlertWatcher:
        self._after = max((a["id"] for a in self._api.get("/alerts", limit=1)), default=0)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                page = self._api.get("/alerts", after_id=self._after, limit=1000)
            except Exception:  # the API is busy or restarting: try again at the next turn
                page = []
            now = int(time.time() * 1000)
            for a in page:
                self.first_seen.setdefault(a["id"], now)
            if page:
                self._after = max(a["id"] for a in page)
            if len(page) < 1000:
                self._stop.wait(self._interval)


@dataclass
class ScenarioScore:
    expected: int = 0
    detected: int = 0

    @property
    def recall(self) -> float:
        return 1.0 if self.expected == 0 else self.detected / self.expected


@dataclass
class Report:
    devices: int
    device_days: float
    scenarios: dict[str, ScenarioScore]
    expected: int
    detected: int
    false_alerts: int
    late_mismatch: int
    allowed_extra: int
    missed: list[str] = field(default_factory=list)
    false: list[dict[str, Any]] = field(default_factory=list)
    event_to_stored_ms: list[float] = field(default_factory=list)
    publish_to_visible_ms: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return 1.0 if self.expected == 0 else self.detected / self.expected

    @property
    def false_per_1k_device_days(self) -> float:
        return self.false_alerts / self.device_days * 1000.0 if self.device_days else 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON-able figures (no per-alert lists)."""
        return {
            "devices": self.devices, "device_days": round(self.device_days, 3), "expected": self.expected,
            "detected": self.detected, "recall": self.recall, "false_alerts": self.false_alerts,
            "false_per_1k_device_days": round(self.false_per_1k_device_days, 3),
            "late_mismatch": self.late_mismatch, "allowed_extra": self.allowed_extra,
            "scenarios": {k: {**asdict(v), "recall": v.recall} for k, v in sorted(self.scenarios.items())},
            "event_to_stored_p50_ms": percentile(self.event_to_stored_ms, 50),
            "event_to_stored_p99_ms": percentile(self.event_to_stored_ms, 99),
            "publish_to_visible_p50_ms": percentile(self.publish_to_visible_ms, 50),
            "publish_to_visible_p99_ms": percentile(self.publish_to_visible_ms, 99),
            "missed": self.missed,
        }

    def text(self) -> str:
        lines = [f"{'scenario':<22}{'expected':>9}{'detected':>9}{'recall':>8}"]
        for name, s in sorted(self.scenarios.items()):
            lines.append(f"{name:<22}{s.expected:>9}{s.detected:>9}{s.recall:>8.3f}")
        sm = self.summary()
        lines += [
            f"recall {self.recall:.3f} ({self.detected}/{self.expected}); false alerts {self.false_alerts}"
            f" ({sm['false_per_1k_device_days']} per 1,000 device-days over {self.device_days:.2f});"
            f" late flag wrong {self.late_mismatch}",
            f"event -> alert stored p50/p99: {_fmt(sm['event_to_stored_p50_ms'])} / {_fmt(sm['event_to_stored_p99_ms'])};"
            f" publish -> alert visible p50/p99: {_fmt(sm['publish_to_visible_p50_ms'])} /"
            f" {_fmt(sm['publish_to_visible_p99_ms'])}",
        ]
        lines += [f"missed: {m}" for m in self.missed]
        lines += [f"false: {a['kind']} {a['device_id']} fix {a.get('fix_time')} status {a.get('status_time')}"
                  for a in self.false]
        return "\n".join(lines)


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f} ms"


def evaluate(run: RunInfo, events: list[TruthEvent], alerts: Iterable[dict[str, Any]], *,
             published: dict[tuple[str, int], int] | None = None,
             first_seen: dict[int, int] | None = None) -> Report:
    """Score ``alerts`` (API bodies) against the truth of ``run``."""
    fleet = set(run.devices) | set(run.background)
    by_device: dict[str, list[TruthEvent]] = {}
    for e in events:
        by_device.setdefault(e.device_id, []).append(e)
    scores: dict[str, ScenarioScore] = {}
    for e in events:
        scores.setdefault(e.scenario, ScenarioScore()).expected += 1
    matched: dict[str, dict[str, Any]] = {}
    report = Report(len(run.devices) + len(run.background), run.device_days, scores, len(events), 0, 0, 0, 0)
    started = run.started_wall_ms or 0
    for a in sorted(alerts, key=lambda a: a["id"]):
        if a["device_id"] not in fleet:
            continue
        fix_ms, status_ms = _ms(a.get("fix_time")), _ms(a.get("status_time"))
        own = by_device.get(a["device_id"], [])
        hit = None
        for e in own:
            if e.kind != a["kind"] or e.id in matched:
                continue
            if e.clock == "device" and (fix_ms is None or not e.start_ms - e.slack_ms <= fix_ms <= e.end_ms + e.slack_ms):
                continue
            hit = e
            break
        if hit is None:
            if any(a["kind"] in e.allowed for e in own):
                report.allowed_extra += 1
            else:
                report.false_alerts += 1
                report.false.append(a)
            continue
        matched[hit.id] = a
        scores[hit.scenario].detected += 1
        report.detected += 1
        if bool((a.get("details") or {}).get("late")) != hit.late:
            report.late_mismatch += 1
        if hit.kind in NO_TRIGGER:
            continue
        created = _ms(a["created_at"])
        evidence = fix_ms if fix_ms is not None else status_ms
        sent = None if published is None or evidence is None else published.get((a["device_id"], evidence))
        due: float | None
        if fix_ms is not None and started:
            due = started + (fix_ms - run.anchor_ms) / run.compression
        elif sent is not None:
            due = sent
        else:
            due = started + hit.start_sim_s * 1000 / run.compression if started else None
        if created is not None and due is not None:
            report.event_to_stored_ms.append(float(created - due))
        seen = None if first_seen is None else first_seen.get(a["id"])
        if seen is not None and sent is not None:
            report.publish_to_visible_ms.append(float(seen - sent))
    report.missed = [e.id for e in events if e.id not in matched]
    return report


def verify(api: Api, run: RunInfo, events: list[TruthEvent], **kw: Any) -> Report:
    """Read the fleet's alerts through the API and score them."""
    return evaluate(run, events, fetch_alerts(api), **kw)


def wait_for_truth(api: Api, run: RunInfo, events: list[TruthEvent], *, timeout_s: float, poll_s: float = 1.0,
                   settle_s: float = 2.0, **kw: Any) -> Report:
    """Verify repeatedly until every event is detected (then ``settle_s`` more, so late
    false alerts show too) or ``timeout_s`` passes; the last report."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = verify(api, run, events, **kw)
        if report.detected == report.expected:
            time.sleep(settle_s)
            return verify(api, run, events, **kw)
        if time.monotonic() > deadline:
            return report
        time.sleep(poll_s)


__all__ = ["NO_TRIGGER", "AlertWatcher", "Report", "ScenarioScore", "evaluate", "percentile", "verify", "wait_for_truth"]
