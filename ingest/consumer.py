"""The MQTT consumer: aiomqtt with acknowledgement after commit.

aiomqtt 2.x has no public manual acknowledgement, so this is the one place that reaches
into its paho client: ``manual_ack_set(True)`` before connecting, then ``ack(mid, qos)``
for each message once the batch holding it is committed. A message that is never acked
(crash, database outage) is redelivered by the broker on reconnect, because the session
is persistent (MQTT 5 ``clean_start`` off with a session expiry, or MQTT 3.1.1
``clean_session`` off). ``receive_maximum`` bounds the unacknowledged messages in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from urllib.parse import urlparse

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.errors import BrokerUrlError


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    u = urlparse(url)
    if u.scheme not in ("mqtt", "tcp") or not u.hostname:
        raise BrokerUrlError(url, "expected mqtt://[user:password@]host[:port]")
    return u.hostname, u.port or 1883, u.username, u.password


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
        self._client = aiomqtt.Client(
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
    def messages(self) -> AsyncIterator[aiomqtt.Message]:
        return self._client.messages

    def ack(self, message: aiomqtt.Message) -> None:
        """Send the PUBACK for a message whose batch is committed."""
        if message.qos > 0:
            self._client._client.ack(message.mid, message.qos)

    async def ack_batch(self, messages: list[aiomqtt.Message]) -> None:
        """Send the PUBACKs of a committed batch."""
        for m in messages:
            self.ack(m)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        await self._client.publish(topic, payload, qos=qos)


__all__ = ["MqttConsumer", "parse_mqtt_url"]
