"""The MQTT consumer alone: how fast the ingest worker's loop drains single-fix messages.

    python -m benchmarks.consumer [--messages N] [--profile PATH]

Queues N single-fix QoS 1 messages in Mosquitto (the project's config) for the ingest
worker's persistent session while it is offline, then times the ``IngestWorker`` loop
draining them with a store that does nothing (every batch is "committed" at once and
acknowledged), and ``mosquitto_sub`` draining the same messages queued the same way (a C
client: the broker's own delivery ceiling). So the figure is the consumer's per-message
cost (client, loop, acknowledgements), apart from the pipeline and the database.
``--profile`` writes a cProfile of the worker's drain (``python -m pstats PATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.worker import IngestWorker
from nazorat.services import MosquittoBroker
from telemetry.pipeline import BatchOutcome
from telemetry.wire import fixes_topic


class _NoStore:
    """A pipeline whose every batch commits at once (the consumer's cost only)."""

    @property
    def compile_errors(self) -> dict[str, str]:
        return {}

    def process(self, messages: list[Any], *, live: bool = True) -> BatchOutcome:
        return BatchOutcome(messages=len(messages))

    def outbox_pending(self, limit: int = 200) -> list[dict[str, Any]]:
        return []

    def outbox_done(self, published: list[int], failed: tuple[int, str] | None = None) -> None:
        pass

    def check_silence(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


def close_after_acks(c: paho.Client, last: paho.MQTTMessageInfo | None, timeout_s: float = 120.0) -> None:
    """Wait until the broker acknowledged everything ``c`` published, then disconnect."""
    if last is not None:
        last.wait_for_publish(timeout_s)
    while c._out_messages:
        time.sleep(0.01)
    c.loop_stop()
    c.disconnect()


def queue_messages(host: str, port: int, n: int, devices: int = 1000, prefix: str = "", per_message: int = 1,
                   device_prefix: str = "bc-") -> int:
    """Publish ``n`` QoS 1 messages of ``per_message`` fixes round-robin over ``devices``
    devices; returns ``n`` once the broker acknowledged them all."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-queue", protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    c.loop_start()
    base = int(time.time() * 1000) - 3_600_000
    topics = [prefix + fixes_topic(f"{device_prefix}{d:04d}") for d in range(devices)]
    info = None
    for i in range(n):
        fixes = [f'{{"t":{base + i * per_message + k},"lat":41.3,"lon":69.24,"acc":5,"seq":{i}}}'
                 for k in range(per_message)]
        payload = (fixes[0] if per_message == 1 else "[" + ",".join(fixes) + "]").encode()
        info = c.publish(topics[i % devices], payload, qos=1)
        while len(c._out_messages) > 5000:
            time.sleep(0.001)
    close_after_acks(c, info)
    return n


async def _drain_worker(url: str, n: int, client_id: str, batch: int, protocol: int) -> tuple[float, float]:
    got = 0
    stop = asyncio.Event()
    first: list[float] = []

    def on_batch(o: BatchOutcome) -> None:
        nonlocal got
        if not first:
            first.append(time.perf_counter())
        got += o.messages
        if got >= n:
            stop.set()

    w = IngestWorker(mqtt_url=url, pipeline=_NoStore(), client_id=client_id,  # type: ignore[arg-type]
                     batch_max_messages=batch, batch_max_ms=20, on_batch=on_batch, protocol=protocol)
    task = asyncio.create_task(w.run(stop))
    await w.connected.wait()
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.wait_for(stop.wait(), 600)
    s, cpu = time.perf_counter() - t0, time.process_time() - c0
    await task
    return s, cpu


def _register_session(url: str, client_id: str, protocol: int) -> None:
    async def once() -> None:
        stop = asyncio.Event()
        w = IngestWorker(mqtt_url=url, pipeline=_NoStore(), client_id=client_id,  # type: ignore[arg-type]
                         protocol=protocol)
        task = asyncio.create_task(w.run(stop))
        await w.connected.wait()
        await asyncio.sleep(0.3)
        stop.set()
        await task
    asyncio.run(once())


def run(n: int, batch: int = 500, profile: Path | None = None, protocol: int = 5) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-consumer-"))
    broker = MosquittoBroker(tmp / "mq")
    broker.start()
    try:
        cid = "bench-consumer"
        _register_session(broker.url, cid, protocol)
        queue_messages(broker.host, broker.port, n)
        prof = cProfile.Profile() if profile else None
        if prof:
            prof.enable()
        worker_s, worker_cpu = asyncio.run(_drain_worker(broker.url, n, cid, batch, protocol))
        if prof:
            prof.disable()
            prof.dump_stats(str(profile))
        # the C client's ceiling on the same traffic, queued the same way
        sub = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-c", "-i", "bench-sub", "-q", "1",
               "-t", "c/#"]
        subprocess.run([*sub, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        queue_messages(broker.host, broker.port, n, prefix="c/")
        t0 = time.perf_counter()
        subprocess.run([*sub, "-C", str(n), "-W", "300"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        sub_s = time.perf_counter() - t0
        return {"messages": n, "batch_max_messages": batch, "mqtt_protocol": protocol,
                "worker_messages_per_s": round(n / worker_s),
                "worker_cpu_us_per_message": round(worker_cpu / n * 1e6, 1),
                "mosquitto_sub_messages_per_s": round(n / sub_s),
                "worker_vs_mosquitto_sub": round(sub_s / worker_s, 3)}
    finally:
        broker.kill()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--profile", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--protocol", type=int, choices=(4, 5), default=5, help="MQTT 3.1.1 (4) or 5")
    a = p.parse_args(argv)
    result = run(a.messages, a.batch, a.profile, a.protocol)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
