"""Ingest benchmark: a publisher process through a real Mosquitto into PostgreSQL.

    python -m benchmarks.ingest --quick --json PATH   # 15 s of load
    python -m benchmarks.ingest --json PATH           # 60 s of load (the README's figure)

It starts its own embedded PostgreSQL and Mosquitto (project config), registers 1,000
devices, runs one ingest worker (``nazorat serve --no-api``) as a separate process, and
a publisher process that offers QoS 1 messages of 10 fixes each at ``--rate`` fixes/s
(default 20,000) for the duration. Then it waits for the database to hold every
published fix. ``fixes_per_s`` is fixes stored / (last commit - first publish), so a
worker that falls behind the offered load shows it there and in the drain time;
``p50_ms`` / ``p99_ms`` run from the publisher's clock at publish (carried in each
fix's ``seq``) to the insert's transaction time, from the stored rows; ``lost`` and ``duplicated`` compare the rows with what was
published.

Ceilings, measured in the same run on the same traffic (``benchmarks.ceilings``):
``broker_drain_messages_per_s`` (as many 10-fix messages queued for a ``mosquitto_sub``
session and drained by it) and ``copy_rows_per_s`` (a bare binary COPY of as many rows);
``messages_per_s_vs_broker_drain`` and ``fixes_per_s_vs_copy`` are the ratios.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import ceilings
from benchmarks.consumer import close_after_acks, queue_messages
from benchmarks.stored import register_devices, wait_and_count
from nazorat.services import EmbeddedPostgres, MosquittoBroker, free_port
from telemetry.store import migrate as db
from telemetry.wire import fixes_topic

N_DEVICES = 1000
PER_MESSAGE = 10


def _publisher(host: str, port: int, seconds: float, rate: float, out: Any) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=paho.MQTTv311,
                    clean_session=False)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    c.loop_start()
    seq = [0] * N_DEVICES
    topics = [fixes_topic(f"bd-{d:04d}") for d in range(N_DEVICES)]
    sent = 0
    messages = 0
    start = time.time()
    base_ms = int(start * 1000) - 3_600_000  # device times: an hour ago onwards, one second apart
    last_info = None
    d = 0
    while time.time() - start < seconds:
        ahead = sent - rate * (time.time() - start)  # pace to the offered load
        if ahead > 0:
            time.sleep(ahead / rate)
        now_ms = int(time.time() * 1000)
        batch = []
        for _ in range(PER_MESSAGE):
            seq[d] += 1
            # device time must be unique per device, so it counts up from a fixed recent instant
            # (a stale one would be removed by retention); the publish time (ms) rides in
            # ``seq`` for the latency measurement
            batch.append(f'{{"t":{base_ms + seq[d] * 1000},"lat":41.3,"lon":69.24,"acc":5,"seq":{now_ms}}}')
        last_info = c.publish(topics[d], ("[" + ",".join(batch) + "]").encode(), qos=1)
        while len(c._out_messages) > 5000:  # keep paho's queue bounded
            time.sleep(0.001)
        sent += PER_MESSAGE
        messages += 1
        d = (d + 1) % N_DEVICES
    close_after_acks(c, last_info, 60)
    out.put({"sent": sent, "messages": messages, "start": start, "end": time.time()})


def run(seconds: float, rate: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-bench-"))
    pg = EmbeddedPostgres(tmp / "pg")
    pg.start()
    broker = MosquittoBroker(tmp / "mq")
    broker.start()
    url = pg.url()
    worker = None
    try:
        db.upgrade(url)
        register_devices(url, "bd", N_DEVICES)
        env = {**os.environ, "NAZORAT_DATABASE_URL": url, "NAZORAT_MQTT_URL": broker.url,
               "NAZORAT_API_TOKEN": "bench", "NAZORAT_API_PORT": str(free_port()),
               "NAZORAT_BATCH_MAX_MESSAGES": "500", "NAZORAT_BATCH_MAX_MS": "50", "PYTHONUNBUFFERED": "1"}
        log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - the worker's output
        worker = subprocess.Popen([sys.executable, "-m", "nazorat.cli", "serve", "--no-api", "--client-id",
                                   "bench-ingest"], env=env, stdout=log, stderr=subprocess.STDOUT)
        while b"Nazorat is running" not in (tmp / "worker.log").read_bytes():
            if worker.poll() is not None:
                raise RuntimeError((tmp / "worker.log").read_text())
            time.sleep(0.1)
        q: Any = mp.get_context("spawn").Queue()
        pub = mp.get_context("spawn").Process(target=_publisher, args=(broker.host, broker.port, seconds, rate, q))
        pub.start()
        result = q.get(timeout=seconds + 300)
        pub.join(30)
        st = wait_and_count(url, result["sent"])
        count, distinct, last_commit = st.rows, st.distinct, st.last_commit
        elapsed = last_commit - result["start"]
        worker.terminate()
        worker.wait(30)
        worker = None
        ceiling = ceilings.drain(broker, lambda prefix: queue_messages(
            broker.host, broker.port, result["messages"], N_DEVICES, prefix, PER_MESSAGE, "bd-"), "bench-ceiling")
        base = datetime.now(UTC) - timedelta(days=1)
        ceiling |= ceilings.copy(url, ((f"bd-{i % N_DEVICES:04d}", base + timedelta(milliseconds=i), "bench", 41.3,
                                        69.24, 5.0, None, None, "gps", i, False, []) for i in range(result["sent"])))
        out = {
            "mode": "quick" if seconds < 60 else "full",
            "load_seconds": seconds,
            "offered_fixes_per_s": rate,
            "published_fixes": result["sent"],
            "published_messages": result["messages"],
            "fixes_per_message": PER_MESSAGE,
            "devices": N_DEVICES,
            "fixes_per_s": round(count / elapsed),
            "messages_per_s": round(count / PER_MESSAGE / elapsed),
            "publisher_fixes_per_s": round(result["sent"] / (result["end"] - result["start"])),
            "lost": result["sent"] - distinct,
            "duplicated": count - distinct,
            "drain_s_after_publisher": round(last_commit - result["end"], 2),
            "p50_ms": round(st.p50_ms, 1),
            "p99_ms": round(st.p99_ms, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
        out |= ceiling
        out["messages_per_s_vs_broker_drain"] = round(out["messages_per_s"] / out["broker_drain_messages_per_s"], 4)
        out["fixes_per_s_vs_copy"] = round(out["fixes_per_s"] / out["copy_rows_per_s"], 4)
        return out
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        broker.kill()
        pg.destroy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--rate", type=float, default=20_000.0, help="offered load, fixes per second")
    p.add_argument("--broker", choices=("mosquitto", "rabbitmq-cluster"), default="mosquitto",
                   help="rabbitmq-cluster: a 3-node RabbitMQ cluster of its own (benchmarks/ingest_cluster.py)")
    p.add_argument("--workers", default="1,2,4", help="rabbitmq-cluster: the worker counts to run")
    a = p.parse_args(argv)
    if a.broker == "rabbitmq-cluster":
        from benchmarks import ingest_cluster

        return ingest_cluster.main(quick=a.quick, json_path=a.json, rate=a.rate, workers=a.workers)
    result = run(15.0 if a.quick else 60.0, a.rate)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
