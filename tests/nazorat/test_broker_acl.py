"""Mosquitto with the project's config, per-device passwords and ACL: a device may
publish only under its own id; anonymous clients are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from nazorat.services import ENGINE_USER, CredentialStore, MosquittoBroker

pytestmark = pytest.mark.skipif(not MosquittoBroker.available(), reason="mosquitto is not installed")


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, CredentialStore]]:
    store = CredentialStore(tmp_path / "auth")
    store.write_acl()
    store.engine_password()
    broker = MosquittoBroker(tmp_path / "mq", password_file=store.password_file, acl_file=store.acl_file)
    broker.start()
    try:
        yield broker, store
    finally:
        broker.stop()


def _client(broker: MosquittoBroker, user: str | None, password: str | None, **kw: object) -> paho.Client:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5, **kw)  # type: ignore[arg-type]
    if user is not None:
        c.username_pw_set(user, password)
    return c


def _connect(c: paho.Client, broker: MosquittoBroker) -> int:
    result: list[int] = []
    c.on_connect = lambda _c, _u, _f, rc, _p: result.append(rc.value)
    c.connect(broker.host, broker.port)
    deadline = time.monotonic() + 5
    while not result and time.monotonic() < deadline:
        c.loop(0.05)
    return result[0] if result else -1


def test_devices_publish_only_under_their_own_id(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    broker, store = secure_broker
    pw_a = store.add_device("dev-a")
    store.add_device("dev-b")
    broker.reload()
    time.sleep(0.3)
    engine = _client(broker, ENGINE_USER, store.engine_password())
    assert _connect(engine, broker) == 0
    got: list[str] = []
    engine.on_message = lambda _c, _u, m: got.append(m.topic)
    engine.subscribe("nazorat/v1/devices/+/fixes", qos=1)
    dev = _client(broker, "dev-a", pw_a)
    assert _connect(dev, broker) == 0
    dev.publish("nazorat/v1/devices/dev-b/fixes", b"{}", qos=1)  # forged: someone else's topic
    dev.publish("nazorat/v1/devices/dev-a/fixes", b"{}", qos=1)
    deadline = time.monotonic() + 3
    while len(got) < 1 and time.monotonic() < deadline:
        engine.loop(0.05)
        dev.loop(0.05)
    for _ in range(10):
        engine.loop(0.05)
    assert got == ["nazorat/v1/devices/dev-a/fixes"]
    assert _connect(_client(broker, None, None), broker) != 0  # anonymous refused
    assert _connect(_client(broker, "dev-a", "wrong"), broker) != 0


def test_credentials_tool_writes_logins_the_broker_accepts(tmp_path: Path) -> None:
    import subprocess
    import sys

    auth = tmp_path / "auth"
    out = subprocess.run([sys.executable, "-m", "nazorat.cli", "devices", "credentials", "ankle-1", "ankle-2",
                          "--auth-dir", str(auth)], check=True, capture_output=True, text=True).stdout
    passwords = dict(line.split("\t") for line in out.strip().splitlines())
    assert set(passwords) == {"ankle-1", "ankle-2"}
    store = CredentialStore(auth)
    store.engine_password()
    broker = MosquittoBroker(tmp_path / "mq", password_file=store.password_file, acl_file=store.acl_file)
    broker.start()
    try:
        assert _connect(_client(broker, "ankle-1", passwords["ankle-1"]), broker) == 0
        assert _connect(_client(broker, "ankle-2", passwords["ankle-1"]), broker) != 0
    finally:
        broker.stop()
