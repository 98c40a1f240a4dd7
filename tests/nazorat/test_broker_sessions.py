"""A session belongs to the account that logs in (``use_username_as_clientid``): a device
using the engine's client id cannot take over the engine's persistent session and make
its queued fixes vanish, nor kick another device off."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from nazorat.services import ENGINE_USER, CredentialStore, MosquittoBroker
from telemetry.store.roles import Database
from telemetry.wire import fixes_topic
from tests.conftest import start_stack

pytestmark = pytest.mark.skipif(not MosquittoBroker.available(),
                                reason="mosquitto is not on PATH (`make test` installs it: see the Makefile's broker target)")

T0 = 1_764_151_200_000
ENGINE_CLIENT_ID = "nazorat-ingest"  # the engine's default client id (`nazorat serve --client-id`)


def _persistent(client_id: str, user: str, password: str) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    return c


def _connect_persistent(c: paho.Client, broker: MosquittoBroker) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect(broker.host, broker.port, clean_start=False, properties=props)


def _login(broker: MosquittoBroker, user: str, password: str, timeout_s: float) -> int | None:
    """The CONNACK reason code for this login, None when none came."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    rc: list[int] = []
    c.on_connect = lambda _c, _u, _f, code, _p: rc.append(code.value)
    c.connect(broker.host, broker.port)
    deadline = time.monotonic() + timeout_s
    while not rc and time.monotonic() < deadline:
        c.loop(0.05)
    c.disconnect()
    return rc[0] if rc else None


def _reloaded(broker: MosquittoBroker, user: str, password: str, timeout_s: float = 15.0) -> None:
    """Reload the broker and wait until it accepts ``user``'s password (SIGHUP is asynchronous)."""
    broker.reload()
    deadline = time.monotonic() + timeout_s
    while _login(broker, user, password, timeout_s) != 0:
        assert time.monotonic() < deadline, f"the broker did not take {user}'s password"
        time.sleep(0.1)


def test_a_device_using_the_engines_client_id_leaves_the_engine_connected_and_loses_no_fix(
        secure_broker: tuple[MosquittoBroker, CredentialStore], runtime_database: Database, tmp_path: Path) -> None:
    broker, store = secure_broker
    devices = [f"tk-{i}" for i in range(5)]
    passwords = store.add_devices([*devices, "tk-attacker"])
    _reloaded(broker, "tk-attacker", passwords["tk-attacker"])
    engine_url = f"mqtt://{ENGINE_USER}:{store.engine_password()}@{broker.host}:{broker.port}"
    stack = start_stack(runtime_database.runtime_url, engine_url, tmp_path / "engine.log", client_id=ENGINE_CLIENT_ID)
    try:
        with stack.client() as c:
            assert c.post("/subjects", json={"id": "tk-s", "full_name": "Test Person"}).status_code == 201
            for d in devices:
                assert c.post("/devices", json={"id": d, "subject_id": "tk-s"}).status_code == 201

        delivered_to_attacker: list[str] = []
        stop = threading.Event()

        def attack() -> None:  # the engine's client id and its account name, persistent session, over and over
            while not stop.is_set():
                for client_id in (ENGINE_CLIENT_ID, ENGINE_USER):
                    a = _persistent(client_id, "tk-attacker", passwords["tk-attacker"])
                    a.on_message = lambda _c, _u, m: delivered_to_attacker.append(m.topic)
                    _connect_persistent(a, broker)
                    a.subscribe("nazorat/v1/devices/+/fixes", qos=1)
                    end = time.monotonic() + 0.3
                    while time.monotonic() < end:
                        a.loop(0.02)
                    a.disconnect()

        attacker = threading.Thread(target=attack, daemon=True)
        attacker.start()
        n_per_device = 40
        pubs = []
        for d in devices:
            p = _persistent(d, d, passwords[d])
            _connect_persistent(p, broker)
            p.loop_start()
            pubs.append(p)
        infos = []
        for k in range(n_per_device):  # numbered fixes while the attack runs (about 4 s)
            for i, (d, p) in enumerate(zip(devices, pubs, strict=True)):
                fix = {"t": T0 + k * 1000, "lat": 41.30 + i * 0.001, "lon": 69.24 + k * 1e-5, "acc": 5.0, "seq": k}
                infos.append(p.publish(fixes_topic(d), json.dumps(fix).encode(), qos=1))
            time.sleep(0.1)
        for info in infos:
            info.wait_for_publish(10)
        assert all(info.is_published() for info in infos)
        time.sleep(1.0)
        stop.set()
        attacker.join(10)
        for p in pubs:
            p.loop_stop()
            p.disconnect()

        want = {d: n_per_device for d in devices}
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(runtime_database.owner_url) as conn:
                stored = dict(conn.execute("SELECT device_id, count(*) FROM positions GROUP BY device_id").fetchall())
            if stored == want or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        assert stored == want  # every numbered fix of every device stored once
        with psycopg.connect(runtime_database.owner_url) as conn:
            assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        assert delivered_to_attacker == []
        log = (broker.data_dir / "mosquitto.log").read_text()
        # the engine was never kicked off: no takeover of its session
        assert f"Client {ENGINE_USER} already connected" not in log
        assert f"Client {ENGINE_CLIENT_ID} already connected" not in log
        assert f"as {ENGINE_USER} (" in log  # the engine's session is named by its account
        assert f"as {ENGINE_CLIENT_ID} (" not in log  # nobody, the attacker included, got the id it asked for
    finally:
        stack.process.terminate()
        stack.process.wait(20)


def test_a_device_cannot_kick_another_device_off(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    broker, store = secure_broker
    pw = store.add_devices(["dev-a", "dev-b"])
    _reloaded(broker, "dev-b", pw["dev-b"])
    victim = _persistent("dev-b", "dev-b", pw["dev-b"])
    dropped: list[int] = []
    victim.on_disconnect = lambda _c, _u, _f, rc, _p: dropped.append(rc.value)
    _connect_persistent(victim, broker)
    victim.loop_start()
    try:
        deadline = time.monotonic() + 15
        while not victim.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert victim.is_connected(), "the victim device could not connect"
        intruder = _persistent("dev-b", "dev-a", pw["dev-a"])
        connack: list[int] = []
        intruder.on_connect = lambda _c, _u, _f, rc, _p: connack.append(rc.value)
        _connect_persistent(intruder, broker)
        deadline = time.monotonic() + 15
        while not connack and time.monotonic() < deadline:
            intruder.loop(0.05)
        assert connack == [0], f"intruder CONNACK {connack}"  # it logs in, as itself
        for _ in range(20):
            intruder.loop(0.05)
        assert dropped == []  # before: dropped, its session taken over by the intruder
        assert victim.is_connected(), "the victim was disconnected"
        assert victim.publish(fixes_topic("dev-b"), b"{}", qos=1).rc == paho.MQTT_ERR_SUCCESS
        intruder.disconnect()
    finally:
        victim.loop_stop()
        victim.disconnect()
