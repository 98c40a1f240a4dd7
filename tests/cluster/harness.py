"""The cluster tier's harness: per-device MQTT publishers spread over the nodes, ingest
workers as real processes on the RabbitMQ backend, and what RabbitMQ says about its
queues (leaders, active consumers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg

from nazorat.services.rabbitmq import RabbitCluster
from telemetry.wire import fixes_topic
from tests.ingest.harness import _ZONE_RING, T0, ZONE_DEVICES

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


@dataclass
class Rabbit:
    cluster: RabbitCluster
    engine_password: str
    device_passwords: dict[str, str]

    @property
    def devices(self) -> list[str]:
        return sorted(self.device_passwords)

    def engine_urls(self, first: int = 0) -> str:
        urls = self.cluster.amqp_urls("nazorat-engine", self.engine_password)
        return ",".join(urls[first:] + urls[:first])

    def queues(self) -> list[dict[str, Any]]:
        out = json.loads(self.cluster.ctl("list_queues", "name", "leader", "consumers", "messages",
                                          "--formatter", "json"))
        return [q for q in out if q["name"].startswith("nazorat.ingest.")]

    def active_consumers(self) -> dict[str, str]:
        """Partition queue -> consumer tag of its single active consumer."""
        rows = json.loads(self.cluster.ctl("list_consumers", "queue_name", "consumer_tag", "active",
                                           "--formatter", "json"))
        return {r["queue_name"]: r["consumer_tag"] for r in rows if r.get("active") in (True, "true")}

    def wait_consumers(self, per_queue: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            queues = self.queues()
            if len(queues) == PARTITIONS and all(q["consumers"] >= per_queue for q in queues):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"consumers never registered: {queues}")
            time.sleep(1.0)


def register_fleet(database_url: str, devices: list[str]) -> None:
    """One subject, the devices, and an exclusion zone the first ZONE_DEVICES devices'
    tracks lie inside from their first fix: one violation and one alert each."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('cs', 'Cluster Subject')")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id, subject_id) VALUES (%s, 'cs')", [(d,) for d in devices])
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('cz', 'cz', 'exclusion', 'cs', %s)",
                     (json.dumps({"type": "Polygon", "coordinates": [_ZONE_RING]}),))


def one_fix(d_i: int, k: int) -> bytes:
    """Fix k of device number d_i: T0 + k seconds, a few metres apart (inside the zone for d_i < ZONE_DEVICES)."""
    return json.dumps({"t": T0 + k * 1000, "lat": 41.30 + d_i * 0.001, "lon": 69.24 + k * 1e-6, "acc": 5.0,
                       "seq": k}).encode()


class DevicePublisher:
    """One device: its own login, QoS 1, persistent session, and the next fix sent only
    once the broker acknowledged the previous one (a device that sends in order); when its
    node goes away it reconnects to the next node and paho resends the unacknowledged fix.

    Waiting for the PUBACK here, not paho's ``max_inflight_messages_set(1)``: on reconnect
    paho 2.2 resets its in-flight count to 0 before the CONNACK, so a ``publish`` in that
    moment goes out at once, ahead of the queued fixes it then resends (seen: fix 148 of a
    device stored before its fixes 61-147, which were then rightly marked late)."""

    def __init__(self, device: str, password: str, ports: list[int], first: int) -> None:
        self.device = device
        self.ports = ports
        self.node = first
        self.disconnects = 0
        self._closing = False
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=device, protocol=paho.MQTTv311,
                        clean_session=False)
        c.username_pw_set(device, password)
        c.max_inflight_messages_set(1)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 2)
        c.on_disconnect = self._moved
        c.connect("127.0.0.1", ports[first], keepalive=10)
        c.loop_start()
        self.client = c
        self.infos: list[paho.MQTTMessageInfo] = []

    def _moved(self, client: paho.Client, *_: object) -> None:
        self.disconnects += 1
        self.node = (self.node + 1) % len(self.ports)
        client._port = self.ports[self.node]  # paho's automatic reconnect goes to the next node

    def publish(self, d_i: int, n: int, pace_s: float) -> None:
        for k in range(n):
            info = self.client.publish(fixes_topic(self.device), one_fix(d_i, k), qos=1)
            self.infos.append(info)
            while not info._published and not self._closing:
                time.sleep(0.002)
            time.sleep(pace_s)

    def unacknowledged(self) -> int:
        # not is_published(): it raises for a message queued while disconnected (paho sends it on reconnect)
        return sum(1 for i in self.infos if not i._published)

    def close(self) -> None:
        self._closing = True
        self.client.loop_stop()
        self.client.disconnect()


