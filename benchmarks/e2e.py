"""End-to-end benchmark: the simulator's fleet through the real stack, with its ceilings.

    python -m benchmarks.e2e --quick --json PATH   # 400 devices, 60 s of traffic (about two minutes)
    python -m benchmarks.e2e --json PATH           # 10,000 devices, 300 s of traffic

It starts its own embedded PostgreSQL and Mosquitto (the project's config, anonymous),
runs ``nazorat serve`` (ingest + API) as a separate process, registers a seeded fleet
through the API (``simulator``), writes the device profiles a compressed replay needs,
replays two simulated hours (a curfew, then a day: every scenario, victim phones,
boundary walkers) compressed into the traffic time, with an ``AlertWatcher`` polling
``GET /alerts`` every 100 ms, then verifies the alerts against the ground truth.

Figures: ``fixes_per_s`` / ``messages_per_s``: stored fixes and published messages over
(last insert - first publish); the offered load is paced, so these equal the offered
load while the engine keeps up (``drain_s`` and ``max_publish_lag_s`` say when it did
not); ``lost``: planned distinct fixes missing from ``positions``; ``duplicated``: rows
stored twice (resends must be no-ops); ``recall``, ``false_alerts``, ``alerts_expected``,
``alerts_raised`` (fleet alerts); ``p50_ms`` / ``p99_ms``: publish of the evidence ->
alert first visible through the API; ``event_to_stored_*``: evidence due in the replay
-> alert row written (includes the wait of store-and-forward uploads);
``cpu_s_per_1k_fixes``: CPU of the engine process (and of all PostgreSQL processes)
per 1,000 stored fixes; ``rss_mb``: peak resident memory per process.

Ceilings, measured in the same run on the same traffic (this machine's speed drifts up
to 2x within an hour, so the ratios are what compares across runs; the traffic is
paced, so below saturation a ratio is the share of the ceiling the offered load used,
and only a run that saturates the engine, ``drain_s`` > 0, measures its limit):
``broker_drain_messages_per_s``: the same payloads queued in Mosquitto for a
persistent ``mosquitto_sub`` session while it is offline, then drained by it (QoS 1,
a C client; ``mosquitto_pub -l`` was tried for the queueing and was disconnected by
the broker "due to out of memory" on this traffic);
``copy_rows_per_s``: a bare binary COPY of the same rows into a copy of the
``positions`` table (same keys and indexes), in one transaction.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from nazorat.cli import apply_sim_profiles
from nazorat.services import EmbeddedPostgres, MosquittoBroker, free_port
from simulator.publisher import publish
from simulator.run import simulate
from simulator.scenarios import Message, Plan, SimConfig
from telemetry.store import migrate as db

_TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU of ``pids`` (their reaped children included)."""
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15])
    return total / _TICK


def _rss_mb(pids: list[int]) -> float:
    """Peak resident memory (VmHWM) of ``pids``, summed, MiB."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def _broker_ceiling(plan: Plan, broker: MosquittoBroker, processes: int) -> dict[str, Any]:
    """Queue the run's messages (the same payloads, on another topic tree) for a
    persistent ``mosquitto_sub`` session while it is offline, then time how fast that
    session drains them (QoS 1, a C client). Queueing goes through the simulator's
    publisher, unpaced; its own rate is reported beside (``unpaced_publish_*``)."""
    host, port = broker.host, str(broker.port)
    sub = ["mosquitto_sub", "-h", host, "-p", port, "-c", "-i", "e2e-ceiling", "-q", "1", "-t", "e2eceil/#"]
    subprocess.run([*sub, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    msgs = [Message(0.0, m.device_id, "e2eceil/" + m.device_id, m.payload, m.status, m.skew_ms, m.repeat)
            for m in plan.messages]
    n = sum(m.repeat for m in msgs)
    t0 = time.time()
    pub = publish(msgs, broker.url, compression=1e12, processes=processes, connections=2 * processes,
                  start_delay_s=0.0)
    publish_s = time.time() - t0
    t0 = time.time()
    done = subprocess.run([*sub, "-C", str(pub.acked), "-W", "300"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    drain_s = time.time() - t0
    return {"broker_ceiling_messages": n, "broker_ceiling_acked": pub.acked,
            "broker_ceiling_complete": done.returncode == 0 and pub.acked == n,
            "broker_drain_messages_per_s": round(pub.acked / drain_s),
            "unpaced_publish_messages_per_s": round(n / publish_s)}


def _copy_ceiling(url: str, plan: Plan) -> dict[str, Any]:
    """A bare binary COPY of the run's fix rows into a table like ``positions``."""
    subject = {d["id"]: d.get("subject_id") for d in plan.devices}
    rows: list[tuple[Any, ...]] = []
    for m in plan.messages:
        if m.payload is None:
            continue
        doc = json.loads(m.payload)
        for f in doc if isinstance(doc, list) else [doc]:
            rows.append((m.device_id, datetime.fromtimestamp(f["t"] / 1000, UTC), subject[m.device_id], f["lat"],
                         f["lon"], f["acc"], f.get("spd"), f.get("hdg"), f.get("src", "gps"), f.get("seq"), False, []))
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS ceiling_positions")
        conn.execute("CREATE TABLE ceiling_positions (LIKE positions INCLUDING DEFAULTS INCLUDING INDEXES)")
        conn.commit()
        cols = "device_id, device_time, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq, late, flags"
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY ceiling_positions ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "timestamptz", "text", "float8", "float8", "float8", "float8", "float8", "text",
                            "int8", "bool", "text[]"])
            for r in rows:
                copy.write_row(r)
        conn.commit()
        s = time.perf_counter() - t0
        conn.execute("DROP TABLE ceiling_positions")
    return {"copy_rows": len(rows), "copy_rows_per_s": round(len(rows) / s)}


