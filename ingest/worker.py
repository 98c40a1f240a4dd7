"""The ingest worker: subscribe, micro-batch, hand batches to the pipeline, ack after commit.

What it handles itself and what it leaves to its supervisor:

- ``aiomqtt.MqttError`` or, on the RabbitMQ backend, ``BrokerConnectionError``
  (connection lost, refused): reconnect with jittered exponential backoff, inside ``run``;
  the batch not yet committed is dropped (the broker redelivers it).

Two backends behind one consumer contract (``messages``, ``ack_batch``, ``publish``):
``ingest.consumer.MqttConsumer`` (Mosquitto, the default) and, for an ``amqp://`` URL list,
``ingest.amqp.AmqpConsumer`` (a RabbitMQ cluster: partitions as quorum queues with single
active consumer; each reconnect goes to the next node in the list). On the RabbitMQ
backend a partition can move between workers (a worker or its node died), so the
pipeline's in-memory state is reloaded from the database after each reconnect and before
a batch holding redelivered messages: the previous owner may have committed some of them.
- The pipeline's ``StorageError`` (database down or refusing a write): retry the same
  batch with backoff; nothing is acknowledged until it is committed.
- Anything else (a bug, a fix that makes a step raise, a broken callback) propagates out of
  ``run``: the worker first closes the pipeline's connection (rolling back the batch's open
  transaction; the pipeline reloads its committed state on the next batch) and never acks
  the batch, so the broker redelivers it to the restarted worker (persistent session).
  The supervisor (``nazorat.supervisor``) logs it with its traceback, counts it and
  restarts ``run`` with backoff.
- The periodic jobs between batches (communication-loss check, plain-PostgreSQL
  retention) share the pipeline's connection, so they run in this loop; a failure of one
  is logged (with its traceback unless it is a ``StorageError``), counted in
  ``nazorat_task_failures_total{task="silence_check"|"retention"}`` and shown in
  ``Health``; it does not stop ingest, and the job runs again at its next turn.

Readiness (``telemetry.health``): the worker reports ``database`` after each batch or job,
``zones`` (the pipeline's compile errors) after each batch, and registers probes for
``broker`` (session connected?) and ``ingest`` (last turn, last batch, backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiomqtt

from ingest.amqp import AmqpConsumer, AmqpOptions, parse_amqp_urls
from ingest.consumer import MqttConsumer
from ingest.errors import BrokerConnectionError
from telemetry import health as hp
from telemetry import metrics, owntracks
from telemetry.errors import StorageError
from telemetry.health import Health, Part, ingest_part
from telemetry.model import InboundMessage
from telemetry.pipeline import BatchOutcome, Pipeline
from telemetry.wire import FIXES_SUBSCRIPTION, MSGPACK_SUBSCRIPTION, STATUS_SUBSCRIPTION

_OUTBOX_BATCH = 200
_CONNECTION_ERRORS = (aiomqtt.MqttError, BrokerConnectionError)
# how long a takeover waits before reloading state, so that a commit the previous owner of
# the partition had in flight when its connection died is finished (or rolled back)
_TAKEOVER_GRACE_S = 0.5
Consumer = MqttConsumer | AmqpConsumer
log = logging.getLogger(__name__)


class IngestWorker:
    def __init__(
        self,
        *,
        mqtt_url: str,
        pipeline: Pipeline,
        client_id: str = "nazorat-ingest",
        shared_group: str | None = None,
        protocol: int = 5,
        batch_max_messages: int = 500,
        batch_max_ms: int = 20,
        on_batch: Callable[[BatchOutcome], None] | None = None,
        silence_check_s: float = 30.0,
        retention_days: int | None = None,
        health: Health | None = None,
        amqp: AmqpOptions | None = None,
    ) -> None:
        self._url = mqtt_url
        if amqp is None and mqtt_url.startswith(("amqp://", "amqps://")):
            amqp = AmqpOptions(parse_amqp_urls(mqtt_url))
        self._amqp = amqp
        self._attempt = -1  # AMQP: connection attempts so far (each goes to the next node)
        self._pipeline = pipeline
        self._client_id = client_id
        self._shared_group = shared_group
        self._protocol = protocol
        self._max_messages = batch_max_messages
        self._max_s = batch_max_ms / 1000.0
        self._on_batch = on_batch
        self._silence_check_s = silence_check_s
        self._retention_days = retention_days
        self._next_retention = time.monotonic() + 60.0
        self.connected = asyncio.Event()
        self.health = health or Health()
        # progress, read by the probes (monotonic times)
        self._consumer: Consumer | None = None
        self._held = 0  # messages taken from the client's queue and not yet acknowledged
        self._backlog_since: float | None = None
        self._last_batch: float | None = None
        self._last_turn = time.monotonic()
        self._broker_detail = "not connected yet"
        self._sent_regions: dict[tuple[str, str], str] = {}  # OwnTracks binding -> digest of the last setWaypoints
        self.health.probe(hp.BROKER, self._broker_part)
        self.health.probe(hp.INGEST, self._ingest_part)
        self.health.ok(hp.ZONES, "not compiled yet (no batch so far)", critical=False, zone_ids=[])
        metrics.INGEST_BACKLOG.set_function(self.backlog)

    # --- readiness ----------------------------------------------------------------------
    def backlog(self) -> int:
        """Messages received from the broker and not yet stored and acknowledged."""
        queued = 0
        if self._consumer is not None:
            with contextlib.suppress(Exception):  # the client may be half torn down
                queued = self._consumer.queued
        return queued + self._held

    def _broker_part(self) -> Part:
        return Part(self.connected.is_set(), self._broker_detail, info={"client_id": self._client_id})

    def _ingest_part(self) -> Part:
        now = time.monotonic()
        backlog = self.backlog()
        if backlog == 0:
            self._backlog_since = None
        elif self._backlog_since is None:  # queued in the client while no batch was pending
            self._backlog_since = now
        return ingest_part(
            backlog=backlog,
            batch_age_s=None if self._last_batch is None else now - self._last_batch,
            backlog_age_s=None if self._backlog_since is None else now - self._backlog_since,
            loop_age_s=now - self._last_turn, loop_interval_s=self._silence_check_s,
            stall_after_s=self.health.stall_after_s)

    def _set_connected(self, consumer: Consumer | None, detail: str) -> None:
        self._consumer = consumer
        self._broker_detail = detail
        if consumer is None:
            self.connected.clear()
            self._held = 0  # not acknowledged: the broker redelivers them
            self._backlog_since = None
        else:
            self.connected.set()
        metrics.MQTT_CONNECTED.set(1 if consumer is not None else 0)

    # --- the loop -----------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect with jittered exponential backoff.
        Errors other than MQTT's propagate (see the module docstring)."""
        backoff = 0.2
        self._last_turn = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    consumer = self._new_consumer()
                    async with consumer:
                        if isinstance(consumer, AmqpConsumer):
                            # partitions may have moved while we were away: reload committed state
                            await asyncio.to_thread(self._pipeline.close)
                        self._set_connected(consumer, "connected" + (f" to {_without_password(consumer.node_url)}"
                                                                     if isinstance(consumer, AmqpConsumer) else ""))
                        backoff = 0.2
                        await self._consume(consumer, stop)
                except _CONNECTION_ERRORS as exc:
                    self._set_connected(None, f"disconnected: {type(exc).__name__}")
                    if stop.is_set():
                        break
                    log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, backoff)
                    await _sleep_or_stop(stop, backoff * random.uniform(0.5, 1.5))
                    self._last_turn = time.monotonic()
                    backoff = min(backoff * 2, 10.0)
        except Exception as exc:
            self._set_connected(None, f"ingest failed: {type(exc).__name__}")
            # the failed batch's transaction may still be open on the pipeline's connection:
            # closing it rolls it back, and the pipeline reloads committed state on reconnect
            await asyncio.to_thread(self._pipeline.close)
            raise
        finally:
            if self._consumer is not None or self.connected.is_set():
                self._set_connected(None, "stopped")

    def _new_consumer(self) -> Consumer:
        if self._amqp is not None:
            self._attempt += 1
            return AmqpConsumer(self._amqp, prefetch=max(2 * self._max_messages, 100), start=self._attempt,
                                consumer_tag=self._client_id)
        return MqttConsumer(
            self._url, client_id=self._client_id,
            topics=[FIXES_SUBSCRIPTION, MSGPACK_SUBSCRIPTION, STATUS_SUBSCRIPTION, *owntracks.SUBSCRIPTIONS],
            shared_group=self._shared_group, protocol=self._protocol,
            receive_maximum=max(4 * self._max_messages, 100),
        )

    async def _drain_outbox(self, consumer: Consumer) -> None:
        """Publish the alert outbox's pending rows (oldest first, QoS 1) and mark those the
        broker accepted; on a broker error the rest stay pending for the next drain (after
        the next batch, on reconnect, or at the periodic check)."""
        while True:
            rows = await asyncio.to_thread(self._pipeline.outbox_pending, _OUTBOX_BATCH)
            sent: list[int] = []
            for row in rows:
                try:
                    await consumer.publish(row["topic"], json.dumps(row["payload"]).encode(), qos=1)
                except _CONNECTION_ERRORS as exc:
                    metrics.TASK_FAILURES.labels("outbox").inc()
                    log.warning("could not publish alert %s to the broker (%s); it stays in the outbox", row["alert_id"], exc)
                    await asyncio.to_thread(self._pipeline.outbox_done, sent, (row["id"], str(exc)))
                    return
                sent.append(row["id"])
            await asyncio.to_thread(self._pipeline.outbox_done, sent)
            if len(rows) < _OUTBOX_BATCH:
                return

    async def _push_regions(self, consumer: Consumer, bound: dict[tuple[str, str], str]) -> None:
        """Send ``setWaypoints`` to the OwnTracks phones heard in a batch whose binding allows
        it, when the zones they may show differ from what this worker last sent them (so
        once after a start, then on a change). QoS 1, not retained."""
        commands = await asyncio.to_thread(self._pipeline.owntracks_commands, bound)
        for (user, device), cmd in commands.items():
            digest = hashlib.sha256(json.dumps(cmd, sort_keys=True).encode()).hexdigest()
            if self._sent_regions.get((user, device)) == digest:
                continue
            await consumer.publish(owntracks.cmd_topic(user, device), json.dumps(cmd).encode(), qos=1)
            self._sent_regions[(user, device)] = digest

    async def _consume(self, consumer: Consumer, stop: asyncio.Event) -> None:
        # what could not be published while the broker was away goes first
        await self._job("outbox", lambda: self._drain_outbox(consumer))
        pending: list[Any] = []
        deadline = 0.0
        next_check = time.monotonic() + self._silence_check_s
        stop_task: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
        try:
            while True:
                now = time.monotonic()
                self._last_turn = now
                wake = deadline if pending else next_check
                # raises MqttError / BrokerConnectionError on disconnect
                got = await consumer.take(self._max_messages - len(pending), max(0.0, min(wake, next_check) - now),
                                          stop_task)
                now = time.monotonic()
                self._last_turn = now
                if got:
                    if not pending:
                        deadline = now + self._max_s
                    pending += got
                    self._held = len(pending)
                    if self._backlog_since is None:
                        self._backlog_since = now
                if pending and (len(pending) >= self._max_messages or now >= deadline or stop_task.done()):
                    if not await self._flush(consumer, pending, stop):
                        return  # stopped before the batch was stored: not acked, redelivered later
                    pending = []
                    self._held = 0
                    self._backlog_since = time.monotonic() if self.backlog() else None
                if stop_task.done():
                    return
                if time.monotonic() >= next_check:
                    await self._job("silence_check", self._check_silence)
                    next_check = time.monotonic() + self._silence_check_s
                    await self._job("retention", self._maybe_retention)
                    await self._job("outbox", lambda: self._drain_outbox(consumer))
        finally:
            stop_task.cancel()

    async def _job(self, name: str, job: Callable[[], Any]) -> None:
        """A periodic job between batches: a failure is logged, counted and shown; ingest goes on."""
        try:
            await job()
        except StorageError as exc:
            metrics.TASK_FAILURES.labels(name).inc()
            self._report_storage_error(exc)
            log.warning("%s failed (%s); next try at its next turn", name, exc)
        except Exception:
            metrics.TASK_FAILURES.labels(name).inc()
            self.health.failing(f"job.{name}", "failed; see the log", critical=False)
            log.exception("%s failed; next try at its next turn", name)
        else:
            self.health.ok(f"job.{name}", critical=False)

    async def _check_silence(self) -> None:
        """Communication-loss alerts, between batches on the same database connection."""
        ids = await asyncio.to_thread(self._pipeline.check_silence)
        self.health.ok(hp.DATABASE, "silence check ran")
        if ids:
            log.info("communication loss: alerts %s", ids)

    async def _maybe_retention(self) -> None:
        """Daily retention on plain PostgreSQL, between batches."""
        if self._retention_days is None or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + 86_400.0
        deleted = await asyncio.to_thread(self._pipeline.run_retention, self._retention_days)
        self.health.ok(hp.DATABASE, "retention ran")
        log.info("retention: deleted %d rows older than %d days (evidence kept)", deleted, self._retention_days)

    def _report_storage_error(self, exc: StorageError) -> None:
        cause = exc.__cause__
        sqlstate = getattr(cause, "sqlstate", None)
        kind = type(cause).__name__ if cause is not None else type(exc).__name__
        self.health.failing(hp.DATABASE, f"{kind}" + (f" (SQLSTATE {sqlstate})" if sqlstate else ""))

    async def _flush(self, consumer: Consumer, messages: list[Any], stop: asyncio.Event) -> bool:
        """Store one batch, then ack it. False: ``stop`` came while the database was
        failing, and the batch is left unacknowledged."""
        if any(getattr(m, "redelivered", False) for m in messages):
            # a takeover (or our own redelivery): the previous owner may have committed part
            # of this; let its commit settle, then evaluate from the committed state
            await _sleep_or_stop(stop, _TAKEOVER_GRACE_S)
            await asyncio.to_thread(self._pipeline.close)
        inbound = [InboundMessage(m.topic, m.payload, m.received_ms) for m in messages]
        # a full batch, or one with more behind it, may hold messages that waited in the broker
        live = len(messages) < self._max_messages and consumer.queued == 0
        backoff = 0.2
        while True:
            try:
                outcome = await asyncio.to_thread(functools.partial(self._pipeline.process, inbound, live=live))
                break
            except StorageError as exc:
                # not acknowledged: the broker keeps the messages; retry the same batch
                self._report_storage_error(exc)
                log.warning("%s; retrying in %.1fs", exc, backoff)
                if stop.is_set():
                    return False
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 5.0)
        await consumer.ack_batch(messages)
        self._last_batch = time.monotonic()
        metrics.INGEST_LAST_BATCH.set(time.time())
        self.health.ok(hp.DATABASE, "batch committed")
        self._report_zones()
        if outcome.alerts:
            await self._job("outbox", lambda: self._drain_outbox(consumer))
        if outcome.owntracks:
            await self._job("owntracks_cmd", lambda: self._push_regions(consumer, outcome.owntracks))
        if self._on_batch is not None:
            self._on_batch(outcome)
        return True

    def _report_zones(self) -> None:
        errors = self._pipeline.compile_errors
        if errors:
            self.health.failing(hp.ZONES, f"{len(errors)} zones left out: they do not compile", critical=False,
                                zone_ids=sorted(errors))
        else:
            self.health.ok(hp.ZONES, "every zone compiled", critical=False, zone_ids=[])


def _without_password(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return f"{u.scheme}://{u.username + '@' if u.username else ''}{u.hostname}:{u.port}"


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


__all__ = ["IngestWorker"]
