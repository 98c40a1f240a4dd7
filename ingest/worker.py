"""The ingest worker: subscribe, micro-batch, hand batches to the pipeline, ack after commit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import aiomqtt

from ingest.consumer import MqttConsumer
from telemetry.errors import StorageError
from telemetry.model import InboundMessage
from telemetry.pipeline import BatchOutcome, Pipeline
from telemetry.wire import FIXES_SUBSCRIPTION, MSGPACK_SUBSCRIPTION, STATUS_SUBSCRIPTION, alerts_topic

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
    ) -> None:
        self._url = mqtt_url
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

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; reconnect with jittered exponential backoff."""
        backoff = 0.2
        while not stop.is_set():
            try:
                consumer = MqttConsumer(
                    self._url, client_id=self._client_id, topics=[FIXES_SUBSCRIPTION, MSGPACK_SUBSCRIPTION, STATUS_SUBSCRIPTION],
                    shared_group=self._shared_group, protocol=self._protocol,
                    receive_maximum=max(4 * self._max_messages, 100),
                )
                async with consumer:
                    self.connected.set()
                    backoff = 0.2
                    await self._consume(consumer, stop)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                if stop.is_set():
                    break
                log.warning("MQTT connection lost (%s); reconnecting in %.1fs", exc, backoff)
                await _sleep_or_stop(stop, backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 10.0)
        self.connected.clear()

    async def _consume(self, consumer: MqttConsumer, stop: asyncio.Event) -> None:
        aiomqtt_iter = consumer.messages.__aiter__()
        pending: list[aiomqtt.Message] = []
        deadline = 0.0
        next_check = time.monotonic() + self._silence_check_s
        stop_task: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
        next_task: asyncio.Future[aiomqtt.Message] | None = None
        try:
            while True:
                wake = deadline if pending else next_check
                timeout = max(0.0, min(wake, next_check) - time.monotonic())
                if next_task is None:
                    next_task = asyncio.ensure_future(aiomqtt_iter.__anext__())
                waiting: set[asyncio.Future[Any]] = {next_task, stop_task}
                done, _ = await asyncio.wait(waiting, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if next_task in done:
                    msg = next_task.result()  # raises MqttError on disconnect
                    next_task = None
                    if not pending:
                        deadline = time.monotonic() + self._max_s
                    pending.append(msg)
                    if len(pending) < self._max_messages:
                        continue
                if pending and (len(pending) >= self._max_messages or time.monotonic() >= deadline or stop_task in done):
                    await self._flush(consumer, pending, stop)
                    pending = []
                if stop_task in done:
                    return
                if time.monotonic() >= next_check:
                    await self._check_silence(consumer)
                    next_check = time.monotonic() + self._silence_check_s
                    await self._maybe_retention()
        finally:
            stop_task.cancel()
            if next_task is not None:
                next_task.cancel()

    async def _check_silence(self, consumer: MqttConsumer) -> None:
        """Communication-loss alerts, between batches on the same database connection."""
        try:
            ids = await asyncio.to_thread(self._pipeline.check_silence)
        except StorageError as exc:
            log.warning("%s", exc)
            return
        if ids:
            log.info("communication loss: alerts %s", ids)

    async def _maybe_retention(self) -> None:
        """Daily retention on plain PostgreSQL, between batches."""
        if self._retention_days is None or time.monotonic() < self._next_retention:
            return
        self._next_retention = time.monotonic() + 86_400.0
        try:
            deleted = await asyncio.to_thread(self._pipeline.run_retention, self._retention_days)
        except StorageError as exc:
            log.warning("%s", exc)
            return
        log.info("retention: deleted %d rows older than %d days (evidence kept)", deleted, self._retention_days)

    async def _flush(self, consumer: MqttConsumer, messages: list[aiomqtt.Message], stop: asyncio.Event) -> None:
        inbound = [InboundMessage(str(m.topic), bytes(m.payload) if isinstance(m.payload, bytes | bytearray)
                                  else str(m.payload).encode()) for m in messages]
        backoff = 0.2
        while True:
            try:
                outcome = await asyncio.to_thread(self._pipeline.process, inbound)
                break
            except StorageError as exc:
                # not acknowledged: the broker keeps the messages; retry the same batch
                log.warning("%s; retrying in %.1fs", exc, backoff)
                if stop.is_set():
                    raise asyncio.CancelledError from exc
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        for m in messages:
            consumer.ack(m)
        for alert in outcome.alerts:
            try:
                await consumer.publish(alerts_topic(alert["subject_id"]), json.dumps(alert).encode(), qos=1)
            except aiomqtt.MqttError:
                log.warning("could not publish alert %s to MQTT (it is stored)", alert["id"])
        if self._on_batch is not None:
            self._on_batch(outcome)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


__all__ = ["IngestWorker"]
