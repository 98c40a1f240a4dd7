"""The AMQP 0-9-1 consumer (aio-pika) for the RabbitMQ cluster backend: the same contract
as ``MqttConsumer`` (an async context manager with ``take``, ``queued``, ``ack_batch``
and ``publish``), so ``IngestWorker`` runs unchanged on top of it.

Topology (declared by ``nazorat broker provision``; docs: deploy/rabbitmq.md)::

    devices --MQTT 3.1.1--> amq.topic --(nazorat.v1.devices.*.fixes|status|fixes.mp)-->
        nazorat.ingest (x-consistent-hash on the routing key) --> nazorat.ingest.0 .. N-1
        (quorum queues, x-single-active-consumer)

RabbitMQ's MQTT plugin turns topic ``nazorat/v1/devices/{id}/fixes`` into routing key
``nazorat.v1.devices.{id}.fixes``; the hash of the routing key puts every message of one
device and topic in the same partition, and single active consumer gives each partition
one consumer at a time, so a device's fixes are evaluated in the order they were
published. (A device's fixes and its status reports hash separately: each stream keeps
its own order.)

Which worker is active: every worker subscribes to every partition, first to the
partitions it owns (``owned``), then, ``standby_delay_s`` later, to the rest. Single
active consumer activates the earliest subscriber, so with workers started together each
owns its share and stands by for the others'; when a worker's connection closes (the
process died, its node died) RabbitMQ activates the next subscriber, which receives the
unacknowledged messages first.

Acknowledgement: the worker commits a batch, then ``ack_batch`` sends one
``basic.ack(multiple=True)`` for the batch's last delivery tag (one channel, deliveries in
order, so that covers exactly the batch). A lost connection raises ``BrokerConnectionError``;
the worker discards its uncommitted batch (RabbitMQ redelivers it) and reconnects to the
next node in the URL list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractIncomingMessage

from ingest.errors import BrokerConnectionError, BrokerUrlError

INGEST_EXCHANGE = "nazorat.ingest"
TOPIC_EXCHANGE = "amq.topic"
QUEUE_PREFIX = "nazorat.ingest."
# the amq.topic bindings into the hash exchange (MQTT topic levels become words)
BINDING_KEYS = ("nazorat.v1.devices.*.fixes", "nazorat.v1.devices.*.fixes.mp", "nazorat.v1.devices.*.status")
# what a lost or refused connection raises (aio-pika raises RuntimeError on a closed channel)
_AMQP_ERRORS = (TimeoutError, OSError, aiormq.exceptions.AMQPError, RuntimeError)
log = logging.getLogger(__name__)


class _NoReaderTraceback(logging.Filter):
    """aiormq logs a lost connection ("reader exited abnormally") with its traceback at
    WARNING; the worker logs the loss itself and reconnects, so keep the message and drop
    the stack (a traceback in our logs means a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.levelno < logging.ERROR:
            record.msg = f"{record.msg}: {record.exc_info[1]!r}"
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("aiormq.connection").addFilter(_NoReaderTraceback())


def partition_queue(p: int) -> str:
    return f"{QUEUE_PREFIX}{p}"


def topic_of(routing_key: str) -> str:
    """The MQTT topic a routing key came from (RabbitMQ mapped ``/`` to ``.``)."""
    return routing_key.replace(".", "/")


def routing_key_of(topic: str) -> str:
    return topic.replace("/", ".")


def parse_amqp_urls(urls: str) -> list[str]:
    """A comma-separated list of ``amqp://user:password@host:port/vhost`` URLs, one per node."""
    out = [u.strip() for u in urls.split(",") if u.strip()]
    if not out:
        raise BrokerUrlError(urls, "expected amqp://user:password@host[:port][/vhost], comma-separated")
    for u in out:
        parsed = urlparse(u)
        if parsed.scheme not in ("amqp", "amqps") or not parsed.hostname:
            raise BrokerUrlError(u, "expected amqp://user:password@host[:port][/vhost]")
    return out


@dataclass(frozen=True)
class AmqpOptions:
    """How a worker consumes the partitions. ``owned``: the partitions it subscribes to
    first (None: all of them)."""

    urls: list[str]
    partitions: int = 4
    owned: tuple[int, ...] | None = None
    standby_delay_s: float = 5.0


@dataclass(slots=True)
class AmqpMessage:
    topic: str
    payload: bytes
    redelivered: bool
    raw: AbstractIncomingMessage
    received_ms: int  # the engine's wall clock when the delivery arrived (the device-clock check)
    qos: int = 1


class AmqpConsumer:
    """Async context manager: one connection, one channel, a consumer on every partition."""

    def __init__(self, options: AmqpOptions, *, prefetch: int, start: int = 0, consumer_tag: str | None = None) -> None:
        self._options = options
        self._prefetch = prefetch
        self._start = start
        self._tag = consumer_tag
        self._conn: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._inbox: list[AmqpMessage] = []  # delivered, not yet taken
        self._arrived = asyncio.Event()
        self._lost: BaseException | None = None
        self._closed = False
        self._standby: asyncio.Task[None] | None = None
        self.node_url = ""

    @property
    def queued(self) -> int:
        """Deliveries received and not yet taken."""
        return len(self._inbox)

    async def take(self, limit: int, wait_s: float, stop: asyncio.Future[Any]) -> list[AmqpMessage]:
        """Up to ``limit`` deliveries, as soon as any are there; [] after ``wait_s`` s or
        when ``stop`` is done (the same contract as ``MqttConsumer.take``). Raises
        ``BrokerConnectionError`` once the connection or channel is lost: what was taken
        and not acknowledged is redelivered, to this worker or to the partition's standby."""
        if not self._inbox and wait_s > 0 and not stop.done() and not self._closed:
            self._arrived.clear()
            wait = asyncio.ensure_future(self._arrived.wait())
            try:
                await asyncio.wait((wait, stop), timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                wait.cancel()
        if self._closed:
            raise BrokerConnectionError(f"AMQP connection lost: {self._lost!r}") from self._lost
        out = self._inbox[:limit]
        del self._inbox[:limit]
        return out

    async def __aenter__(self) -> AmqpConsumer:
        urls = self._options.urls
        errors = []
        for i in range(len(urls)):
            url = urls[(self._start + i) % len(urls)]
            try:
                self._conn = await aio_pika.connect(url, timeout=10)
                self.node_url = url
                break
            except _AMQP_ERRORS as exc:
                errors.append(f"{urlparse(url).hostname}:{urlparse(url).port}: {exc!r}")
        if self._conn is None:
            raise BrokerConnectionError("no RabbitMQ node reachable: " + "; ".join(errors))
        try:
            self._conn.close_callbacks.add(self._on_close)
            self._channel = await self._conn.channel(publisher_confirms=True)
            self._channel.close_callbacks.add(self._on_close)
            await self._channel.set_qos(prefetch_count=self._prefetch)
            self._exchange = await self._channel.get_exchange(TOPIC_EXCHANGE, ensure=False)
            every = range(self._options.partitions)
            owned = [p for p in every if self._options.owned is None or p in self._options.owned]
            await self._subscribe(owned)
            rest = [p for p in every if p not in owned]
            if rest:
                self._standby = asyncio.create_task(self._subscribe_later(rest))
        except _AMQP_ERRORS as exc:
            await self._close()
            raise BrokerConnectionError(f"AMQP set-up failed: {exc!r}") from exc
        return self

    async def _subscribe(self, partitions: list[int]) -> None:
        assert self._channel is not None
        for p in partitions:
            queue = await self._channel.get_queue(partition_queue(p), ensure=False)
            await queue.consume(self._on_message, no_ack=False,
                                consumer_tag=f"{self._tag}-{p}" if self._tag else None)

    async def _subscribe_later(self, partitions: list[int]) -> None:
        await asyncio.sleep(self._options.standby_delay_s)
        try:
            await self._subscribe(partitions)
        except _AMQP_ERRORS as exc:
            self._on_close(None, exc)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.append(AmqpMessage(topic_of(message.routing_key or ""), message.body,
                                       bool(message.redelivered), message, int(time.time() * 1000)))
        self._arrived.set()

    def _on_close(self, _sender: object, exc: BaseException | None = None) -> None:
        self._closed, self._lost = True, exc
        self._arrived.set()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._standby is not None:
            self._standby.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._standby
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5)
        self._conn = None

    async def ack_batch(self, messages: list[AmqpMessage]) -> None:
        """After the batch is committed: one ``basic.ack(multiple=True)`` up to its last tag."""
        if not messages:
            return
        try:
            await messages[-1].raw.ack(multiple=True)
        except _AMQP_ERRORS as exc:
            raise BrokerConnectionError(f"ack failed: {exc!r}") from exc

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Publish to ``amq.topic`` (MQTT subscribers see ``topic``), confirmed by the broker."""
        assert self._exchange is not None
        try:
            await self._exchange.publish(
                aio_pika.Message(payload, content_type="application/json",
                                 delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=routing_key_of(topic), timeout=10)
        except _AMQP_ERRORS as exc:
            raise BrokerConnectionError(f"publish failed: {exc!r}") from exc


__all__ = ["BINDING_KEYS", "INGEST_EXCHANGE", "QUEUE_PREFIX", "TOPIC_EXCHANGE", "AmqpConsumer", "AmqpMessage",
           "AmqpOptions", "parse_amqp_urls", "partition_queue", "routing_key_of", "topic_of"]
