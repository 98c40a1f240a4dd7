"""The processing pipeline: one micro-batch of MQTT messages in, one transaction out.

Steps, each a small function over the whole batch:
  decode -> resolve devices -> order and dedupe -> COPY positions (idempotent on
  (device_id, device_time)) -> evaluate new fixes -> turn state changes into violations
  and alerts -> dead letters -> commit.

Membership and meaning stay apart (traccar's habit): ``geofence`` says which zones a fix
is in and how certain; this module decides what that means for violations and alerts.

State rules (DESIGN.md section 4):
- Fixes are evaluated in device-time order. A fix no newer than the device's latest
  evaluated fix is *late*: stored (flag ``late``) but it never changes a violation.
- UNCERTAIN never changes state. INACTIVE (rule not in force) closes an open violation.
- A cell/wifi-sourced fix never opens a violation on its own.
- Every alert references a stored fix (foreign key), written in the same transaction.

The in-memory state (open violations, latest fix time per device) only advances after
the commit succeeds; a failed batch raises StorageError and can be retried as a whole.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from geofence import ZoneState, evaluate
from telemetry import metrics
from telemetry.errors import DecodeError, StorageError
from telemetry.snapshot import REGISTRY_CHANNEL, RegistrySnapshot, load_snapshot
from telemetry.wire import Fix, decode_fixes

log = logging.getLogger(__name__)

ALERTS_CHANNEL = "nazorat_alerts"
DEAD_LETTER_MAX_BYTES = 8192
_EXCLUSION = 1


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    reason: str
    payload: bytes


@dataclass
class BatchOutcome:
    messages: int = 0
    fixes: int = 0
    stored: int = 0
    duplicates: int = 0
    late: int = 0
    dead_letters: int = 0
    alert_ids: list[int] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Transition:
    fix: Fix
    subject_id: str
    zone_id: str
    opens: bool
    kind: str = ""
    distance_m: float | None = None


def decode_batch(messages: Sequence[InboundMessage]) -> tuple[list[Fix], list[DeadLetter]]:
    fixes: list[Fix] = []
    dead: list[DeadLetter] = []
    for m in messages:
        try:
            good, bad = decode_fixes(m.topic, m.payload)
        except DecodeError as exc:
            dead.append(DeadLetter(m.topic, exc.reason, m.payload))
            continue
        fixes.extend(good)
        dead.extend(DeadLetter(m.topic, e.reason, e.raw) for e in bad)
    return fixes, dead


def order_and_dedupe(fixes: list[Fix]) -> list[Fix]:
    """Sort by (device, device time) and keep the first of exact (device, time) repeats."""
    fixes = sorted(fixes, key=lambda f: (f.device_id, f.time_ms))
    out: list[Fix] = []
    last: tuple[str, int] | None = None
    for f in fixes:
        key = (f.device_id, f.time_ms)
        if key != last:
            out.append(f)
            last = key
    return out


def _reason_label(reason: str) -> str:
    """A short, bounded label for the Prometheus counter."""
    text = reason.split(": ", 1)[1] if reason.startswith("fix[") else reason
    return text.split(" (")[0].split(":")[0][:40]


class Pipeline:
    """Owns one database connection and the committed evaluation state of its devices."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.Connection[Any] | None = None
        self._snapshot: RegistrySnapshot | None = None
        self._registry_dirty = True
        self._open: dict[tuple[str, str], int] = {}  # (device, zone) -> violation id
        self._last_ms: dict[str, int] = {}

    # --- connection and registry ------------------------------------------------------
    def mark_registry_changed(self) -> None:
        self._registry_dirty = True

    @property
    def snapshot(self) -> RegistrySnapshot | None:
        return self._snapshot

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self._url, connect_timeout=5)
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming ("
            " device_id text, t_ms bigint, subject_id text, lat float8, lon float8, accuracy_m float8,"
            " speed_mps float8, heading_deg float8, source text, seq bigint, late boolean)"
            " ON COMMIT DELETE ROWS"
        )
        conn.execute(f"LISTEN {REGISTRY_CHANNEL}")
        rows = conn.execute("SELECT device_id, zone_id, id FROM violations WHERE closed_at IS NULL").fetchall()
        conn.commit()
        self._open = {(d, z): int(i) for d, z, i in rows}
        self._last_ms = {}
        self._conn = conn
        self._registry_dirty = True
        metrics.DB_UP.set(1)
        metrics.OPEN_VIOLATIONS.set(len(self._open))
        return conn

    def _refresh_registry(self, conn: psycopg.Connection[Any]) -> RegistrySnapshot:
        # registry NOTIFYs: those psycopg collected during earlier queries, plus one
        # non-blocking poll of the socket (no round trip to the server)
        for _notify in conn.notifies(timeout=0.0):
            self._registry_dirty = True
        if self._registry_dirty or self._snapshot is None:
            self._snapshot = load_snapshot(conn)
            conn.commit()
            self._registry_dirty = False
        return self._snapshot

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- the batch ----------------------------------------------------------------------
    def process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        """Store and evaluate one batch atomically. Raises StorageError when the database
        fails; nothing of the batch is then committed and it can be retried whole."""
        started = time.perf_counter()
        try:
            outcome = self._process(messages)
        except psycopg.Error as exc:
            metrics.DB_ERRORS.inc()
            metrics.DB_UP.set(0)
            self.close()
            raise StorageError(f"batch not stored: {exc}") from exc
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return outcome

    def _process(self, messages: Sequence[InboundMessage]) -> BatchOutcome:
        conn = self._connection()
        snap = self._refresh_registry(conn)
        fixes, dead = decode_batch(messages)
        unknown = {f.device_id for f in fixes if f.device_id not in snap.devices}
        if unknown:  # maybe registered a moment ago: look again once before rejecting
            self._registry_dirty = True
            snap = self._refresh_registry(conn)
        known: list[Fix] = []
        for f in fixes:
            if f.device_id in snap.devices:
                known.append(f)
            else:
                dead.append(DeadLetter(f"nazorat/v1/devices/{f.device_id}/fixes", "unknown device",
                                       json.dumps(_fix_json(f)).encode()))
        batch = order_and_dedupe(known)
        out = BatchOutcome(messages=len(messages), fixes=len(fixes), dead_letters=len(dead))
        with conn.transaction():
            last_ms = self._load_last_times(conn, {f.device_id for f in batch})
            late = [f.time_ms <= last_ms.get(f.device_id, -1) for f in batch]
            new_keys = self._copy_positions(conn, snap, batch, late)
            fresh: list[Fix] = []  # newly stored and not late: these drive state
            for f, is_late in zip(batch, late, strict=True):
                if (f.device_id, f.time_ms) not in new_keys:
                    continue
                if is_late:
                    out.late += 1
                else:
                    fresh.append(f)
            transitions = self._transitions(snap, fresh)
            final = self._write_transitions(conn, snap, transitions, out)
            self._write_dead_letters(conn, dead)
            if out.alert_ids:
                conn.execute("SELECT pg_notify(%s, %s)", (ALERTS_CHANNEL, json.dumps(out.alert_ids)))
        # committed: only now does the in-memory state advance
        for f in fresh:
            if f.time_ms > last_ms.get(f.device_id, -1):
                last_ms[f.device_id] = f.time_ms
        self._last_ms.update(last_ms)
        for key, vid in final.items():
            if vid is None:
                self._open.pop(key, None)
            else:
                self._open[key] = vid
        out.stored = len(new_keys)
        out.duplicates = len(batch) - len(new_keys)
        metrics.MESSAGES_RECEIVED.inc(len(messages))
        metrics.FIXES_STORED.inc(out.stored)
        metrics.FIXES_DUPLICATE.inc(out.duplicates)
        metrics.FIXES_LATE.inc(out.late)
        metrics.BATCH_FIXES.observe(len(fixes))
        metrics.OPEN_VIOLATIONS.set(len(self._open))
        for d in dead:
            metrics.DEAD_LETTERS.labels(_reason_label(d.reason)).inc()
        return out

    def _load_last_times(self, conn: psycopg.Connection[Any], devices: set[str]) -> dict[str, int]:
        missing = [d for d in devices if d not in self._last_ms]
        result = {d: self._last_ms[d] for d in devices if d in self._last_ms}
        if missing:
            rows = conn.execute(
                "SELECT device_id, (extract(epoch FROM max(device_time)) * 1000)::bigint FROM positions"
                " WHERE device_id = ANY(%s) AND NOT late GROUP BY device_id",
                (missing,),
            ).fetchall()
            result.update({d: int(ms) for d, ms in rows})
        return result

    def _copy_positions(
        self, conn: psycopg.Connection[Any], snap: RegistrySnapshot, batch: list[Fix], late: list[bool]
    ) -> set[tuple[str, int]]:
        if not batch:
            return set()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY incoming (device_id, t_ms, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg,"
                " source, seq, late) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["text", "int8", "text", "float8", "float8", "float8", "float8", "float8",
                                "text", "int8", "bool"])
                devices = snap.devices
                for f, is_late in zip(batch, late, strict=True):
                    copy.write_row((f.device_id, f.time_ms, devices[f.device_id].subject_id, f.lat, f.lon,
                                    f.accuracy_m, f.speed_mps, f.heading_deg, f.source, f.seq, is_late))
            rows = cur.execute(
                "INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, speed_mps,"
                " heading_deg, source, seq, late)"
                " SELECT device_id, timestamptz 'epoch' + t_ms * interval '1 millisecond', subject_id, lat, lon,"
                " accuracy_m, speed_mps, heading_deg, source, seq, late FROM incoming"
                " ON CONFLICT (device_id, device_time) DO NOTHING"
                " RETURNING device_id, (extract(epoch FROM device_time) * 1000)::bigint"
            ).fetchall()
        return {(d, int(ms)) for d, ms in rows}

    def _transitions(self, snap: RegistrySnapshot, fresh: list[Fix]) -> list[_Transition]:
        """Violation opens and closes implied by the fresh fixes, in device-time order."""
        zs = snap.zone_set
        evaluable = [f for f in fresh if (sid := snap.devices[f.device_id].subject_id) is not None
                     and sid in zs.subject_index and snap.devices[f.device_id].kind == "ankle_monitor"]
        if not evaluable or zs.n_zones == 0:
            return []
        subj = np.fromiter((zs.subject_index[snap.devices[f.device_id].subject_id or ""] for f in evaluable),
                           dtype=np.int32, count=len(evaluable))
        ev = evaluate(
            zs,
            np.fromiter((f.lon for f in evaluable), np.float64, len(evaluable)),
            np.fromiter((f.lat for f in evaluable), np.float64, len(evaluable)),
            np.fromiter((f.accuracy_m for f in evaluable), np.float64, len(evaluable)),
            subj,
            np.fromiter((f.time_ms // 1000 for f in evaluable), np.int64, len(evaluable)),
            exact_distance=True,
        )
        kind = zs.zone_kind[ev.pair_zone]
        state = ev.pair_state
        violating = ((kind == _EXCLUSION) & (state == ZoneState.INSIDE)) | (
            (kind != _EXCLUSION) & (state == ZoneState.OUTSIDE)
        )
        open_now = dict.fromkeys(self._open)
        global_ids = {zs.zone_ids[z] for z in zs.arrays.global_ids}
        devices_open = {d for d, _ in open_now}
        pair_fix = ev.pair_fix()
        # only devices with a violation open, or opening one in this batch, can change
        # state: walk all their fixes in order and skip everyone else without a loop
        active_devices = devices_open | {evaluable[i].device_id for i in np.unique(pair_fix[violating])}
        out: list[_Transition] = []
        off = ev.pair_offsets
        for i in (i for i, f in enumerate(evaluable) if f.device_id in active_devices):
            f = evaluable[i]
            sid = snap.devices[f.device_id].subject_id or ""
            listed: set[str] = set()
            for p in range(off[i], off[i + 1]):
                zone_id = zs.zone_ids[ev.pair_zone[p]]
                listed.add(zone_id)
                key = (f.device_id, zone_id)
                st = int(state[p])
                if key in open_now:
                    compliant = st == ZoneState.INACTIVE or (
                        st == (ZoneState.OUTSIDE if kind[p] == _EXCLUSION else ZoneState.INSIDE))
                    if compliant:
                        del open_now[key]
                        out.append(_Transition(f, sid, zone_id, opens=False))
                elif violating[p] and f.source == "gps":
                    open_now[key] = None
                    alert_kind = "exclusion_zone_entered" if kind[p] == _EXCLUSION else "inclusion_zone_left"
                    d = float(ev.pair_distance[p])
                    out.append(_Transition(f, sid, zone_id, opens=True, kind=alert_kind,
                                           distance_m=abs(d) if np.isfinite(d) else None))
            # an open global zone that is not listed for this fix is OUTSIDE: close it
            for key in [k for k in open_now if k[0] == f.device_id and k[1] not in listed and k[1] in global_ids]:
                del open_now[key]
                out.append(_Transition(f, sid, key[1], opens=False))
        return out

    def _write_transitions(
        self, conn: psycopg.Connection[Any], snap: RegistrySnapshot, transitions: list[_Transition],
        out: BatchOutcome,
    ) -> dict[tuple[str, str], int | None]:
        """Write violation opens/closes and alerts; returns each touched key's final
        violation id (None: closed), for the caller to apply once committed."""
        opened: dict[tuple[str, str], int | None] = {}
        for t in transitions:
            key = (t.fix.device_id, t.zone_id)
            fix_time = "timestamptz 'epoch' + %s * interval '1 millisecond'"
            if not t.opens:
                vid = opened.get(key) or self._open.get(key)
                opened[key] = None
                conn.execute(
                    f"UPDATE violations SET closed_at = now(), close_fix_time = {fix_time} WHERE id = %s",
                    (t.fix.time_ms, vid),
                )
                continue
            row = conn.execute(
                "INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time)"
                f" VALUES (%s, %s, %s, now(), {fix_time}) RETURNING id",
                (t.subject_id, t.fix.device_id, t.zone_id, t.fix.time_ms),
            ).fetchone()
            assert row is not None
            opened[key] = int(row[0])
            details = {
                "zone_name": snap.zone_names.get(t.zone_id, t.zone_id),
                "lat": t.fix.lat, "lon": t.fix.lon, "accuracy_m": t.fix.accuracy_m, "source": t.fix.source,
            }
            alert = conn.execute(
                "INSERT INTO alerts (kind, subject_id, device_id, zone_id, violation_id, fix_time, distance_m, details)"
                f" VALUES (%s, %s, %s, %s, %s, {fix_time}, %s, %s) RETURNING id, created_at",
                (t.kind, t.subject_id, t.fix.device_id, t.zone_id, opened[key], t.fix.time_ms, t.distance_m,
                 Jsonb(details)),
            ).fetchone()
            assert alert is not None
            out.alert_ids.append(int(alert[0]))
            out.alerts.append({"id": int(alert[0]), "kind": t.kind, "subject_id": t.subject_id,
                               "device_id": t.fix.device_id, "zone_id": t.zone_id, "fix_time_ms": t.fix.time_ms,
                               "distance_m": t.distance_m, **details})
            metrics.ALERTS_RAISED.labels(t.kind).inc()
        return opened

    @staticmethod
    def _write_dead_letters(conn: psycopg.Connection[Any], dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (topic, reason, payload, payload_size) VALUES (%s, %s, %s, %s)",
                [(d.topic[:512], d.reason[:500], d.payload[:DEAD_LETTER_MAX_BYTES], len(d.payload)) for d in dead],
            )


def _fix_json(f: Fix) -> dict[str, Any]:
    return {"t": f.time_ms, "lat": f.lat, "lon": f.lon, "acc": f.accuracy_m, "src": f.source}


__all__ = ["ALERTS_CHANNEL", "BatchOutcome", "DeadLetter", "InboundMessage", "Pipeline", "decode_batch",
           "order_and_dedupe"]
