"""Fault-test harness: our own PostgreSQL and Mosquitto (so the tests may kill them),
ingest workers as real processes, and a QoS 1 publisher that retries until acked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import psycopg

from nazorat.services import EmbeddedPostgres, MosquittoBroker, free_port
from telemetry.store import migrate as db
from telemetry.wire import fixes_topic
from tests.server_dirs import server_dir

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_764_151_200_000


@dataclass
class Env:
    pg: EmbeddedPostgres
    broker: MosquittoBroker
    database_url: str
    tmp: Path
    devices: list[str] = field(default_factory=list)

    @property
    def mqtt_url(self) -> str:
        return self.broker.url

    def count(self, sql: str = "SELECT count(*) FROM positions") -> int:
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            row = conn.execute(sql.encode()).fetchone()
            assert row is not None
            return int(row[0])

    def wait_count(self, want: int, timeout_s: float, sql: str = "SELECT count(*) FROM positions") -> int:
        """Poll until the count reaches ``want``; returns the last count (check it)."""
        deadline = time.monotonic() + timeout_s
        got = -1
        while time.monotonic() < deadline:
            try:
                got = self.count(sql)
            except psycopg.OperationalError:
                got = -1
            if got >= want:
                return got
            time.sleep(0.25)
        return got


# An exclusion zone of the fault subject that the first ZONE_DEVICES devices' tracks lie
# inside from their first fix (>= 40 m from its edge): exactly one violation and one
# alert per such device, however often their fixes are delivered.
ZONE_DEVICES = 10
_ZONE_RING = [[69.2395, 41.2995], [69.2500, 41.2995], [69.2500, 41.3095], [69.2395, 41.3095], [69.2395, 41.2995]]
ALERTS_SQL = "SELECT count(*) FROM alerts WHERE kind = 'exclusion_zone_entered'"
VIOLATIONS_SQL = "SELECT count(*) FROM violations"


def metric(port: int, name: str) -> float:
    """The sum of a Prometheus counter (all label sets) on a worker's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer fault-token"},
                     timeout=10).text
    values = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{")]
    assert values, f"no metric {name}"
    return sum(values)


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
    """Poll a condition; fail with ``what`` if it does not hold in time."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.25)


def wait_stable(read: Callable[[], float], timeout_s: float, *, reads: int = 4) -> float:
    """Poll a value until it is the same ``reads`` times in a row (a quiet system); returns it."""
    deadline = time.monotonic() + timeout_s
    seen = [read()]
    while len(seen) < reads or len(set(seen[-reads:])) > 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"value never settled: last reads {seen[-reads:]}")
        time.sleep(0.25)
        seen.append(read())
    return seen[-1]


def make_env(tmp: Path, n_devices: int) -> Env:
    pg = EmbeddedPostgres(server_dir("pg") / "pg")
    pg.start()
    broker = MosquittoBroker(tmp / "mq")
    broker.start()
    url = pg.url()
    db.upgrade(url)
    devices = [f"fd-{i:03d}" for i in range(n_devices)]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('fs', 'Fault Subject')")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id, subject_id) VALUES (%s, 'fs')", [(d,) for d in devices])
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('fz', 'fz', 'exclusion', 'fs', %s)",
                     (json.dumps({"type": "Polygon", "coordinates": [_ZONE_RING]}),))
    return Env(pg, broker, url, tmp, devices)


def start_worker(env: Env, name: str, *, client_id: str, shared_group: str | None = None,
                 api_port: int | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "nazorat.cli", "serve", "--client-id", client_id, "--mqtt-protocol", "5"]
    if api_port is None:
        args.append("--no-api")
    if shared_group:
        args += ["--shared-group", shared_group]
    env_vars = {**os.environ, "NAZORAT_DATABASE_URL": env.database_url, "NAZORAT_MQTT_URL": env.mqtt_url,
                "NAZORAT_API_TOKEN": "fault-token", "NAZORAT_API_PORT": str(api_port or free_port()),
                "PYTHONUNBUFFERED": "1"}
    log_path = env.tmp / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, env=env_vars, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while log_path.read_bytes().count(b"Nazorat is running") < 1:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker {name} did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


def stop_worker(proc: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    proc.wait(30)


def fix_messages(devices: list[str], n_fixes: int, per_message: int = 10) -> list[tuple[str, bytes]]:
    """Deterministic messages: fix k of device d at T0 + k seconds, a few metres apart."""
    out = []
    per_device = n_fixes // len(devices)
    for d_i, d in enumerate(devices):
        for start in range(0, per_device, per_message):
            batch = [{"t": T0 + k * 1000, "lat": 41.30 + d_i * 0.001, "lon": 69.24 + k * 1e-6, "acc": 5.0,
                      "seq": k} for k in range(start, min(start + per_message, per_device))]
            out.append((fixes_topic(d), json.dumps(batch).encode()))
    return out


class Publisher:
    """QoS 1 publisher with its own persistent session; republishes whatever was not
    acknowledged after a broker restart (duplicates are fine: writes are idempotent)."""

    def __init__(self, host: str, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                                  protocol=paho.MQTTv311, clean_session=False)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish_all(self, messages: list[tuple[str, bytes]], *, pace: Callable[[int], None] | None = None,
                    timeout_s: float = 120.0) -> None:
        infos = []
        for i, (topic, payload) in enumerate(messages):
            infos.append((topic, payload, self.client.publish(topic, payload, qos=1)))
            if pace is not None:
                pace(i)
        deadline = time.monotonic() + timeout_s
        pending = infos
        while pending and time.monotonic() < deadline:
            retry = []
            for topic, payload, info in pending:
                if info.rc != paho.MQTT_ERR_SUCCESS:  # never went out (disconnected): send again
                    again = self.client.publish(topic, payload, qos=1) if self.client.is_connected() else info
                    retry.append((topic, payload, again))
                elif not info.is_published():  # in flight: paho resends it after a reconnect
                    retry.append((topic, payload, info))
            pending = retry
            if pending:
                time.sleep(0.1)
        assert not pending, f"{len(pending)} messages never acknowledged by the broker"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def in_background(fn: Callable[[], None]) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t
