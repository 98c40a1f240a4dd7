"""Signed webhooks from the transactional outbox: a receiver that fails its first attempts,
an outage of the receiver, a restart of the engine (a real ``nazorat serve`` process); no
event lost, none delivered unsigned, the delivery log and dead deliveries visible."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest

from ingest.webhooks import WebhookDispatcher, sign, verify
from nazorat.services import free_port
from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.wire import encode_fix, encode_payload, fixes_topic
from tests.api.conftest import LiveApi, live_api  # noqa: F401 (the fixture)
from tests.conftest import start_stack, stop_stack
from tests.interop.harness import CENTRE, count, setup_registry
from tests.interop.receiver import Receiver

T0_MS = 1_764_151_200_000
SECRET = "whsec-test-0123456789"


def _subscribe(url: str, target: str, *, max_attempts: int = 10, types: str = "{alert.*}") -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("INSERT INTO webhook_subscriptions (name, url, event_types, secret, max_attempts,"
                           " created_by) VALUES ('test', %s, %s, %s, %s, 'test') RETURNING id",
                           (target, types, SECRET, max_attempts)).fetchone()
    assert row is not None
    return int(row[0])


def _alerts(url: str, devices: tuple[str, ...] = ("d1", "d2", "d3"), t_ms: int = T0_MS) -> None:
    p = Pipeline(url)
    p.process([InboundMessage(fixes_topic(d), encode_payload([encode_fix(t_ms=t_ms, lat=CENTRE[1], lon=CENTRE[0],
                                                                         acc=5.0)])) for d in devices])
    p.close()


@contextmanager
def dispatching(url: str) -> Iterator[None]:
    d = WebhookDispatcher(database_url=url, poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.5, timeout_s=2)
    box: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        box["loop"], box["stop"] = loop, stop
        loop.run_until_complete(d.run(stop))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        while "stop" not in box:
            time.sleep(0.01)
        loop, stop = box["loop"], box["stop"]
        assert isinstance(loop, asyncio.AbstractEventLoop) and isinstance(stop, asyncio.Event)
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


def _wait(done: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_signature_round_trip() -> None:
    body = b'{"id":"alert-1"}'
    sig = sign("k", 1_764_151_200, body)
    assert verify("k", "1764151200", body, sig, now=1_764_151_230)
    assert not verify("k", "1764151200", body + b" ", sig, now=1_764_151_230)  # body changed
    assert not verify("other", "1764151200", body, sig, now=1_764_151_230)
    assert not verify("k", "1764151200", body, sig, now=1_764_152_000)  # a replay, too old


def test_a_receiver_failing_its_first_attempts_gets_every_event_once_signed(database_url: str) -> None:
    setup_registry(database_url)
    rx = Receiver(free_port(), SECRET, fail_first=4)
    rx.start()
    sub = _subscribe(database_url, rx.url)
    _alerts(database_url)
    try:
        with dispatching(database_url):
            _wait(lambda: count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                  == 3, "not delivered")
    finally:
        rx.stop()
    with psycopg.connect(database_url) as conn:
        ids = sorted(f"alert-{r[0]}" for r in conn.execute("SELECT id FROM alerts WHERE kind LIKE '%%zone%%'"))
    assert sorted(r.event_id for r in rx.received) == ids and all(r.signed for r in rx.received)
    assert {r.body["type"] for r in rx.received} == {"alert.exclusion_zone_entered"}
    assert count(database_url, "SELECT count(*) FROM webhook_attempts WHERE status_code = 503") == 4
    assert count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = %s", sub) == 3
    # every delivered alert is an audited disclosure
    assert count(database_url, "SELECT count(*) FROM audit_log WHERE action = 'webhook.delivered'") == 3


def test_dead_after_max_attempts_and_visible_through_the_api(live_api: LiveApi) -> None:  # noqa: F811
    url = live_api.database_url
    setup_registry(url)
    port = free_port()  # nothing listens: every attempt is refused
    with live_api.client() as api:
        created = api.post("/webhooks", json={"name": "down", "url": f"http://127.0.0.1:{port}/hook",
                                              "event_types": ["alert.exclusion_zone_entered"], "max_attempts": 3})
        assert created.status_code == 201, created.text
        hook = created.json()
        assert len(hook["secret"]) >= 32
        assert "secret" not in api.get("/webhooks").json()[0]
        _alerts(url, ("d1",))
        with dispatching(url):
            _wait(lambda: api.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "dead"}).json(),
                  "no dead delivery")
        (dead,) = api.get(f"/webhooks/{hook['id']}/deliveries", params={"status": "dead"}).json()
        assert dead["attempts"] == 3 and "ConnectError" in dead["last_error"]
        log = api.get(f"/webhooks/{hook['id']}/deliveries/{dead['id']}/attempts").json()
        assert len(log) == 3 and all(a["status_code"] is None for a in log)
        assert api.get("/webhooks/999/deliveries").status_code == 404
        assert api.post("/webhooks", json={"name": "x", "url": "ftp://x", "event_types": ["alert.*"]}).status_code \
            == 422
        assert api.delete(f"/webhooks/{hook['id']}").status_code == 204
        with live_api.acting_as("supervisor"):
            assert api.get("/webhooks").status_code == 403


@pytest.mark.slow
def test_deliveries_survive_a_receiver_outage_and_an_engine_restart(database_url: str, mqtt_url: str,
                                                                     tmp_path: Path) -> None:
    setup_registry(database_url)
    rx = Receiver(free_port(), SECRET)  # not started: the receiver is down
    _subscribe(database_url, rx.url)
    env = {"NAZORAT_WEBHOOK_BACKOFF_S": "0.2"}
    log1 = tmp_path / "engine-1.log"
    stack = start_stack(database_url, mqtt_url, log1, api=False, extra_env=env)
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    device = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    device.connect(host, int(port))
    device.loop_start()
    try:
        for i, d in enumerate(("d1", "d2", "d3")):
            device.publish(fixes_topic(d), encode_payload([encode_fix(t_ms=T0_MS + i, lat=CENTRE[1], lon=CENTRE[0],
                                                                      acc=5.0)]), qos=1).wait_for_publish(10)
        _wait(lambda: count(database_url, "SELECT count(*) FROM webhook_attempts") >= 6, "no failed attempts")
        stop_stack(stack, log1)  # the engine stops while every delivery is still pending
        assert count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'") == 3
        rx.start()  # the receiver is back
        log2 = tmp_path / "engine-2.log"
        stack = start_stack(database_url, mqtt_url, log2, api=False, extra_env=env)
        try:
            _wait(lambda: count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                  == 3, "not delivered after the restart")
        finally:
            stop_stack(stack, log2)
    finally:
        device.loop_stop()
        device.disconnect()
        rx.stop()
    assert sorted({r.event_id for r in rx.received}) == sorted(
        f"alert-{i}" for i in _ids(database_url))
    assert all(r.signed for r in rx.received)


def _ids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [int(r[0]) for r in conn.execute("SELECT id FROM alerts WHERE kind = 'exclusion_zone_entered'")]


def test_only_subscribed_event_types_and_active_subscriptions_get_deliveries(database_url: str) -> None:
    setup_registry(database_url)
    other = _subscribe(database_url, "http://127.0.0.1:9/hook", types="{alert.strap_opened}")
    exact = _subscribe(database_url, "http://127.0.0.1:9/hook", types="{alert.exclusion_zone_entered}")
    off = _subscribe(database_url, "http://127.0.0.1:9/hook")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE webhook_subscriptions SET active = false WHERE id = %s", (off,))
    _alerts(database_url, ("d1",))
    by_sub = {s: count(database_url, "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = %s", s)
              for s in (other, exact, off)}
    assert by_sub == {other: 0, exact: 1, off: 0}
    # the delivery was written in the alert's transaction: same event id as the alert
    assert count(database_url, "SELECT count(*) FROM webhook_deliveries d JOIN alerts a"
                               " ON d.event_id = 'alert-' || a.id") == 1
