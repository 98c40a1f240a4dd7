"""Mosquitto with the project's config, per-device passwords and ACL: a device may
publish only under its own id; anonymous clients are refused. Refusals are asserted by
their MQTT 5 reason codes (a timeout is a failure, not a refusal)."""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from nazorat.services import ENGINE_USER, AccountNameError, CredentialStore, MosquittoBroker

pytestmark = pytest.mark.skipif(not MosquittoBroker.available(),
                                reason="mosquitto is not on PATH (`make test` installs it: see the Makefile's broker target)")

SUCCESS = 0
NOT_AUTHORIZED = 135  # MQTT 5 reason code 0x87, in CONNACK and PUBACK


@dataclass
class Probe:
    """A paho client that records what the broker answered."""

    client: paho.Client
    connack: list[int] = field(default_factory=list)
    puback: dict[int, int] = field(default_factory=dict)
    messages: list[tuple[str, int]] = field(default_factory=list)

    def until(self, done: object, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:  # type: ignore[operator]
            self.client.loop(0.05)
        if not done():  # type: ignore[operator]
            raise AssertionError(f"no answer from the broker in {timeout_s:g}s")

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        self.until(lambda: mid in self.puback)
        return self.puback[mid]


def _probe(broker: MosquittoBroker, user: str | None, password: str | None, client_id: str = "") -> Probe:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if user is not None:
        c.username_pw_set(user, password)
    p = Probe(c)
    c.on_connect = lambda _c, _u, _f, rc, _p: p.connack.append(rc.value)
    c.on_publish = lambda _c, _u, mid, rc, _p: p.puback.__setitem__(mid, rc.value)
    c.on_message = lambda _c, _u, m: p.messages.append((m.topic, len(m.payload)))
    c.connect(broker.host, broker.port)
    p.until(lambda: p.connack)
    return p


def _connack(broker: MosquittoBroker, user: str | None, password: str | None) -> int:
    return _probe(broker, user, password).connack[0]


def _reloaded(broker: MosquittoBroker, user: str, password: str, timeout_s: float = 15.0) -> None:
    """Reload the broker and wait until it accepts ``user``'s password (SIGHUP is asynchronous)."""
    broker.reload()
    deadline = time.monotonic() + timeout_s
    while _connack(broker, user, password) != SUCCESS:
        assert time.monotonic() < deadline, f"the broker did not take {user}'s password"
        time.sleep(0.1)


def test_devices_publish_only_under_their_own_id(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    broker, store = secure_broker
    pw = store.add_devices(["dev-a", "dev-b"])
    _reloaded(broker, "dev-b", pw["dev-b"])
    engine = _probe(broker, ENGINE_USER, store.engine_password())
    assert engine.connack == [SUCCESS]
    engine.client.subscribe("nazorat/v1/devices/+/fixes", qos=1)
    dev = _probe(broker, "dev-a", pw["dev-a"])
    assert dev.connack == [SUCCESS]
    assert dev.publish("nazorat/v1/devices/dev-b/fixes", b"{}") == NOT_AUTHORIZED  # forged: someone else's topic
    assert dev.publish("nazorat/v1/devices/dev-a/fixes", b"{}") == SUCCESS
    engine.until(lambda: engine.messages)
    for _ in range(10):
        engine.client.loop(0.05)
    assert [t for t, _ in engine.messages] == ["nazorat/v1/devices/dev-a/fixes"]
    # a device may not read other devices' fixes: Mosquitto grants the wildcard
    # subscription and the ACL withholds every message from it
    dev.client.subscribe("nazorat/v1/devices/+/fixes", qos=1)
    other = _probe(broker, "dev-b", pw["dev-b"])
    assert other.publish("nazorat/v1/devices/dev-b/fixes", b"{}") == SUCCESS
    engine.until(lambda: len(engine.messages) == 2)
    for _ in range(10):
        dev.client.loop(0.05)
    assert dev.messages == []
    assert _connack(broker, None, None) == NOT_AUTHORIZED  # anonymous refused
    assert _connack(broker, "dev-a", "wrong") == NOT_AUTHORIZED
    assert _connack(broker, "nobody-knows-me", "x") == NOT_AUTHORIZED
    # other local users cannot read the password hashes, the queued fixes or the log
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(broker.data_dir.stat().st_mode) == 0o700


def _credentials(*args: str, auth: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nazorat.cli", "devices", "credentials", *args, "--auth-dir", str(auth)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_credentials_tool_writes_logins_the_broker_accepts(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    done = _credentials("ankle-1", "ankle-2", auth=auth)
    assert done.returncode == 0, done.stderr
    passwords = dict(line.split("\t") for line in done.stdout.strip().splitlines())
    assert set(passwords) == {"ankle-1", "ankle-2"}
    assert "no running broker" in done.stderr
    store = CredentialStore(auth)
    store.engine_password()
    broker = MosquittoBroker(tmp_path / "mq", password_file=store.password_file, acl_file=store.acl_file)
    broker.start()
    try:
        assert _connack(broker, "ankle-1", passwords["ankle-1"]) == SUCCESS
        assert _connack(broker, "ankle-2", passwords["ankle-1"]) == NOT_AUTHORIZED
    finally:
        broker.stop()


def test_credentials_tool_reloads_the_running_broker(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    """Before: it said "send SIGHUP to mosquitto" and nothing reloaded the broker, whose PID
    nothing printed: a new device was refused until a restart."""
    broker, store = secure_broker
    assert broker.pid is not None
    done = _credentials("ankle-9", auth=store.directory)
    assert done.returncode == 0, done.stderr
    assert f"the running broker (pid {broker.pid}) reloaded it" in done.stderr
    password = done.stdout.strip().split("\t")[1]
    deadline = time.monotonic() + 5
    while _connack(broker, "ankle-9", password) != SUCCESS:  # SIGHUP is handled asynchronously
        assert time.monotonic() < deadline, "the broker did not take the new password"
        time.sleep(0.1)
    broker.stop()
    assert not store.pid_file.exists()  # a stopped broker is not signalled by a stale PID
    assert store.reload_broker() is None


@pytest.mark.parametrize("name", ["nazorat-engine", "nazorat-engine-2", "Nazorat-anything", "..", ".", "a/b", "a+b",
                                  "#", "$SYS", "", "x" * 65, "dev a", "dév"])
def test_service_accounts_and_bad_ids_are_refused_as_devices(tmp_path: Path, name: str) -> None:
    store = CredentialStore(tmp_path / "auth")
    with pytest.raises(AccountNameError):
        store.add_device(name)
    assert not store.password_file.exists()


def test_credentials_tool_cannot_overwrite_the_engines_password(
        secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    """Before: ``nazorat devices credentials nazorat-engine`` printed a new password for the
    engine's account, which the engine then lacked."""
    broker, store = secure_broker
    engine_pw = store.engine_password()
    before = store.password_file.read_text()
    done = _credentials("ankle-1", ENGINE_USER, auth=store.directory)  # one bad name: nothing is written
    assert done.returncode == 2
    assert "reserved for the engine's service accounts" in done.stderr
    assert done.stdout == ""
    done = _credentials("..", auth=store.directory)
    assert done.returncode == 2
    assert "'.' and '..' are not device ids" in done.stderr
    assert store.password_file.read_text() == before
    assert _connack(broker, ENGINE_USER, engine_pw) == SUCCESS


def test_each_engine_worker_gets_its_own_account(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    """Sessions are named by accounts, so a second worker on the shared subscription needs
    its own: ``--engine`` creates it (and its ACL block); device names are refused there."""
    broker, store = secure_broker
    done = _credentials("--engine", "nazorat-engine-2", auth=store.directory)
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip().split("\t")[1]
    assert _credentials("--engine", "ankle-1", auth=store.directory).returncode == 2
    deadline = time.monotonic() + 5
    while True:
        worker = _probe(broker, "nazorat-engine-2", password)
        if worker.connack == [SUCCESS] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert worker.connack == [SUCCESS]
    worker.client.subscribe("nazorat/v1/devices/+/fixes", qos=1)
    pw = store.add_device("dev-a")
    _reloaded(broker, "dev-a", pw)
    dev = _probe(broker, "dev-a", pw)
    assert dev.publish("nazorat/v1/devices/dev-a/fixes", b"{}") == SUCCESS
    worker.until(lambda: worker.messages)  # the new account reads fixes: its ACL block is there


def test_a_two_megabyte_message_reaches_the_engine(secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    """Before: the broker's 1 MiB max_packet_size dropped it with no trace in the engine;
    now it reaches the engine, which dead-letters it with its reason."""
    broker, store = secure_broker
    pw = store.add_device("dev-a")
    _reloaded(broker, "dev-a", pw)
    engine = _probe(broker, ENGINE_USER, store.engine_password())
    engine.client.subscribe("nazorat/v1/devices/+/fixes", qos=1)
    for _ in range(5):
        engine.client.loop(0.05)
    dev = _probe(broker, "dev-a", pw)
    payload = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    assert dev.publish("nazorat/v1/devices/dev-a/fixes", payload) == SUCCESS
    engine.until(lambda: engine.messages)
    assert engine.messages == [("nazorat/v1/devices/dev-a/fixes", len(payload))]
    log = (broker.data_dir / "mosquitto.log").read_text()
    assert "message_size_limit" not in log  # its deprecation warning is gone
