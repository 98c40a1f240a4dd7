"""Ingest on a replicated RabbitMQ cluster (issue 18): N worker processes on quorum-queue
partitions with single active consumer; a worker killed, then the node holding every
queue leader killed mid-burst. Each time: every fix stored exactly once, no fix first
seen after a newer one of its device (``positions.late`` stays false: the pipeline never
evaluated a fix older than one it had already evaluated for that device), one alert per
device that entered the zone. Kept small: the whole suite must stay near 10 minutes."""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest

from nazorat import cli
from telemetry.wire import fixes_topic
from tests.cluster.harness import (
    PARTITIONS,
    ZONE_DEVICES,
    Fleet,
    Rabbit,
    alerts_by_device,
    counts_by_device,
    one_fix,
    register_fleet,
    start_worker,
    stop_workers,
    stored_runs,
    wait_running,
)

pytestmark = pytest.mark.timeout(600)
_T = time.monotonic()


def _phase(what: str) -> None:  # timings, shown with -s or on failure
    print(f"[{time.monotonic() - _T:7.1f} s] {what}", flush=True)


def _stored(database_url: str) -> int:
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
        assert row is not None
        return int(row[0])


def _wait_stored(database_url: str, want: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    got = _stored(database_url)
    while got < want and time.monotonic() < deadline:
        time.sleep(0.25)
        got = _stored(database_url)
    return got


def _assert_exactly_once_in_order(database_url: str, devices: list[str], per_device: int) -> None:
    counts = counts_by_device(database_url)
    order = {d: stored_runs(database_url, d) for d, c in counts.items() if c[2]}
    assert counts == {d: (per_device, per_device, 0) for d in devices}, \
        f"per device (rows, distinct seq, late rows) differ from (N, N, 0); stored order (seq runs): {order}"
    alerts = alerts_by_device(database_url)
    assert alerts == {d: 1 for d in devices[:ZONE_DEVICES]}
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert row is not None and row[0] == 0


def test_a_device_cannot_publish_under_another_device_s_id(rabbit: Rabbit) -> None:
    """The topic permission ({username} in the pattern): RabbitMQ closes the connection
    and routes nothing."""
    intruder, victim = rabbit.devices[1], rabbit.devices[0]
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=intruder, protocol=paho.MQTTv311)
    c.username_pw_set(intruder, rabbit.device_passwords[intruder])
    dropped = threading.Event()
    c.on_disconnect = lambda *_: dropped.set()
    c.connect("127.0.0.1", rabbit.cluster.nodes[0].mqtt_port)
    c.loop_start()
    try:
        info = c.publish(fixes_topic(victim), one_fix(0, 0), qos=1)
        assert dropped.wait(15), "the broker kept the connection of a device publishing under another id"
        assert not info._published
    finally:
        c.loop_stop()
    assert sum(q["messages"] for q in rabbit.queues()) == 0


