"""Fault tests with real processes: nothing lost, nothing duplicated.

Each test starts its own PostgreSQL and Mosquitto (the suite's, or the machine's, are
never touched) and runs ingest workers as separate processes. Stored rows alone prove
little (the unique key deduplicates them whatever happens), so the tests also count what
redelivery could duplicate (alerts and violations of a zone ten devices are inside) and,
for a shared subscription, the deliveries each worker processed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nazorat.services import MosquittoBroker, free_port
from tests.ingest.harness import (
    ALERTS_SQL,
    VIOLATIONS_SQL,
    ZONE_DEVICES,
    Env,
    Publisher,
    fix_messages,
    in_background,
    make_env,
    metric,
    start_worker,
    stop_worker,
    wait_stable,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not MosquittoBroker.available(),
    reason="needs the mosquitto binary (`make test` installs it with apt-get when run as root)")]


def assert_one_alert_per_zone_device(env: Env) -> None:
    """Exactly one violation and one alert for each device inside the zone: redelivered or
    retried batches must not raise them again. Alerts commit with their fixes, so once
    every fix is stored these counts are final."""
    assert env.count(ALERTS_SQL) == ZONE_DEVICES
    assert env.count(VIOLATIONS_SQL) == ZONE_DEVICES
    assert env.count("SELECT count(DISTINCT device_id) FROM alerts") == ZONE_DEVICES


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path, n_devices=50)
    try:
        yield e
    finally:
        e.broker.kill()
        e.pg.destroy()


def test_kill_9_mid_burst_then_restart_stores_every_fix_exactly_once(env: Env) -> None:
    n = 20_000
    worker = start_worker(env, "w1", client_id="ingest-a")
    pub = Publisher(env.broker.host, env.broker.port)
    # single-fix messages: a burst long enough that the kill lands in it (with 10-fix
    # messages the engine stored all 20,000 before the kill once it got faster)
    messages = fix_messages(env.devices, n, per_message=1)
    sender = in_background(lambda: pub.publish_all(messages))
    assert env.wait_count(n // 5, timeout_s=60) >= n // 5
    stop_worker(worker, kill=True)  # mid-burst: some batches are stored, some in flight
    at_kill = env.count()
    sender.join(120)
    assert not sender.is_alive()
    worker = start_worker(env, "w2", client_id="ingest-a")  # same session: the broker redelivers
    try:
        assert env.wait_count(n, timeout_s=120) == n
        assert at_kill < n
        assert env.count("SELECT count(*) FROM dead_letters") == 0
        assert_one_alert_per_zone_device(env)
    finally:
        stop_worker(worker)
        pub.close()


def test_two_workers_on_a_shared_subscription_store_each_fix_once(env: Env) -> None:
    n = 6_000
    ports = (free_port(), free_port())
    a = start_worker(env, "wa", client_id="ingest-sa", shared_group="nazorat", api_port=ports[0])
    b = start_worker(env, "wb", client_id="ingest-sb", shared_group="nazorat", api_port=ports[1])
    pub = Publisher(env.broker.host, env.broker.port)
    messages = fix_messages(env.devices, n, per_message=5)
    try:
        pub.publish_all(messages)
        assert env.wait_count(n, timeout_s=60) == n

        def received() -> tuple[float, ...]:
            return tuple(metric(p, "nazorat_mqtt_messages_received_total") for p in ports)

        per_worker = wait_stable(received, timeout_s=60)
        # each message went to exactly one of the two (a broken share gives both all of them)
        assert sum(per_worker) == len(messages)
        assert min(per_worker) > 0
        assert sum(metric(p, "nazorat_fixes_duplicate_total") for p in ports) == 0
        assert_one_alert_per_zone_device(env)
    finally:
        stop_worker(a)
        stop_worker(b)
        pub.close()


def test_postgres_outage_under_load_recovers_by_itself_and_loses_nothing(env: Env) -> None:
    n = 6_000
    port = free_port()
    worker = start_worker(env, "wpg", client_id="ingest-pg", api_port=port)
    pub = Publisher(env.broker.host, env.broker.port)
    messages = fix_messages(env.devices, n, per_message=5)
    sender = in_background(lambda: pub.publish_all(messages, pace=lambda i: time.sleep(0.004) if i % 5 == 0 else None))
    try:
        assert env.wait_count(n // 10, timeout_s=60) >= n // 10
        env.pg.stop()  # the database goes away under load
        wait_until("the worker to see the outage", lambda: metric(port, "nazorat_db_errors_total") >= 1, 60)
        env.pg.start()
        sender.join(120)
        assert not sender.is_alive()
        assert env.wait_count(n, timeout_s=90) == n
        wait_until("the worker to report the database up", lambda: metric(port, "nazorat_db_up") == 1.0, 30)
        assert_one_alert_per_zone_device(env)  # the failed batches were retried whole, not twice
    finally:
        stop_worker(worker)
        pub.close()


def test_broker_restart_under_load_loses_nothing(env: Env) -> None:
    n = 6_000
    worker = start_worker(env, "wmq", client_id="ingest-mq")
    pub = Publisher(env.broker.host, env.broker.port)
    messages = fix_messages(env.devices, n, per_message=5)
    sender = in_background(lambda: pub.publish_all(messages, pace=lambda i: time.sleep(0.004) if i % 5 == 0 else None))
    try:
        assert env.wait_count(n // 10, timeout_s=60) >= n // 10
        env.broker.stop()  # clean stop: Mosquitto writes its persistence snapshot
        env.broker.start()
        sender.join(150)
        assert not sender.is_alive()
        assert env.wait_count(n, timeout_s=90) == n
        assert_one_alert_per_zone_device(env)
    finally:
        stop_worker(worker)
        pub.close()


def _hostile(i: int) -> tuple[str, bytes]:
    from telemetry.wire import fixes_topic

    good = b'{"t": 1764151200000, "lat": 41.3, "lon": 69.2, "acc": 5}'
    topic = fixes_topic("fd-000")
    kind = i % 10
    if kind == 0:
        return topic, good[: 5 + i % 40]  # truncated
    if kind == 1:
        return topic, b'{"t": 1764151200000, "lat": "41.3", "lon": 69.2, "acc": 5}'  # wrong type
    if kind == 2:
        return topic, b'{"t": 1764151200000, "lat": NaN, "lon": 69.2, "acc": 5}'
    if kind == 3:
        return topic, (b'{"pad": "' + b"x" * 300_000 + b'"}') if i % 1000 == 3 else b'{"t": true}'  # huge / bool
    if kind == 4:
        return topic, b"[" * 50_000 + b"]" * 50_000  # deeply nested
    if kind == 5:
        return "nazorat/v1/devices/bad id!/fixes", good  # malformed device id
    if kind == 6:
        return fixes_topic(f"ghost-{i}"), good  # unknown device
    if kind == 7:
        return topic, b'{"t": 1764151200000, "lat": 91, "lon": 69.2, "acc": 5}'
    if kind == 8:
        return topic, b'{"t": 1764151200000, "lat": 41.3, "lon": 69.2, "acc": 5, "cmd": "rm"}'
    return topic, b'"just a string"'


def test_ten_thousand_hostile_payloads_are_rejected_with_reasons_and_good_traffic_survives(env: Env) -> None:
    good = fix_messages(env.devices, 2_000, per_message=1)
    hostile = [_hostile(i) for i in range(10_000)]
    mixed = []
    for i, h in enumerate(hostile):
        mixed.append(h)
        if i % 5 == 0:
            mixed.append(good[i // 5])
    worker = start_worker(env, "whostile", client_id="ingest-hostile")
    pub = Publisher(env.broker.host, env.broker.port)
    try:
        pub.publish_all(mixed)
        assert env.wait_count(10_000, timeout_s=120, sql="SELECT count(*) FROM dead_letters") == 10_000
        assert env.wait_count(2_000, timeout_s=60) == 2_000
        assert env.count("SELECT count(*) FROM dead_letters WHERE reason = ''") == 0
        assert env.count("SELECT count(DISTINCT reason) FROM dead_letters") >= 9
        assert env.count("SELECT max(octet_length(payload)) FROM dead_letters") <= 8192
        assert worker.poll() is None  # still running
    finally:
        stop_worker(worker)
        pub.close()
