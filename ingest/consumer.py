"""The MQTT consumer: aiomqtt with acknowledgement after commit, read in batches.

aiomqtt 2.x has no public manual acknowledgement, so this is the one place that reaches
into its paho client: ``manual_ack_set(True)`` before connecting, then ``ack(mid, qos)``
for each message once the batch holding it is committed. A message that is never acked
(crash, database outage) is redelivered by the broker on reconnect, because the session
is persistent (MQTT 5 ``clean_start`` off with a session expiry, or MQTT 3.1.1
``clean_session`` off). ``receive_maximum`` bounds the unacknowledged messages in flight.

Messages are taken in batches (``take``), not one by one through aiomqtt's iterator: that
iterator costs a task and an ``asyncio.wait`` per message, aiomqtt's read callback reads one
packet per event-loop turn, and each message became an aiomqtt ``Message`` (with a
validated ``Topic``). Measured with ``python -m benchmarks.consumer`` (30,000 single-fix
messages, a store that does nothing): 276 us of CPU per message before, see
docs/benchmarks.md for after. Here paho's ``on_message`` appends a plain ``Received`` to a
list, the read callback reads every packet the socket holds, and ``take`` hands over all
that arrived since the last call (up to a limit) with one wake-up.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlparse

import aiomqtt
import paho.mqtt._packet as paho_packet
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.errors import BrokerUrlError


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    u = urlparse(url)
    if u.scheme not in ("mqtt", "tcp") or not u.hostname:
        raise BrokerUrlError(url, "expected mqtt://[user:password@]host[:port]")
    return u.hostname, u.port or 1883, u.username, u.password


_PROPERTY_TABLES = ("types", "names", "properties")


class SharedTableProperties(Properties):
    """paho's ``Properties`` with its constant tables built once instead of per packet.

    paho builds three lookup tables (27 property names) in ``__init__`` and walks all of
    them again in ``clear()``, which ``unpack`` calls first: for every MQTT 5 PUBLISH it
    decodes. That was 75 of the 86 us of CPU a single-fix message cost the consumer
    (``python -m benchmarks.consumer``: 86 us with MQTT 5, 10 us with 3.1.1, which
    decodes no properties). The tables are only read, so one copy serves every instance;
    the decoded attributes are the same (``tests/ingest/test_consumer.py``). Installed
    for PUBLISH decoding (``paho.mqtt._packet``) when this module is imported.
    """

    _shared: ClassVar[dict[str, Any]] = {}

    def __init__(self, packetType: int) -> None:
        if not SharedTableProperties._shared:
            ref = Properties(packetType)  # type: ignore[no-untyped-call]
            SharedTableProperties._shared.update({k: getattr(ref, k) for k in _PROPERTY_TABLES})
        object.__setattr__(self, "packetType", packetType)
        for k, v in SharedTableProperties._shared.items():
            object.__setattr__(self, k, v)

    def clear(self) -> None:
        for k in [k for k in self.__dict__ if k not in _PROPERTY_TABLES and k != "packetType"]:
            delattr(self, k)


paho_packet.Properties = SharedTableProperties  # type: ignore[attr-defined]


@dataclass(slots=True)
class Received:
    """One message as it came off the socket; ``received_ms`` is the engine's wall clock
    when its client read it (the arrival time the device-clock check compares with)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_ms: int


class _BatchClient(aiomqtt.Client):
    """aiomqtt for connecting, subscribing, publishing and disconnect detection; incoming
    messages go to a plain list instead of aiomqtt's queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox: list[Received] = []
        self.arrived = asyncio.Event()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # paho's topic property decodes the bytes; read the raw field once
        self.inbox.append(Received(message._topic.decode("utf-8", "replace"), bytes(message.payload), message.mid,
                                   message.qos, int(time.time() * 1000)))
        if not self.arrived.is_set():
            self.arrived.set()

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def read_all() -> None:
            # paho's loop_read reads one packet when nothing is in flight outwards; read
            # until the socket is empty, so one event-loop turn takes a whole burst
            try:
                for _ in range(10_000):
                    rc = client._packet_read()
                    if rc == paho.MQTT_ERR_AGAIN:
                        break
                    if rc > 0:
                        client._loop_rc_handle(rc)
                        break
                    if client._sock is None:
                        break
            except Exception as exc:  # a broken connection: aiomqtt's disconnect path
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read_all)
        self._loop.call_soon_threadsafe(create_misc_task)


class MqttConsumer:
    """Async context manager: a subscribed client whose messages must be acked by hand."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        topics: list[str],
        shared_group: str | None = None,
        protocol: int = 5,
        receive_maximum: int = 2000,
        session_expiry_s: int = 7 * 86400,
    ) -> None:
        host, port, user, password = parse_mqtt_url(url)
        self._topics = [f"$share/{shared_group}/{t}" if shared_group else t for t in topics]
        v5 = protocol == 5
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = session_expiry_s
            props.ReceiveMaximum = receive_maximum
        self._client = _BatchClient(
            host, port, username=user, password=password, identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else False,
            clean_start=False if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
            max_inflight_messages=receive_maximum if not v5 else None,
            keepalive=30,
        )
        self._client._client.manual_ack_set(True)

    async def __aenter__(self) -> MqttConsumer:
        await self._client.__aenter__()
        await self._client.subscribe([(t, 1) for t in self._topics])
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self._client.__aexit__(et, e, tb)

    @property
    def queued(self) -> int:
        """Messages read from the socket and not yet taken."""
        return len(self._client.inbox)

    async def take(self, limit: int, wait_s: float, stop: asyncio.Future[Any]) -> list[Received]:
        """Up to ``limit`` messages, as soon as any are there; [] after ``wait_s`` s or
        when ``stop`` is done. Raises ``aiomqtt.MqttError`` when the connection is lost
        (what was read and not acknowledged is redelivered on reconnect)."""
        c = self._client
        if not c.inbox and wait_s > 0 and not stop.done() and not c._disconnected.done():
            c.arrived.clear()
            wait = asyncio.ensure_future(c.arrived.wait())
            try:
                await asyncio.wait((wait, stop, c._disconnected), timeout=wait_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                wait.cancel()
        if c._disconnected.done():
            exc = c._disconnected.exception() if not c._disconnected.cancelled() else None
            raise aiomqtt.MqttError("Disconnected during message iteration") from exc
        out = c.inbox[:limit]
        del c.inbox[:limit]
        return out

    def ack(self, messages: list[Received]) -> None:
        """Send the PUBACKs for messages whose batch is committed."""
        client = self._client._client
        for m in messages:
            if m.qos > 0:
                client.ack(m.mid, m.qos)

    async def ack_batch(self, messages: list[Received]) -> None:
        """Send the PUBACKs of a committed batch (the consumers' common, awaitable form)."""
        self.ack(messages)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        await self._client.publish(topic, payload, qos=qos)


__all__ = ["MqttConsumer", "Received", "SharedTableProperties", "parse_mqtt_url"]
