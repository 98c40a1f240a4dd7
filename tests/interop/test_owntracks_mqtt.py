"""OwnTracks over a real Mosquitto with the project's ACL: locations (retained, so replayed on
every subscribe) stored once and alerting as a native fix does, an ``lwt`` without ``tst``
recorded (no communication-loss alert from it), transitions recorded, zones pushed back as
``setWaypoints``, an unbound user dead-lettered and another user's topic refused."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from ingest import IngestWorker
from nazorat.services import ENGINE_USER, CredentialStore, MosquittoBroker
from telemetry.pipeline import BatchOutcome, Pipeline
from tests.interop.harness import count, setup_registry

pytestmark = pytest.mark.skipif(not MosquittoBroker.available(), reason="needs mosquitto")
DATA = Path(__file__).parent / "data"
NOT_AUTHORIZED = 135


@contextmanager
def worker(database_url: str, mqtt_url: str, outcomes: list[BatchOutcome]) -> Iterator[IngestWorker]:
    pipeline = Pipeline(database_url)
    w = IngestWorker(mqtt_url=mqtt_url, pipeline=pipeline, client_id=ENGINE_USER, batch_max_ms=20,
                     on_batch=outcomes.append)
    box: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        box["loop"], box["stop"] = loop, stop
        loop.run_until_complete(w.run(stop))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not w.connected.is_set():
        assert time.monotonic() < deadline, "the ingest worker did not connect"
        time.sleep(0.05)
    try:
        yield w
    finally:
        loop, stop = box["loop"], box["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        pipeline.close()


class Phone:
    """An OwnTracks app's MQTT session: its login is the OwnTracks user."""

    def __init__(self, broker: MosquittoBroker, user: str, password: str) -> None:
        self.cmds: list[dict[str, object]] = []
        self.puback: dict[int, int] = {}
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv5)
        self.c.username_pw_set(user, password)
        self.c.on_message = lambda _c, _u, m: self.cmds.append(json.loads(m.payload))
        self.c.on_publish = lambda _c, _u, mid, rc, _p: self.puback.__setitem__(mid, rc.value)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self.c.subscribe(f"owntracks/{user}/+/cmd", qos=1)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        mid = self.c.publish(topic, payload, qos=1, retain=retain).mid
        _wait(lambda: mid in self.puback, "no PUBACK")
        return self.puback[mid]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _wait(done: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_owntracks_over_mqtt(database_url: str, secure_broker: tuple[MosquittoBroker, CredentialStore]) -> None:
    broker, store = secure_broker
    setup_registry(database_url)
    passwords = store.add_devices(["aziza", "stranger"])  # broker logins (`nazorat devices credentials`)
    broker.reload()
    time.sleep(0.5)
    engine_url = f"mqtt://{ENGINE_USER}:{store.engine_password()}@{broker.host}:{broker.port}"
    phone = Phone(broker, "aziza", passwords["aziza"])
    stranger = Phone(broker, "stranger", passwords["stranger"])
    outcomes: list[BatchOutcome] = []
    try:
        with worker(database_url, engine_url, outcomes):
            assert phone.publish("owntracks/aziza/phone", (DATA / "owntracks-location.json").read_bytes(),
                                 retain=True) == 0
            assert phone.publish("owntracks/aziza/phone", (DATA / "owntracks-lwt-android.json").read_bytes()) == 0
            assert phone.publish("owntracks/aziza/phone/event", (DATA / "owntracks-transition.json").read_bytes()) == 0
            assert stranger.publish("owntracks/stranger/phone", (DATA / "owntracks-location.json").read_bytes()) == 0
            # the ACL: a login publishes only under its own owntracks/{user}/#
            assert stranger.publish("owntracks/aziza/phone", b'{"_type":"location"}') == NOT_AUTHORIZED
            _wait(lambda: count(database_url, "SELECT count(*) FROM interop_events") == 2, "events not recorded")
            _wait(lambda: count(database_url, "SELECT count(*) FROM dead_letters") == 1, "no dead letter")
            _wait(lambda: phone.cmds, "no setWaypoints")
        (cmd,) = phone.cmds
        assert cmd["action"] == "setWaypoints"
        assert [w["rid"] for w in cmd["waypoints"]["waypoints"]] == ["market-s3"]  # type: ignore[index]
        assert stranger.cmds == []
        # a restarted engine subscribes again: the broker replays the retained location
        outcomes.clear()
        with worker(database_url, engine_url, outcomes):
            _wait(lambda: any(o.duplicates for o in outcomes), "the retained location was not replayed")
    finally:
        phone.close()
        stranger.close()
    assert count(database_url, "SELECT count(*) FROM positions WHERE device_id = 'd3'") == 1
    assert count(database_url, "SELECT count(*) FROM alerts WHERE kind = 'exclusion_zone_entered'") == 1
    assert count(database_url, "SELECT count(*) FROM alerts WHERE kind = 'communication_loss'") == 0
    assert count(database_url, "SELECT count(*) FROM interop_events WHERE kind = 'lwt' AND device_time IS NULL") == 1
    assert count(database_url, "SELECT count(*) FROM interop_events WHERE kind = 'transition'") == 1
    assert count(database_url, "SELECT count(*) FROM dead_letters WHERE reason = 'unbound OwnTracks identity'"
                               " AND topic = 'owntracks/stranger/phone'") == 1