class Fleet:
    def __init__(self, rabbit: Rabbit, devices: list[str]) -> None:
        ports = [n.mqtt_port for n in rabbit.cluster.nodes]
        self.devices = devices
        self.publishers = [DevicePublisher(d, rabbit.device_passwords[d], ports, i % len(ports))
                           for i, d in enumerate(devices)]
        self._threads: list[threading.Thread] = []

    def start(self, per_device: int, pace_s: float) -> None:
        for i, p in enumerate(self.publishers):
            t = threading.Thread(target=p.publish, args=(i, per_device, pace_s), daemon=True)
            t.start()
            self._threads.append(t)

    def wait_acknowledged(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(p.unacknowledged() for p in self.publishers):
            time.sleep(0.2)
        left = sum(p.unacknowledged() for p in self.publishers)
        assert left == 0, f"{left} fixes never acknowledged by the cluster"

    def close(self) -> None:
        for p in self.publishers:
            p.close()


def start_worker(rabbit: Rabbit, database_url: str, tmp: Path, name: str, *, owned: list[int], first_node: int,
                 standby_delay_s: float = 3.0) -> subprocess.Popen[bytes]:
    """``nazorat serve --no-api`` on the RabbitMQ backend (consumer tags ``<name>-<partition>``)."""
    env = {**os.environ, "NAZORAT_DATABASE_URL": database_url, "NAZORAT_BROKER": "rabbitmq",
           "NAZORAT_AMQP_URLS": rabbit.engine_urls(first_node), "NAZORAT_AMQP_PARTITIONS": str(PARTITIONS),
           "NAZORAT_AMQP_OWNED": ",".join(map(str, owned)), "NAZORAT_AMQP_STANDBY_DELAY_S": str(standby_delay_s),
           "NAZORAT_API_TOKEN": "cluster-token", "PYTHONUNBUFFERED": "1"}
    log_path = tmp / f"{name}.log"
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "nazorat.cli", "serve", "--no-api", "--client-id", name],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def wait_running(procs: dict[str, subprocess.Popen[bytes]], tmp: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    for name, proc in procs.items():
        log_path = tmp / f"{name}.log"
        while b"Nazorat is running" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"worker {name} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)


def stop_workers(procs: dict[str, subprocess.Popen[bytes]], tmp: Path) -> list[str]:
    """SIGTERM the live ones; returns the names of those that logged a traceback."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return [n for n in procs if "Traceback (most recent call last)" in (tmp / f"{n}.log").read_text(errors="replace")]


def counts_by_device(database_url: str) -> dict[str, tuple[int, int, int]]:
    """device -> (rows, distinct seq, late rows)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT device_id, count(*), count(DISTINCT seq), count(*) FILTER (WHERE late)"
                            " FROM positions GROUP BY device_id").fetchall()
    return {r[0]: (int(r[1]), int(r[2]), int(r[3])) for r in rows}


def stored_runs(database_url: str, device: str) -> list[tuple[int, int, bool]]:
    """A device's rows in the order they were stored, as runs of consecutive seq:
    (first seq, last seq, late) — what a failure message shows."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq, late FROM positions WHERE device_id = %s ORDER BY received_at, seq",
                            (device,)).fetchall()
    runs: list[tuple[int, int, bool]] = []
    for seq, late in rows:
        if runs and runs[-1][2] == late and runs[-1][1] + 1 == seq:
            runs[-1] = (runs[-1][0], seq, late)
        else:
            runs.append((seq, seq, late))
    return runs


def alerts_by_device(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT device_id, count(*) FROM alerts WHERE kind = 'exclusion_zone_entered'"
                            " GROUP BY device_id").fetchall()
    return {r[0]: int(r[1]) for r in rows}


__all__ = ["PARTITIONS", "ZONE_DEVICES", "DevicePublisher", "Fleet", "Rabbit", "alerts_by_device",
           "counts_by_device", "one_fix", "register_fleet", "start_worker", "stop_workers", "stored_runs",
           "wait_running"]