def test_broker_provision_command_is_idempotent_and_refuses_a_new_partition_count(
        rabbit: Rabbit, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NAZORAT_RABBITMQ_HTTP_URLS", ",".join(rabbit.cluster.http_urls()))
    monkeypatch.setenv("NAZORAT_RABBITMQ_ADMIN_PASSWORD", rabbit.cluster.admin_password)
    args = ["broker", "provision", "--partitions", str(PARTITIONS), "--devices", "cd-new", *rabbit.devices[:2]]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert [line.split("\t")[0] for line in first.splitlines()] == ["cd-new"]  # only the new account
    assert cli.main(args) == 0
    assert capsys.readouterr().out == ""  # nothing new, nothing rotated
    assert cli.main(["broker", "provision", "--partitions", str(PARTITIONS * 2)]) == 1
    assert "partitions" in capsys.readouterr().err
    assert cli.main(["broker", "provision", "--partitions", str(PARTITIONS), "--devices", "a.b"]) == 1


def test_a_killed_worker_s_partitions_move_to_its_standby(rabbit: Rabbit, database_url: str, tmp_path: Path) -> None:
    devices = rabbit.devices
    per_device = 100
    register_fleet(database_url, devices)
    workers = {"wa": start_worker(rabbit, database_url, tmp_path, "wa", owned=[0, 2], first_node=0),
               "wb": start_worker(rabbit, database_url, tmp_path, "wb", owned=[1, 3], first_node=1)}
    fleet = None
    try:
        wait_running(workers, tmp_path)
        _phase('wait_running(workers, tmp_path)')
        rabbit.wait_consumers(2, timeout_s=60)  # each partition: one active, one standing by
        active = rabbit.active_consumers()
        assert len(active) == PARTITIONS
        per_worker = collections.Counter(tag.rsplit("-", 1)[0] for tag in active.values())
        victim = per_worker.most_common(1)[0][0]
        survivor = next(n for n in workers if n != victim)
        fleet = Fleet(rabbit, devices)
        fleet.start(per_device, pace_s=0.01)
        _phase('fleet.start(per_device, pace_s=0.01)')
        total = per_device * len(devices)
        assert _wait_stored(database_url, total // 4, timeout_s=120) >= total // 4
        workers[victim].kill()  # kill -9 mid-burst: its batch in flight is never acknowledged
        workers[victim].wait(10)
        _phase(f"worker killed at {_stored(database_url)} stored")
        fleet.wait_acknowledged(timeout_s=180)
        _phase('fleet.wait_acknowledged(timeout_s=180)')
        assert _wait_stored(database_url, total, timeout_s=180) == total
        _assert_exactly_once_in_order(database_url, devices, per_device)
        _phase('_assert_exactly_once_in_order(database_u')
        after = rabbit.active_consumers()
        assert {tag.rsplit("-", 1)[0] for tag in after.values()} == {survivor}
        assert len(after) == PARTITIONS
    finally:
        if fleet is not None:
            fleet.close()
        traced = stop_workers(workers, tmp_path)
    assert traced == [], f"tracebacks in {traced}"


def test_node_holding_every_leader_killed_mid_burst_loses_nothing(rabbit: Rabbit, database_url: str,
                                                                  tmp_path: Path) -> None:
    devices = rabbit.devices
    per_device = 150
    register_fleet(database_url, devices)
    leaders = {q["leader"] for q in rabbit.queues()}
    assert len(leaders) == 1, f"the leaders are spread: {leaders}"
    doomed = rabbit.cluster.index_of(leaders.pop())
    # one worker on the doomed node (it must reconnect elsewhere), one on another node
    workers = {"wc": start_worker(rabbit, database_url, tmp_path, "wc", owned=[0, 2], first_node=doomed),
               "wd": start_worker(rabbit, database_url, tmp_path, "wd", owned=[1, 3],
                                  first_node=(doomed + 1) % len(rabbit.cluster.nodes))}
    fleet = None
    try:
        wait_running(workers, tmp_path)
        _phase('wait_running(workers, tmp_path)')
        rabbit.wait_consumers(2, timeout_s=60)
        _phase('rabbit.wait_consumers(2, timeout_s=60)')
        fleet = Fleet(rabbit, devices)
        fleet.start(per_device, pace_s=0.01)
        _phase('fleet.start(per_device, pace_s=0.01)')
        total = per_device * len(devices)
        assert _wait_stored(database_url, total // 4, timeout_s=120) >= total // 4
        rabbit.cluster.kill(doomed)  # kill -9 of the node holding every queue leader
        at_kill = _stored(database_url)
        _phase(f"node killed at {at_kill} stored")
        fleet.wait_acknowledged(timeout_s=240)
        _phase('fleet.wait_acknowledged(timeout_s=240)')
        assert _wait_stored(database_url, total, timeout_s=180) == total
        assert at_kill < total, "the burst was over before the node died: nothing was tested"
        assert sum(p.disconnects for p in fleet.publishers) > 0  # devices on the dead node moved
        _assert_exactly_once_in_order(database_url, devices, per_device)
        _phase('_assert_exactly_once_in_order(database_u')
        new_leaders = {q["leader"] for q in rabbit.queues()}
        assert rabbit.cluster.nodes[doomed].name not in new_leaders
        assert all(w.poll() is None for w in workers.values()), "a worker died with the node"
    finally:
        if fleet is not None:
            fleet.close()
        traced = stop_workers(workers, tmp_path)
    assert traced == [], f"tracebacks in {traced}"
