"""The processing pipeline: one micro-batch of MQTT messages in, one transaction out.

``Pipeline.process`` decodes the batch (wire v1, or OwnTracks on ``owntracks/...``, whose
placeholder device ids are resolved through the OwnTracks bindings; an unbound identity is
a dead letter) and resolves its devices; ``Pipeline.process_decoded`` takes what an edge
codec already decoded (the HTTP listener's OsmAnd and OwnTracks requests). Both then run
``STEPS``, a declared sequence of small functions over one ``Batch``, inside one
transaction, serialised on the pipeline's one connection (the MQTT worker and the HTTP
listener share it):

  load state -> classify (late, plausibility) -> store positions (COPY, idempotent on
  (device_id, device_time)) -> evaluate (live and late fixes) -> write violations and
  alerts -> status reports and device alerts -> presence -> other apps' recorded
  messages and fix attributes -> dead letters -> rule state -> announce

Membership and meaning stay apart (traccar's habit): ``geofence`` says which zones a fix
is in and how certain; ``telemetry.transitions`` decides what that means; this module
orders the work and owns the transaction. All SQL is in ``telemetry.store.ingest``.

State rules (DESIGN.md section 4):
- Fixes are evaluated in device-time order. A fix no newer than the device's latest
  evaluated fix is *late*: stored (flag ``late``) and it never changes the current state,
  but a violation that late fixes prove on their own (a store-and-forward upload after a
  coverage gap) is reported as a past violation, closed, marked late, with its delay.
- An implausible fix (``telemetry.plausibility``) is stored with its flags and never
  changes a violation either.
- UNCERTAIN never changes state. INACTIVE (rule not in force) closes an open violation.
- A cell/wifi-sourced fix never opens a violation on its own.
- Every alert is backed by a stored fix or status report, written in the same transaction.
- Dwell counters are written with the batch that changes them and reloaded on connect,
  so a restart in the middle of a dwell neither delays nor hastens an open or a close.

Poison isolation: a zone that does not compile is left out of the snapshot and recorded
(``compile_errors``, ``operational_errors``, a gauge); a device whose fixes make rule
evaluation raise has those fixes stored, recorded with the reason and not evaluated,
while the rest of the batch is. The in-memory state only advances after the commit; a
failed batch raises StorageError and can be retried as a whole.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import operator
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from telemetry import metrics, owntracks, plausibility
from telemetry.conditions import DeviceCondition, Profile, assess, is_news
from telemetry.dead_letters import reason_code
from telemetry.errors import DecodeError, StorageError
from telemetry.model import DeadLetter, Decoded, Fix, FixAttributes, InboundMessage, InteropEvent, Position, Status, position_of
from telemetry.rules import Pending
from telemetry.snapshot import RegistrySnapshot, build_snapshot
from telemetry.store import ingest as store
from telemetry.store import interop as interop_store
from telemetry.store import outbox as outbox_store
from telemetry.store import timescale
from telemetry.transitions import Key, Plan, RuleEngine, Transition
from telemetry.wire import decode_fixes, decode_status, fixes_topic, is_status_topic, status_topic

log = logging.getLogger(__name__)

PRESENCE_RESOLUTION_S = 30.0
_T = TypeVar("_T")
_I = TypeVar("_I", Fix, Status, InteropEvent, FixAttributes)


@dataclass
class BatchOutcome:
    messages: int = 0
    fixes: int = 0
    stored: int = 0
    duplicates: int = 0
    late: int = 0
    implausible: int = 0
    dead_letters: int = 0
    rule_errors: int = 0
    alert_ids: list[int] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: OwnTracks identities heard in this batch that are bound: (user, device) -> device id
    owntracks: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class Batch:
    """One micro-batch on its way through the steps."""

    snap: RegistrySnapshot
    fixes: list[Fix]  # known devices, in (device, time) order, exact repeats removed
    statuses: list[Status]
    dead: list[DeadLetter]
    out: BatchOutcome
    late: list[bool] = field(default_factory=list)
    flags: list[list[str]] = field(default_factory=list)
    new_keys: set[tuple[str, int]] = field(default_factory=set)
    fresh: list[Fix] = field(default_factory=list)  # newly stored, in order, plausible: drive state
    late_fresh: list[Fix] = field(default_factory=list)  # newly stored, late, plausible: may prove the past
    plan: Plan = field(default_factory=Plan)
    past: list[Transition] = field(default_factory=list)
    rule_errors: list[tuple[str, int, str]] = field(default_factory=list)
    violation_ids: dict[Key, int] = field(default_factory=dict)
    conditions: dict[str, DeviceCondition] = field(default_factory=dict)
    live: bool = True  # taken with nothing queued behind it (telemetry.conditions)
    delay_ms: int = 0  # when not live: the estimated wait before arrival (delivery_delay_ms)
    heard: dict[str, float] = field(default_factory=dict)
    events: list[InteropEvent] = field(default_factory=list)
    attributes: list[FixAttributes] = field(default_factory=list)
    subjects: list[str | None] = field(default_factory=list)  # per fix: who wore the device then


MIN_LAGS_FOR_DELAY = 20  # fix messages a batch needs to estimate its delivery delay


def decode_batch(messages: Sequence[InboundMessage], lags: list[int] | None = None) -> Decoded:
    """Decode one batch: wire format v1 on ``nazorat/v1/...``, OwnTracks on ``owntracks/...``
    (with placeholder device ids that ``Pipeline`` resolves through the bindings).
    ``lags``: if given, gets arrival - newest device time (ms) of each wire-format fix
    message that carries its arrival (``delivery_delay_ms``)."""
    out = Decoded()
    for m in messages:
        try:
            if m.topic.startswith(owntracks.PREFIX):
                out.extend(owntracks.decode(m.topic, m.payload))
                continue
            if is_status_topic(m.topic):
                st = decode_status(m.topic, m.payload)
                out.statuses.append(st if m.received_ms is None else dataclasses.replace(st, received_ms=m.received_ms))
                continue
            good, bad = decode_fixes(m.topic, m.payload)
        except DecodeError as exc:
            out.dead.append(DeadLetter(m.topic, exc.reason, m.payload))
            continue
        out.fixes.extend(good)
        out.dead.extend(DeadLetter(m.topic, e.reason, e.raw) for e in bad)
        if lags is not None and good and m.received_ms is not None:
            lags.append(m.received_ms - max(f.time_ms for f in good))
    return out


def delivery_delay_ms(lags: list[int]) -> int | None:
    """How long a batch's messages waited before they were read, estimated as the median
    of (arrival - newest device time) over its fix messages: a batch holds messages sent
    within moments of each other (the broker's queue is first in, first out), so a few
    devices with skewed clocks or store-and-forward uploads do not move the median.
    None with fewer than ``MIN_LAGS_FOR_DELAY`` messages to go on."""
    if len(lags) < MIN_LAGS_FOR_DELAY:
        return None
    return max(0, sorted(lags)[len(lags) // 2])


_DEVICE_TIME = operator.attrgetter("device_id", "time_ms")


def order_and_dedupe(fixes: list[Fix]) -> list[Fix]:
    """Sort by (device, device time) and keep the first of exact (device, time) repeats."""
    fixes = sorted(fixes, key=_DEVICE_TIME)
    out: list[Fix] = []
    last: tuple[str, int] | None = None
    for f in fixes:
        key = (f.device_id, f.time_ms)
        if key != last:
            out.append(f)
            last = key
    return out


def _flags(c: DeviceCondition) -> tuple[bool, int | None, bool]:
    """The part of a device's condition its last report does not carry (kept in the database)."""
    return c.clock_off, c.gps_lost_since_ms, c.gps_alerted


def _fix_json(f: Fix) -> bytes:
    return json.dumps({"t": f.time_ms, "lat": f.lat, "lon": f.lon, "acc": f.accuracy_m, "src": f.source}).encode()


class Pipeline:
    """Owns one database connection and the committed evaluation state of its devices."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._conn: psycopg.Connection[Any] | None = None
        self._snapshot: RegistrySnapshot | None = None
        self._registry_dirty = True
        self._rules = RuleEngine({})
        self._no_history: set[str] = set()  # devices with no stored fix yet (checked once)
        self._conditions: dict[str, DeviceCondition] = {}
        self._heard: dict[str, float] = {}  # device -> monotonic time its presence row was last written
        self._lock = threading.RLock()  # the MQTT worker and the HTTP listener share this pipeline

    # --- connection and registry ------------------------------------------------------
    def mark_registry_changed(self) -> None:
        self._registry_dirty = True

    @property
    def snapshot(self) -> RegistrySnapshot | None:
        return self._snapshot

    @property
    def compile_errors(self) -> dict[str, str]:
        """Zones left out of evaluation (zone id -> reason), as of the current snapshot."""
        return dict(self._snapshot.compile_errors) if self._snapshot is not None else {}

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = psycopg.connect(self._url, connect_timeout=5)
        store.prepare_session(conn)
        rules = RuleEngine(store.open_violations(conn))
        rules.pending = {k: Pending(c, t) for k, (c, t) in store.pending_dwells(conn).items()}
        conn.commit()
        self._rules = rules
        self._no_history = set()
        self._conditions = {}
        self._conn = conn
        self._registry_dirty = True
        metrics.DB_UP.set(1)
        metrics.OPEN_VIOLATIONS.set(len(self._rules.open))
        return conn

    def _refresh_registry(self, conn: psycopg.Connection[Any]) -> RegistrySnapshot:
        if store.registry_changed(conn):
            self._registry_dirty = True
        if self._registry_dirty or self._snapshot is None:
            try:
                snap = build_snapshot(store.registry_rows(conn))
                store.sync_compile_errors(conn, snap.compile_errors)
                conn.commit()
            except BaseException:
                conn.rollback()  # never leave an implicit transaction for the batch to nest in
                raise
            self._snapshot = snap
            self._registry_dirty = False
        return self._snapshot

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- the batch ----------------------------------------------------------------------
    def process(self, messages: Sequence[InboundMessage], *, live: bool = True) -> BatchOutcome:
        """Store and evaluate one batch atomically. Raises StorageError when the database
        fails; nothing of the batch is then committed and it can be retried whole.
        ``live``: the consumer took the batch with nothing queued behind it (a full batch,
        or one with more waiting, may hold reports that waited in the broker's queue)."""
        lags: list[int] = []
        decoded = decode_batch(messages, None if live else lags)
        return self.process_decoded(decoded, len(messages), live=live,
                                    delay_ms=None if live else delivery_delay_ms(lags))

    def process_decoded(self, decoded: Decoded, messages: int = 1, *, live: bool = True,
                        delay_ms: int | None = None) -> BatchOutcome:
        """The same for what an edge codec already decoded (the HTTP listener's OsmAnd and
        OwnTracks requests): the same steps in one transaction. Safe to call from several
        threads: batches are serialised on the pipeline's one connection. ``delay_ms``: the
        estimated wait of a batch that was not live (None: unknown)."""
        started = time.perf_counter()
        try:
            with self._lock:
                outcome = self._process(decoded, messages, live, delay_ms)
        except psycopg.Error as exc:
            metrics.DB_ERRORS.inc()
            metrics.DB_UP.set(0)
            self.close()
            raise StorageError(f"batch not stored: {exc}") from exc
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        return outcome

    def _resolve_owntracks(self, conn: psycopg.Connection[Any], d: Decoded) -> dict[tuple[str, str], str]:
        """Replace OwnTracks placeholder device ids by the bound devices; what no binding
        covers becomes a dead letter ``unbound OwnTracks identity``."""
        ids: list[str] = [x.device_id for x in d.fixes] + [x.device_id for x in d.statuses] + \
            [x.device_id for x in d.events] + [x.device_id for x in d.attributes]
        aliases = {i for i in ids if owntracks.is_alias(i)}
        if not aliases:
            return {}
        pairs = sorted(owntracks.split_alias(a) for a in aliases)
        bound = interop_store.owntracks_devices(conn, pairs)
        conn.commit()
        to = {owntracks.alias(*pair): dev for pair, dev in bound.items()}

        def keep(items: list[_I]) -> list[_I]:
            out: list[_I] = []
            for x in items:
                if not owntracks.is_alias(x.device_id):
                    out.append(x)
                elif x.device_id in to:
                    out.append(dataclasses.replace(x, device_id=to[x.device_id]))
            return out

        for f in d.fixes:
            if owntracks.is_alias(f.device_id) and f.device_id not in to:
                d.dead.append(DeadLetter(f.device_id, "unbound OwnTracks identity", _fix_json(f)))
        for e in d.events:
            if owntracks.is_alias(e.device_id) and e.device_id not in to:
                d.dead.append(DeadLetter(e.device_id, "unbound OwnTracks identity", json.dumps(e.payload).encode()))
        d.fixes, d.statuses, d.events, d.attributes = keep(d.fixes), keep(d.statuses), keep(d.events), \
            keep(d.attributes)
        return bound

    def _process(self, d: Decoded, messages: int, live: bool = True, delay: int | None = None) -> BatchOutcome:
        conn = self._connection()
        snap = self._refresh_registry(conn)
        bound = self._resolve_owntracks(conn, d)
        fixes, dead, statuses = d.fixes, d.dead, d.statuses
        if any(x not in snap.devices for x in itertools.chain((f.device_id for f in fixes),
                                                               (s.device_id for s in statuses))):
            self._registry_dirty = True  # maybe registered a moment ago: look again once before rejecting
            snap = self._refresh_registry(conn)
        known = [f for f in fixes if f.device_id in snap.devices]
        dead += [DeadLetter(fixes_topic(f.device_id), "unknown device", _fix_json(f))
                 for f in fixes if f.device_id not in snap.devices]
        dead += [DeadLetter(status_topic(s.device_id), "unknown device", b"")
                 for s in statuses if s.device_id not in snap.devices]
        b = Batch(snap, order_and_dedupe(known), [s for s in statuses if s.device_id in snap.devices], dead,
                  BatchOutcome(messages=messages, fixes=len(fixes), dead_letters=len(dead), owntracks=bound),
                  events=[e for e in d.events if e.device_id in snap.devices],
                  attributes=[a for a in d.attributes if a.device_id in snap.devices],
                  live=live or delay is not None, delay_ms=delay or 0)
        with conn.transaction():
            for step in STEPS:
                step(self, conn, b)
        self._commit(b)
        return b.out

    def _commit(self, b: Batch) -> None:
        """The transaction committed: only now does the in-memory state advance."""
        self._rules.apply(b.plan, b.violation_ids)
        self._conditions.update(b.conditions)
        self._heard.update(b.heard)
        out = b.out
        out.stored = len(b.new_keys)
        out.duplicates = len(b.fixes) - len(b.new_keys)
        metrics.MESSAGES_RECEIVED.inc(out.messages)
        metrics.FIXES_STORED.inc(out.stored)
        metrics.FIXES_DUPLICATE.inc(out.duplicates)
        metrics.FIXES_LATE.inc(out.late)
        metrics.BATCH_FIXES.observe(out.fixes)
        metrics.OPEN_VIOLATIONS.set(len(self._rules.open))
        metrics.RULE_ERRORS.inc(out.rule_errors)
        for d in b.dead:
            metrics.DEAD_LETTERS.labels(reason_code(d.reason)).inc()

    # --- the steps (each a small function over the batch, in the batch's transaction) -----
    def _load_state(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Make sure the rule engine knows the latest evaluated position of the batch's
        devices and of the devices linked to them (victims and supervised persons)."""
        snap = b.snap
        devices = {f.device_id for f in b.fixes}
        wanted = set(devices)
        for dev in devices:
            for link in snap.links_by_victim.get(dev, ()):
                wanted.update(snap.devices_by_subject.get(link.subject_id, ()))
            sid = snap.devices[dev].subject_id
            wanted |= {link.victim_device_id for link in snap.links_by_subject.get(sid or "", ())}
        missing = sorted(d for d in wanted if d not in self._rules.last and d not in self._no_history)
        if missing:
            found = store.last_positions(conn, missing)
            self._rules.last.update(found)
            self._no_history |= set(missing) - set(found)

    def _classify(self, _conn: psycopg.Connection[Any], b: Batch) -> None:
        """Late or not, and plausibility flags per fix, each judged against the device's
        previous plausible fix (earlier in this batch, or the last one evaluated)."""
        last = self._rules.last
        now_ms = int(time.time() * 1000)
        previous: dict[str, Position] = {}
        for f in b.fixes:
            is_late = f.device_id in last and f.time_ms <= last[f.device_id].t_ms
            prev = previous.get(f.device_id) or last.get(f.device_id)
            fl = plausibility.flags(f, None if is_late else prev, now_ms)
            b.late.append(is_late)
            b.flags.append(fl)
            if not fl and not is_late:
                previous[f.device_id] = position_of(f)

    def _store_positions(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Each fix is stored with the subject who wore the device at the fix's device time."""
        subject_at = b.snap.subject_at
        b.subjects = [subject_at(f.device_id, f.time_ms) for f in b.fixes]
        b.new_keys = store.copy_positions(conn, b.fixes, b.subjects, b.late, b.flags)
        for f, is_late, fl in zip(b.fixes, b.late, b.flags, strict=True):
            if (f.device_id, f.time_ms) not in b.new_keys:
                continue
            if fl:
                b.out.implausible += 1
                for name in fl:
                    metrics.FIXES_IMPLAUSIBLE.labels(name).inc()
            if is_late:
                b.out.late += 1
                if not fl:
                    b.late_fresh.append(f)
            elif not fl:
                b.fresh.append(f)

    def _evaluate(self, _conn: psycopg.Connection[Any], b: Batch) -> None:
        """The rule engine's plan for the live fixes and the past violations the late ones
        prove. A device whose fixes make evaluation raise is set aside with the reason."""
        b.plan = self._isolated(b, b.fresh, lambda fixes: self._rules.plan(b.snap, fixes), Plan())
        b.past = self._isolated(b, b.late_fresh, lambda fixes: self._rules.plan_late(b.snap, fixes), [])

    def _isolated(self, b: Batch, fixes: list[Fix], run: Callable[[list[Fix]], _T], empty: _T) -> _T:
        try:
            return run(fixes)
        except Exception:  # isolate below: one device's poison must not stop the others
            log.exception("rule evaluation failed for a batch of %d fixes; isolating by device", len(fixes))
        bad: set[str] = set()
        for device, group in itertools.groupby(fixes, key=operator.attrgetter("device_id")):
            own = list(group)
            try:
                run(own)
            except Exception as exc:  # recorded per fix as an operational error, counted below
                reason = f"{type(exc).__name__}: {exc}"
                log.error("fixes of device %s not evaluated: %s\n%s", device, reason, traceback.format_exc())
                bad.add(device)
                b.rule_errors += [(device, f.time_ms, reason) for f in own]
        b.out.rule_errors = len(b.rule_errors)
        rest = [f for f in fixes if f.device_id not in bad]
        try:
            return run(rest)
        except Exception as exc:  # every device alone was fine, together they are not: set all aside
            log.exception("rule evaluation failed for a combination of devices; the batch's fixes are not evaluated")
            b.rule_errors += [(f.device_id, f.time_ms, f"{type(exc).__name__}: {exc}") for f in rest]
            b.out.rule_errors = len(b.rule_errors)
            return empty

    def _write_transitions(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Write violation opens/closes and alerts; remember the violation id of every key
        opened, for the rule engine once committed."""
        ids = b.violation_ids
        for t in b.plan.transitions:
            if t.action == "close":
                vid = ids.pop(t.key, None) or self._rules.open.get(t.key)
                if vid is not None:
                    store.close_violation(conn, vid, t.ref.t_ms)
                continue
            crossed = t.action == "crossed"
            vid = store.insert_violation(conn, store.NewViolation(
                t.subject_id, t.device_id, "victim" if t.victim_device_id else ("crossing" if crossed else "zone"),
                t.ref.t_ms, zone_id=t.zone_id, victim_device_id=t.victim_device_id,
                close_ms=t.ref.t_ms if crossed else None, closed=crossed, zone_revision=self._version(b, t)))
            if not crossed:
                ids[t.key] = vid
            self._alert(conn, b, t, vid, {})
        now_ms = int(time.time() * 1000)
        for t in b.past:
            close_ms = t.close_ref.t_ms if t.close_ref is not None else None
            if store.violation_overlaps(conn, t.device_id, t.rule, t.ref.t_ms, close_ms):
                continue  # already known from live fixes
            vid = store.insert_violation(conn, store.NewViolation(
                t.subject_id, t.device_id, "zone", t.ref.t_ms, zone_id=t.zone_id, close_ms=close_ms, closed=True,
                late=True, zone_revision=self._version(b, t)))
            self._alert(conn, b, t, vid, {"late": True, "delay_s": round((now_ms - t.ref.t_ms) / 1000.0, 1),
                                          "closed_fix_time_ms": close_ms})

    def _alert(self, conn: psycopg.Connection[Any], b: Batch, t: Transition, violation_id: int,
               extra: dict[str, Any]) -> None:
        details = {"lat": t.ref.lat, "lon": t.ref.lon, "accuracy_m": t.ref.accuracy_m, "source": t.source,
                   **t.details, **extra}
        if t.zone_id is not None:
            details["zone_name"] = b.snap.zone_names.get(t.zone_id, t.zone_id)
        self._raise(b, conn, store.NewAlert(t.kind, "high", t.subject_id, t.device_id, details, zone_id=t.zone_id,
                                            violation_id=violation_id, fix_ms=t.ref.t_ms, distance_m=t.distance_m,
                                            zone_revision=self._version(b, t)))

    @staticmethod
    def _version(b: Batch, t: Transition) -> int | None:
        """The version of the transition's zone in the batch's snapshot (the one in force)."""
        return b.snap.zone_version.get(t.zone_id) if t.zone_id is not None else None

    def _raise(self, b: Batch, conn: psycopg.Connection[Any], a: store.NewAlert) -> None:
        alert_id = store.insert_alert(conn, a)
        b.out.alert_ids.append(alert_id)
        evidence = {"fix_time_ms": a.fix_ms} if a.fix_ms is not None else {"status_time_ms": a.status_ms}
        b.out.alerts.append({"id": alert_id, "kind": a.kind, "subject_id": a.subject_id, "device_id": a.device_id,
                             "zone_id": a.zone_id, "zone_revision": a.zone_revision, "distance_m": a.distance_m, **evidence,
                             **a.details})
        metrics.ALERTS_RAISED.labels(a.kind).inc()

    def _store_statuses(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Store status reports (idempotent on (device, time)) and raise device-condition
        alerts for the new ones in device-time order; the devices' new condition state is
        kept for after the commit."""
        if not b.statuses:
            return
        statuses = sorted({(s.device_id, s.time_ms): s for s in b.statuses}.values(),
                          key=lambda s: (s.device_id, s.time_ms))
        new = store.insert_statuses(conn, statuses)
        devices = sorted({s.device_id for s in statuses})
        missing = [d for d in devices if d not in self._conditions]
        if missing:  # after a restart: the latest stored report is the previous one
            flags = store.condition_flags(conn, missing)
            for s in store.latest_statuses(conn, missing, new):
                clock_off, since, alerted = flags.get(s.device_id, (False, None, False))
                self._conditions.setdefault(s.device_id, DeviceCondition(s, since, alerted, clock_off))
        state = {d: self._conditions[d] for d in devices if d in self._conditions}
        before = {d: _flags(c) for d, c in state.items()}
        now_ms = int(time.time() * 1000)
        for s in statuses:
            prev = state.get(s.device_id)
            if (s.device_id, s.time_ms) not in new or not is_news(prev, s):
                continue  # a replay, or an old report: stored, but it changes nothing
            arrival = s.received_ms if s.received_ms is not None else now_ms
            alerts, state[s.device_id] = assess(prev, s, b.snap.device_profile.get(s.device_id, Profile()),
                                                arrival, b.live, b.delay_ms)
            for kind, details in alerts:
                self._raise(b, conn, store.NewAlert(
                    kind, "medium" if kind.startswith("battery_low") else "high",
                    b.snap.subject_at(s.device_id, s.time_ms), s.device_id, dict(details), status_ms=s.time_ms))
        # what a reconnect or restart must resume, in this batch's transaction
        store.save_condition_flags(conn, {d: _flags(c) for d, c in state.items()
                                          if _flags(c) != before.get(d, (False, None, False))})
        b.conditions = state

    def _flag_after_term(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """A device that reports after every term of its wearer ended is flagged on its
        ``remove_device`` task (``telemetry.store.ingest.flag_reporting_after_term``).
        Nothing to do, and no loop, while no subject's terms are all over."""
        over = b.snap.term_over_ms
        if not over:
            return
        latest: dict[str, tuple[str, int]] = {}
        for f, sid in zip(b.fixes, b.subjects, strict=True):
            end = over.get(sid or "")
            if end is not None and f.time_ms >= end and f.time_ms > latest.get(f.device_id, ("", -1))[1]:
                latest[f.device_id] = (sid or "", f.time_ms)
        store.flag_reporting_after_term(conn, [(d, s, t) for d, (s, t) in sorted(latest.items())])

    def _mark_heard(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Record when devices were heard, at most once per PRESENCE_RESOLUTION_S each:
        rewriting every device's row on every batch bloats the table (measured: 13.8k
        fixes/s sustained over 60 s instead of 16.0k). Communication-loss thresholds are
        minutes, so a 30 s resolution is plenty."""
        now = time.monotonic()
        heard = {f.device_id for f in b.fixes} | {s.device_id for s in b.statuses}
        due = sorted(d for d in heard if now - self._heard.get(d, -1e9) >= PRESENCE_RESOLUTION_S)
        store.mark_heard(conn, due)
        b.heard = dict.fromkeys(due, now)

    def _write_interop(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        """Other apps' recorded messages and the attributes that came with their fixes."""
        interop_store.insert_events(conn, b.events)
        interop_store.insert_attributes(conn, b.attributes)

    def _write_dead_letters(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        store.insert_dead_letters(conn, b.dead)
        store.record_rule_errors(conn, b.rule_errors)

    def _save_rule_state(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        current = self._rules.pending
        store.save_pending_dwells(conn, {
            k: (p.count, p.first_ms) if p is not None else None
            for k, p in b.plan.pending.items() if p != current.get(k)})

    def _announce(self, conn: psycopg.Connection[Any], b: Batch) -> None:
        store.notify_alerts(conn, b.out.alert_ids)

    # --- between batches ---------------------------------------------------------------------
    def run_retention(self, retention_days: int) -> int:
        """Plain-PostgreSQL retention (TimescaleDB has its own policies). Returns rows deleted."""
        try:
            with self._lock:
                conn = self._connection()
                if timescale.installed(conn):
                    conn.commit()
                    return 0
                conn.commit()
                return timescale.delete_expired(conn, retention_days)
        except psycopg.Error as exc:
            self.close()
            raise StorageError(f"retention failed: {exc}") from exc

    def outbox_pending(self, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts not yet published to integrations, oldest first (``telemetry.store.outbox``)."""
        rows: list[dict[str, Any]] = self._outbox(lambda conn: outbox_store.pending(conn, limit))
        return rows

    def outbox_done(self, published: list[int], failed: tuple[int, str] | None = None) -> None:
        """Mark outbox rows published (the broker accepted them) and one failed attempt."""

        def mark(conn: psycopg.Connection[Any]) -> None:
            outbox_store.mark_published(conn, published)
            if failed is not None:
                outbox_store.mark_failed(conn, *failed)

        self._outbox(mark)

    def _outbox(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        try:
            with self._lock:
                conn = self._connection()
                with conn.transaction():
                    return work(conn)
        except psycopg.Error as exc:
            metrics.DB_ERRORS.inc()
            self.close()
            raise StorageError(f"alert outbox: {exc}") from exc

    def owntracks_commands(self, bound: dict[tuple[str, str], str]) -> dict[tuple[str, str], dict[str, Any]]:
        """The ``setWaypoints`` command for each of these bindings that may be pushed zones
        (``telemetry.store.interop.regions_for`` says which zones a phone may show)."""
        try:
            with self._lock:
                conn = self._connection()
                with conn.transaction():
                    push = interop_store.push_zone_bindings(conn, sorted(bound))
                    return {pair: owntracks.set_waypoints(interop_store.regions_for(conn, bound[pair]))
                            for pair in push}
        except psycopg.Error as exc:
            metrics.DB_ERRORS.inc()
            self.close()
            raise StorageError(f"OwnTracks regions: {exc}") from exc

    def check_silence(self) -> list[int]:
        """Raise ``communication_loss`` for silent devices; returns the new alert ids. Also
        ends the terms whose end has passed (and opens their ``remove_device`` tasks)."""
        try:
            with self._lock:
                conn = self._connection()
                with conn.transaction():
                    ids = store.raise_communication_loss(conn)
                    if store.end_expired_terms(conn):
                        self._registry_dirty = True
        except psycopg.Error as exc:
            metrics.DB_ERRORS.inc()
            self.close()
            raise StorageError(f"silence check failed: {exc}") from exc
        for _ in ids:
            metrics.ALERTS_RAISED.labels("communication_loss").inc()
        return ids


#: the batch's steps, in order, inside its one transaction
STEPS: tuple[Callable[[Pipeline, psycopg.Connection[Any], Batch], None], ...] = (
    Pipeline._load_state,
    Pipeline._classify,
    Pipeline._store_positions,
    Pipeline._evaluate,
    Pipeline._write_transitions,
    Pipeline._store_statuses,
    Pipeline._flag_after_term,
    Pipeline._mark_heard,
    Pipeline._write_interop,
    Pipeline._write_dead_letters,
    Pipeline._save_rule_state,
    Pipeline._announce,
)

__all__ = ["STEPS", "Batch", "BatchOutcome", "Pipeline", "decode_batch", "order_and_dedupe"]
