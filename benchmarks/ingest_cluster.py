"""Ingest benchmark on a 3-node RabbitMQ cluster (``python -m benchmarks.ingest --broker
rabbitmq-cluster [--quick] [--workers 1,2,4] [--json PATH]``).

It starts its own embedded PostgreSQL and a 3-node RabbitMQ cluster of its own
(``nazorat.services.rabbitmq``), provisions the topology (4 partitions, quorum leaders
balanced over the nodes) and registers 200 devices. Then, for each worker count, on a
fresh database: that many ``nazorat serve --no-api`` processes on the RabbitMQ backend
(partitions split between them), and a publisher process with one MQTT 3.1.1 connection
per node (a device always on the same one, so its order holds) offering QoS 1 messages of
10 fixes at ``--rate`` fixes/s for the duration. ``fixes_per_s``, ``p50_ms`` and
``p99_ms`` are measured as in the Mosquitto mode (publish clock in ``seq`` to the insert's
transaction time).

Same-run ceilings, measured on the same machine in the same run:

- ``broker_ceiling_fixes_per_s``: the same publisher through the cluster into a bare
  AMQP consumer process that only acknowledges (``basic.ack(multiple=True)`` per 500),
  no database: what the cluster and the Python clients carry here;
- ``pipeline_ceiling_fixes_per_s``: one ``Pipeline`` fed the same messages in-process in
  batches of 500, no broker: what one worker's database path carries.

Each worker count reports ``of_broker_ceiling`` and ``of_pipeline_ceiling`` (fixes/s over
the pipeline ceiling times the worker count: 1.0 is linear scaling).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stored import fresh_database, register_devices, wait_and_count
from nazorat.services import EmbeddedPostgres
from nazorat.services.rabbit_provision import RabbitAdmin, provision
from nazorat.services.rabbitmq import ADMIN_USER, RabbitCluster
from telemetry.wire import fixes_topic

N_DEVICES = 200
PER_MESSAGE = 10
PARTITIONS = 4
PUB_USER = "bench-publisher"


def _payload(d: int, seq: list[int], base_ms: int, now_ms: int) -> bytes:
    batch = []
    for _ in range(PER_MESSAGE):
        seq[d] += 1
        batch.append(f'{{"t":{base_ms + seq[d] * 1000},"lat":41.3,"lon":69.24,"acc":5,"seq":{now_ms}}}')
    return ("[" + ",".join(batch) + "]").encode()


def _publisher(ports: list[int], password: str, seconds: float, rate: float, out: Any) -> None:
    import paho.mqtt.client as paho

    clients = []
    for i, port in enumerate(ports):
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{i}", protocol=paho.MQTTv311,
                        clean_session=False)
        c.username_pw_set(PUB_USER, password)
        c.max_inflight_messages_set(500)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    seq = [0] * N_DEVICES
    topics = [fixes_topic(f"bc-{d:04d}") for d in range(N_DEVICES)]
    sent = messages = d = 0
    start = time.time()
    base_ms = int(start * 1000) - 3_600_000
    while time.time() - start < seconds:
        ahead = sent - rate * (time.time() - start)
        if ahead > 0:
            time.sleep(ahead / rate)
        c = clients[d % len(clients)]
        c.publish(topics[d], _payload(d, seq, base_ms, int(time.time() * 1000)), qos=1)
        while len(c._out_messages) > 3000:
            time.sleep(0.001)
        sent += PER_MESSAGE
        messages += 1
        d = (d + 1) % N_DEVICES
    for c in clients:
        while c._out_messages:
            time.sleep(0.01)
        c.loop_stop()
        c.disconnect()
    out.put({"sent": sent, "messages": messages, "start": start, "end": time.time(), "seq": seq})


def _bare_consumer(urls: list[str], want_messages: int, out: Any) -> None:
    """Consume every partition and only acknowledge: the cluster's own ceiling here. Like
    a worker, it reconnects to the next node when a node closes its connection (seen in a
    full run: a connection reset by a node under load) and counts only what it
    acknowledged: the unacknowledged rest comes again."""
    from ingest.amqp import AmqpConsumer, AmqpOptions
    from ingest.errors import BrokerConnectionError

    async def main() -> None:
        n = reconnects = 0
        first = last = 0.0
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ready = False
        while n < want_messages:
            try:
                async with AmqpConsumer(AmqpOptions(urls, partitions=PARTITIONS), prefetch=1000,
                                        start=reconnects) as cons:
                    if not ready:
                        out.put("ready")
                        ready = True
                    while n < want_messages:
                        batch = await cons.take(min(500, want_messages - n), 1.0, never)
                        if not batch:
                            continue
                        if not n:
                            first = time.time()
                        await cons.ack_batch(batch)  # the worker's own batch size (500) and ack
                        n += len(batch)
                        last = time.time()
            except BrokerConnectionError as exc:
                reconnects += 1
                if reconnects > 20:
                    out.put({"error": f"gave up after {reconnects} connection losses: {exc}"})
                    return
                await asyncio.sleep(0.5)
        out.put({"messages": n, "first": first, "last": last, "reconnects": reconnects})

    asyncio.run(main())


def _pipeline_ceiling(url: str, seconds: float) -> float:
    from telemetry.model import InboundMessage
    from telemetry.pipeline import Pipeline

    pipe = Pipeline(url)
    seq = [0] * N_DEVICES
    base_ms = int(time.time() * 1000) - 7_200_000
    fixes = 0
    start = time.perf_counter()
    d = 0
    try:
        while time.perf_counter() - start < seconds:
            batch = []
            for _ in range(500):
                batch.append(InboundMessage(fixes_topic(f"bc-{d:04d}"), _payload(d, seq, base_ms, 0)))
                d = (d + 1) % N_DEVICES
            fixes += pipe.process(batch).stored
        return fixes / (time.perf_counter() - start)
    finally:
        pipe.close()


def _fresh_db(pg: EmbeddedPostgres, name: str) -> str:
    url = fresh_database(pg, name)
    register_devices(url, "bc", N_DEVICES)
    return url


def _publish(cluster: RabbitCluster, password: str, seconds: float, rate: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    pub = ctx.Process(target=_publisher, args=([n.mqtt_port for n in cluster.nodes], password, seconds, rate, q))
    pub.start()
    result: dict[str, Any] = q.get(timeout=seconds + 300)
    pub.join(30)
    return result


def _purge(cluster: RabbitCluster) -> int:
    """Empty the partitions between phases (a phase's consumer stops at the count it was
    told; a message the publisher sent past it must not reach the next phase's fresh
    database: once seen, 10 stale fixes made 1,444 of the next phase's rows late).
    Returns how many messages were left."""
    queues = json.loads(cluster.ctl("list_queues", "name", "messages", "--formatter", "json"))
    left = sum(int(q["messages"]) for q in queues if q["name"].startswith("nazorat.ingest."))
    for p in range(PARTITIONS):
        cluster.ctl("purge_queue", f"nazorat.ingest.{p}")
    return left


def _one_count(cluster: RabbitCluster, pg: EmbeddedPostgres, engine_pw: str, pub_pw: str, workers: int,
               seconds: float, rate: float, tmp: Path) -> dict[str, Any]:
    url = _fresh_db(pg, f"bench_w{workers}")
    urls = cluster.amqp_urls("nazorat-engine", engine_pw)
    procs = []
    for w in range(workers):
        owned = [p for p in range(PARTITIONS) if p % workers == w]
        env = {**os.environ, "NAZORAT_DATABASE_URL": url, "NAZORAT_BROKER": "rabbitmq",
               "NAZORAT_AMQP_URLS": ",".join(urls[w % 3:] + urls[:w % 3]), "NAZORAT_AMQP_PARTITIONS": str(PARTITIONS),
               "NAZORAT_AMQP_OWNED": ",".join(map(str, owned)), "NAZORAT_AMQP_STANDBY_DELAY_S": "30",
               "NAZORAT_API_TOKEN": "bench", "NAZORAT_BATCH_MAX_MESSAGES": "500", "NAZORAT_BATCH_MAX_MS": "50",
               "PYTHONUNBUFFERED": "1"}
        log = open(tmp / f"w{workers}-{w}.log", "wb")  # noqa: SIM115 - the worker's output
        procs.append(subprocess.Popen([sys.executable, "-m", "nazorat.cli", "serve", "--no-api", "--client-id",
                                       f"bench-{w}"], env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for w, proc in enumerate(procs):
            while b"Nazorat is running" not in (tmp / f"w{workers}-{w}.log").read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError((tmp / f"w{workers}-{w}.log").read_text())
                time.sleep(0.1)
        result = _publish(cluster, pub_pw, seconds, rate)
        st = wait_and_count(url, result["sent"])
        count, distinct, last_commit = st.rows, st.distinct, st.last_commit
        elapsed = last_commit - result["start"]
        return {"workers": workers, "published_fixes": result["sent"], "fixes_per_s": round(count / elapsed),
                "publisher_fixes_per_s": round(result["sent"] / (result["end"] - result["start"])),
                "lost": result["sent"] - distinct, "duplicated": count - distinct, "late": st.late,
                "drain_s_after_publisher": round(last_commit - result["end"], 2),
                "p50_ms": round(st.p50_ms, 1), "p99_ms": round(st.p99_ms, 1)}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def _broker_ceiling(cluster: RabbitCluster, engine_pw: str, pub_pw: str, seconds: float,
                    rate: float) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    want = int(seconds * rate / PER_MESSAGE)
    cons = ctx.Process(target=_bare_consumer, args=(cluster.amqp_urls("nazorat-engine", engine_pw), want, q))
    cons.start()
    assert q.get(timeout=60) == "ready"
    pub = _publish(cluster, pub_pw, seconds, rate)
    got = q.get(timeout=300)
    cons.join(30)
    if "error" in got:
        raise RuntimeError(f"the broker-ceiling consumer: {got['error']}")
    return float(got["messages"] * PER_MESSAGE / max(0.001, got["last"] - pub["start"])), int(got["reconnects"])


def run(seconds: float, rate: float, worker_counts: list[int]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-bench-cluster-"))
    pg = EmbeddedPostgres(tmp / "pg")
    pg.start()
    cluster = RabbitCluster(tmp / "rabbit")
    ok = False
    try:
        started = time.monotonic()
        cluster.start()
        cluster_start_s = time.monotonic() - started
        admin = RabbitAdmin(cluster.http_urls(), ADMIN_USER, cluster.admin_password)
        engine_pw = provision(admin, partitions=PARTITIONS).passwords["nazorat-engine"]
        pub_pw = "bench-" + os.urandom(8).hex()
        admin.put_user(PUB_USER, pub_pw)
        admin.put_permissions(PUB_USER, configure="^$", write=r"^amq\.topic$", read="^$")
        admin.put_topic_permission(PUB_USER, write=r"^nazorat\.v1\.devices\.[^.]+\.fixes$", read="^$")
        pipeline_ceiling = _pipeline_ceiling(_fresh_db(pg, "bench_ceiling"), min(seconds, 15.0))
        broker_ceiling, ceiling_reconnects = _broker_ceiling(cluster, engine_pw, pub_pw, seconds, rate)
        left_after_ceiling = _purge(cluster)
        runs = []
        for w in worker_counts:
            r = _one_count(cluster, pg, engine_pw, pub_pw, w, seconds, rate, tmp)
            r["left_in_queues"] = _purge(cluster)
            r["of_broker_ceiling"] = round(r["fixes_per_s"] / broker_ceiling, 2)
            r["of_pipeline_ceiling"] = round(r["fixes_per_s"] / (pipeline_ceiling * w), 2)
            runs.append(r)
        ok = True
        return {
            "mode": "quick" if seconds < 60 else "full", "broker": "rabbitmq-cluster", "nodes": len(cluster.nodes),
            "partitions": PARTITIONS, "devices": N_DEVICES, "fixes_per_message": PER_MESSAGE,
            "load_seconds": seconds, "offered_fixes_per_s": rate, "cluster_start_s": round(cluster_start_s, 1),
            "broker_ceiling_fixes_per_s": round(broker_ceiling), "broker_ceiling_reconnects": ceiling_reconnects,
            "left_in_queues_after_ceiling": left_after_ceiling,
            "pipeline_ceiling_fixes_per_s": round(pipeline_ceiling), "runs": runs,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
    finally:
        if not ok:  # keep the nodes' logs (stop removes the cluster's folders)
            for node in cluster.nodes:
                shutil.copytree(node.log_dir, tmp / f"rabbit-log-{node.index + 1}", dirs_exist_ok=True)
            print(f"benchmark failed: logs kept in {tmp}", file=sys.stderr)
        cluster.stop()
        pg.destroy()


def main(*, quick: bool, json_path: Path | None, rate: float, workers: str = "1,2,4") -> int:
    result = run(15.0 if quick else 60.0, rate, [int(w) for w in workers.split(",")])
    text = json.dumps(result, indent=2)
    print(text)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
    return 0 if all(r["lost"] == 0 and r["duplicated"] == 0 for r in result["runs"]) else 1


__all__ = ["main", "run"]
