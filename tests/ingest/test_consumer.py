"""The consumer's shared-table properties decode PUBLISH packets exactly as paho's own."""

from __future__ import annotations

import struct

import paho.mqtt._packet as paho_packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.consumer import SharedTableProperties


def _publish_body(topic: bytes, mid: int, props: Properties | None, payload: bytes) -> bytes:
    packed = props.pack() if props is not None else b"\x00"  # type: ignore[no-untyped-call]
    return struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + packed + payload


def test_publish_properties_decode_as_pahos() -> None:
    assert paho_packet.Properties is SharedTableProperties  # type: ignore[attr-defined]  # installed by the import
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 3600
    props.ContentType = "application/json"
    props.UserProperty = [("k", "v"), ("k2", "v2")]
    props.CorrelationData = b"\x01\x02"
    cases = [(props, b'{"t":1}'), (None, b'{"t":2}')]
    for p, payload in cases:
        body = _publish_body(b"nazorat/v1/devices/d1/fixes", 7, p, payload)
        header = 0x30 | (1 << 1)  # PUBLISH, QoS 1
        ours = paho_packet.decode_publish(header, body, MQTTProtocolVersion.MQTTv5)
        paho_packet.Properties = Properties  # type: ignore[attr-defined]
        try:
            theirs = paho_packet.decode_publish(header, body, MQTTProtocolVersion.MQTTv5)
        finally:
            paho_packet.Properties = SharedTableProperties  # type: ignore[attr-defined]
        assert type(ours.properties) is SharedTableProperties and type(theirs.properties) is Properties
        assert ours.properties.json() == theirs.properties.json()  # type: ignore[no-untyped-call]
        assert (ours.topic, ours.mid, ours.payload, ours.qos) == (theirs.topic, theirs.mid, theirs.payload, theirs.qos)
    # reusing one object: unpack clears what an earlier packet set, as paho's does
    reused = SharedTableProperties(PacketTypes.PUBLISH)
    reused.unpack(props.pack())  # type: ignore[no-untyped-call]
    assert reused.json()["ContentType"] == "application/json"  # type: ignore[no-untyped-call]
    reused.unpack(b"\x00")  # type: ignore[no-untyped-call]
    assert reused.json() == {}  # type: ignore[no-untyped-call]
