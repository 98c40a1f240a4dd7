"""The simulator's devices log in as themselves on the project's Mosquitto with
per-device passwords and ACL (use_username_as_clientid), and every message arrives."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from nazorat.services import ENGINE_USER, CredentialStore, MosquittoBroker
from simulator.publisher import publish
from simulator.scenarios import SimConfig, build
from telemetry.wire import FIXES_SUBSCRIPTION, STATUS_SUBSCRIPTION

pytestmark = pytest.mark.skipif(not MosquittoBroker.available(), reason="mosquitto is not on PATH")


def test_per_device_logins_deliver_every_message(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    broker, store = secure_broker
    plan = build(SimConfig(devices=8, seed=4, compression=2400.0, every_scenario=False, scenarios=(), prefix="cred"))
    passwords = store.add_devices([d["id"] for d in plan.devices])
    broker.reload()
    got: list[str] = []
    lock = threading.Lock()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=ENGINE_USER, protocol=paho.MQTTv5)
    sub.username_pw_set(ENGINE_USER, store.engine_password())
    subscribed = threading.Event()
    sub.on_connect = lambda c, *_: c.subscribe([(FIXES_SUBSCRIPTION, 1), (STATUS_SUBSCRIPTION, 1)])
    sub.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: object, _u: object, m: paho.MQTTMessage) -> None:
        with lock:
            got.append(m.topic)

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        result = publish(plan.messages, f"mqtt://{broker.host}:{broker.port}", compression=2400.0,
                         credentials=passwords)
        assert result.acked == result.messages == sum(m.repeat for m in plan.messages)
        deadline = time.monotonic() + 20
        while len(got) < result.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) == result.messages
        with pytest.raises(ConnectionError):  # a wrong password is refused, not silently ignored
            publish(plan.messages[:1], f"mqtt://{broker.host}:{broker.port}",
                    credentials={plan.messages[0].device_id: "wrong"})
    finally:
        sub.loop_stop()
        sub.disconnect()
