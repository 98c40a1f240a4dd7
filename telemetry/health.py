"""Readiness: the process's parts, each ok or failing, reported by their owners, read by ``/readyz``.

Parts (names in ``PARTS``; a supervised task adds ``task.<name>``):

- ``database``: the last database operation of this process worked (an ingest batch or a
  periodic job, reported by the ingest worker; the ``/readyz`` probe through the API's
  pool). Last report wins: each carries its time.
- ``broker``: the ingest MQTT session is connected.
- ``ingest``: the ingest loop is alive: the age of its last turn and of its last committed
  batch, and its backlog (messages received and not yet stored and acknowledged).
- ``zones``: zones left out of the compiled set because they do not compile (zone ids
  only). Reported, but it does not gate readiness: the rest of the fleet is evaluated.
- ``task.<name>``: a supervised task is running, waiting to restart, or has failed.

The process is *ready* when every critical part is ok, so ``/readyz`` says 503 when ingest
is stuck or down: the broker session is not connected, the ingest task is restarting,
messages wait with no batch committed for longer than ``stall_after_s``, or the loop has
not turned for that long plus its own wake-up interval.

No personal data: reporters write kinds of failure (an exception's class, a SQLSTATE),
counts, ages and zone ids, never coordinates, names or error texts that may quote data
(those go to the log). Reports may come from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

DATABASE = "database"
BROKER = "broker"
INGEST = "ingest"
ZONES = "zones"
PARTS = (DATABASE, BROKER, INGEST, ZONES)

Info = Mapping[str, Any]  # JSON-able values: numbers, strings, lists of zone ids


@dataclass(frozen=True)
class Part:
    ok: bool
    detail: str = ""
    critical: bool = True
    since: float = 0.0  # unix time it entered this state (ok or failing)
    updated: float = 0.0  # unix time of the last report
    info: Info = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "critical": self.critical, "detail": self.detail,
                "since": _iso(self.since), "updated": _iso(self.updated), **self.info}


@dataclass(frozen=True)
class Readiness:
    ready: bool
    parts: dict[str, Part]

    @property
    def failing(self) -> list[str]:
        """The critical parts that are not ok (why the process is not ready)."""
        return sorted(n for n, p in self.parts.items() if p.critical and not p.ok)

    def as_json(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not_ready", "failing": self.failing,
                "parts": {n: p.as_json() for n, p in sorted(self.parts.items())}}


Probe = Callable[[], Part]


class Health:
    """The parts of one process. ``report`` sets a part; ``probe`` registers a function
    that computes one when readiness is read (for states that age, like a stalled loop)."""

    def __init__(self, *, stall_after_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._parts: dict[str, Part] = {}
        self._probes: dict[str, Probe] = {}
        self._probe_since: dict[str, tuple[bool, float]] = {}

    def report(self, name: str, *, ok: bool, detail: str = "", critical: bool = True, **info: Any) -> None:
        now = self._clock()
        with self._lock:
            old = self._parts.get(name)
            since = old.since if old is not None and old.ok == ok else now
            self._parts[name] = Part(ok, detail, critical, since, now, info)

    def ok(self, name: str, detail: str = "", *, critical: bool = True, **info: Any) -> None:
        self.report(name, ok=True, detail=detail, critical=critical, **info)

    def failing(self, name: str, detail: str, *, critical: bool = True, **info: Any) -> None:
        self.report(name, ok=False, detail=detail, critical=critical, **info)

    def probe(self, name: str, fn: Probe) -> None:
        with self._lock:
            self._probes[name] = fn

    def part(self, name: str) -> Part | None:
        return self.readiness().parts.get(name)

    def readiness(self) -> Readiness:
        with self._lock:
            parts = dict(self._parts)
            probes = dict(self._probes)
        now = self._clock()
        for name, fn in probes.items():
            try:
                part = fn()
            except Exception as exc:  # a broken probe is a failing part, not a broken endpoint
                part = Part(False, f"probe failed: {type(exc).__name__}")
            with self._lock:
                was = self._probe_since.get(name)
                since = was[1] if was is not None and was[0] == part.ok else now
                self._probe_since[name] = (part.ok, since)
            parts[name] = replace(part, since=since, updated=now)
        return Readiness(all(p.ok for p in parts.values() if p.critical), parts)


def ingest_part(*, backlog: int, batch_age_s: float | None, backlog_age_s: float | None, loop_age_s: float,
                loop_interval_s: float, stall_after_s: float) -> Part:
    """The ingest loop's part. Stuck: messages have waited (since the last batch, or since
    the backlog began if later) longer than ``stall_after_s``, or the loop has not turned
    for ``loop_interval_s + stall_after_s`` (it wakes at least every ``loop_interval_s``)."""
    info = {"backlog": backlog, "last_batch_age_s": None if batch_age_s is None else round(batch_age_s, 3),
            "loop_age_s": round(loop_age_s, 3), "stall_after_s": stall_after_s}
    # waiting since the backlog began or the last batch, whichever is later
    waited = backlog_age_s if batch_age_s is None or backlog_age_s is None else min(backlog_age_s, batch_age_s)
    if waited is not None and backlog > 0 and waited > stall_after_s:
        return Part(False, f"stuck: {backlog} messages waiting, no batch for {waited:.0f} s", info=info)
    if loop_age_s > loop_interval_s + stall_after_s:
        return Part(False, f"stuck: the loop has not turned for {loop_age_s:.0f} s", info=info)
    return Part(True, "consuming", info=info)


def _iso(ts: float) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


__all__ = ["BROKER", "DATABASE", "INGEST", "PARTS", "ZONES", "Health", "Part", "Readiness", "ingest_part"]