def run(devices: int, seconds: float, *, seed: int = 11, processes: int | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-e2e-"))
    pg = EmbeddedPostgres(tmp / "pg")
    pg.start()
    broker = MosquittoBroker(tmp / "mq")
    broker.start()
    url = pg.url()
    server = None
    ok = False
    try:
        db.upgrade(url)
        token, port = "e2e-" + os.urandom(8).hex(), free_port()
        env = {**os.environ, "NAZORAT_DATABASE_URL": url, "NAZORAT_MQTT_URL": broker.url, "NAZORAT_API_TOKEN": token,
               "NAZORAT_API_PORT": str(port), "PYTHONUNBUFFERED": "1"}
        log_path = tmp / "serve.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen([sys.executable, "-m", "nazorat.cli", "serve", "--client-id", "e2e-ingest"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)
        while b"Nazorat is running" not in log_path.read_bytes():
            if server.poll() is not None:
                raise RuntimeError(log_path.read_text()[-3000:])
            time.sleep(0.1)
        span = 7200.0
        config = SimConfig(devices=devices, seed=seed, span_s=span, night_s=2400.0, compression=span / seconds,
                           prefix="e2e")
        base: dict[str, float] = {}

        def before(plan: Plan) -> None:
            apply_sim_profiles(url, plan)
            base["engine"] = _cpu_s([server.pid])
            base["pg"] = _cpu_s(_children(pg._proc.pid))  # type: ignore[union-attr]
            base["broker"] = _cpu_s([broker.pid or 0])

        # the messages/s one publisher process holds here, with headroom
        n_proc = processes or 1
        t_reg = time.time()
        result = simulate(config, api_url=f"http://127.0.0.1:{port}", token=token, mqtt_url=broker.url,
                          truth_path=tmp / "truth.jsonl", before_publish=before, processes=n_proc,
                          connections=2 * n_proc, verify=True, verify_timeout_s=120.0)
        plan, pub, report = result.plan, result.published, result.report
        assert report is not None
        registered_s = (pub.started_ms / 1000) - t_reg
        engine_cpu = _cpu_s([server.pid]) - base["engine"]
        pg_cpu = _cpu_s(_children(pg._proc.pid)) - base["pg"]  # type: ignore[union-attr]
        broker_cpu = _cpu_s([broker.pid or 0]) - base["broker"]
        planned = {(m.device_id, t) for m in plan.messages for t in m.fix_times}
        with psycopg.connect(url) as conn:
            # every event is reported before the backlog need be drained: wait for the rows
            # (all of them, or no new one for 15 s)
            last, still = -1, time.monotonic()
            while time.monotonic() - still < 15:
                n = int(conn.execute("SELECT count(*) FROM positions WHERE device_id LIKE 'e2e-%'").fetchone()[0])  # type: ignore[index]
                conn.commit()
                if n >= len(planned):
                    break
                if n != last:
                    last, still = n, time.monotonic()
                time.sleep(0.5)
            row = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, device_time)), extract(epoch FROM max(received_at))"
                " FROM positions WHERE device_id LIKE 'e2e-%'").fetchone()
            assert row is not None
            raised = conn.execute("SELECT count(*) FROM alerts WHERE device_id LIKE 'e2e-%'").fetchone()
            assert raised is not None
            size = conn.execute("SELECT pg_total_relation_size('positions'), (SELECT count(*) FROM positions)").fetchone()
            assert size is not None
        count, distinct, last_insert = int(row[0]), int(row[1]), float(row[2])
        elapsed = last_insert - pub.started_ms / 1000
        rss = {"engine": _rss_mb([server.pid]), "postgres": _rss_mb(_children(pg._proc.pid)),  # type: ignore[union-attr]
               "mosquitto": _rss_mb([broker.pid or 0]),
               "publisher": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
        summary = report.summary()
        out: dict[str, Any] = {
            "mode": "quick" if seconds <= 60 else "full",
            "devices": devices,
            "traffic_seconds": seconds,
            "simulated_seconds": span,
            "compression": round(span / seconds, 2),
            "publisher_processes": n_proc,
            "registration_s": round(registered_s, 1),
            "published_messages": pub.messages,
            "published_fixes": pub.fixes,
            "acked": pub.acked,
            "offered_messages_per_s": round(pub.messages / max(1e-3, (pub.ended_ms - pub.started_ms) / 1000)),
            "max_publish_lag_s": round(pub.max_lag_s, 3),
            "fixes_per_s": round(count / elapsed),
            "messages_per_s": round(pub.messages / elapsed),
            "drain_s": round(last_insert - pub.ended_ms / 1000, 2),
            "lost": len(planned) - distinct,
            "duplicated": count - distinct,
            "alerts_expected": report.expected,
            "alerts_raised": int(raised[0]),
            "alerts_matched": report.detected,
            "recall": report.recall,
            "false_alerts": report.false_alerts,
            "false_per_1k_device_days": summary["false_per_1k_device_days"],
            "late_mismatch": report.late_mismatch,
            "p50_ms": summary["publish_to_visible_p50_ms"],
            "p99_ms": summary["publish_to_visible_p99_ms"],
            "event_to_stored_p50_ms": summary["event_to_stored_p50_ms"],
            "event_to_stored_p99_ms": summary["event_to_stored_p99_ms"],
            "cpu_s_per_1k_fixes": round(engine_cpu / max(1, count) * 1000, 4),
            "cpu_s_per_1k_fixes_postgres": round(pg_cpu / max(1, count) * 1000, 4),
            "cpu_s_per_1k_fixes_mosquitto": round(broker_cpu / max(1, count) * 1000, 4),
            "rss_mb": rss,
            "positions_bytes_per_fix": round(int(size[0]) / max(1, int(size[1]))),
            "scenarios": summary["scenarios"],
            "missed": summary["missed"],
        }
        out.update(_broker_ceiling(plan, broker, max(2, n_proc)))
        out.update(_copy_ceiling(url, plan))
        out["messages_per_s_vs_broker_drain"] = round(out["messages_per_s"] / out["broker_drain_messages_per_s"], 4)
        out["fixes_per_s_vs_copy"] = round(out["fixes_per_s"] / out["copy_rows_per_s"], 4)
        out["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        out["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
        ok = True
        return out
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        broker.kill()
        pg.destroy()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"benchmark failed: logs kept in {tmp}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--devices", type=int, help="default: 800 quick, 10,000 full")
    p.add_argument("--seconds", type=float, help="traffic time, default: 60 quick, 300 full")
    p.add_argument("--processes", type=int, help="publisher processes (default: 1 per ~12k planned messages/s)")
    a = p.parse_args(argv)
    devices = a.devices or (400 if a.quick else 10_000)
    seconds = a.seconds or (60.0 if a.quick else 300.0)
    per_s = devices * 0.0375 * 7200.0 / seconds  # planned fixes/s (mean reporting interval ~27 s)
    result = run(devices, seconds, processes=a.processes or max(1, math.ceil(per_s / 12_000)))
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["recall"] == 1.0 and result["false_alerts"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
