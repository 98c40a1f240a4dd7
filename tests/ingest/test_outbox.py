"""The alert outbox: an alert stored while the broker is down is published to
integrations (``nazorat/v1/alerts/{subject_id}``) once the broker is back, from storage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest

from nazorat.services import MosquittoBroker
from tests.ingest.harness import Env, make_env, start_worker, stop_worker

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not MosquittoBroker.available(), reason="needs mosquitto")]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path, n_devices=1)
    try:
        yield e
    finally:
        e.broker.kill()
        e.pg.destroy()


class Integration:
    """An integration's subscriber with a persistent session (QoS 1): it gets what was
    published while it was away, once it reconnects."""

    def __init__(self, env: Env) -> None:
        self.received: list[dict[str, object]] = []
        self.got = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="integration-1", clean_session=False)
        self.client.on_connect = lambda c, _u, _f, _rc, _p=None: c.subscribe("nazorat/v1/alerts/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.connect(env.broker.host, env.broker.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        self.received.append(json.loads(msg.payload))
        self.got.set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_an_alert_stored_while_the_broker_is_down_is_published_when_it_is_back(env: Env) -> None:
    worker = start_worker(env, "wo", client_id="ingest-outbox")
    integration = Integration(env)
    try:
        time.sleep(1.0)  # the integration's subscription is in place (and in the broker's snapshot)
        env.broker.stop()  # clean stop: Mosquitto writes its persistence snapshot
        with psycopg.connect(env.database_url) as conn:  # as a batch would, while publishing is impossible
            conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                         " VALUES ('fd-000', '2026-12-01T08:00Z', 'fs', 41.3, 69.2, 5, 'gps')")
            (aid,) = conn.execute("INSERT INTO alerts (kind, subject_id, device_id, fix_time) VALUES"
                                  " ('victim_proximity', 'fs', 'fd-000', '2026-12-01T08:00Z') RETURNING id").fetchone()
        assert env.count("SELECT count(*) FROM alert_outbox WHERE published_at IS NULL") == 1
        time.sleep(1.0)
        env.broker.start()
        assert integration.got.wait(60), "the alert never reached the integration"
        assert [(m["id"], m["kind"], m["severity"], m["subject_id"]) for m in integration.received] == [
            (aid, "victim_proximity", "critical", "fs")]
        assert env.wait_count(1, 30, "SELECT count(*) FROM alert_outbox WHERE published_at IS NOT NULL") == 1
    finally:
        integration.close()
        stop_worker(worker)
