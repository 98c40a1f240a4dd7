"""End-to-end benchmark: the simulator's fleet through the real stack, with its ceilings.

    python -m benchmarks.e2e --quick --json PATH   # 400 devices, 60 s of traffic (about two minutes)
    python -m benchmarks.e2e --json PATH           # 10,000 devices, 300 s of traffic
    python -m benchmarks.e2e --devices 100000 --rate 10000 --ramp 20 --json PATH   # the target load
    python -m benchmarks.e2e ... --fixes-per-message 10   # compliant devices upload 10-fix batches
    python -m benchmarks.plot PATH.json PATH.png          # offered vs stored, backlog, latency

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
``broker_drain_messages_per_s``: the same payloads (at most the first 900,000 messages:
the broker queues 1,000,000 for an offline session) queued in Mosquitto for a
persistent ``mosquitto_sub`` session while it is offline, then drained by it (QoS 1,
a C client; ``mosquitto_pub -l`` was tried for the queueing and was disconnected by
the broker "due to out of memory" on this traffic);
``copy_rows_per_s``: a bare binary COPY of the same rows into a copy of the
``positions`` table (same keys and indexes), in one transaction.

``--rate`` sets the traffic time so that the planned messages come at about that many a
second (the plan's size is estimated from the fleet: the JSON has the offered rate that
came out); ``--ramp`` raises the rate linearly to full over that many seconds first.
``timeseries``: per wall second from the first publish, messages (resends included) and
distinct fixes offered,
fixes stored (by insert time), the backlog (offered - stored, fixes) and publish ->
stored p50/p99 of the scenario devices' fixes stored in that second (the tracked sample).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from benchmarks import ceilings
from nazorat.cli import apply_sim_profiles
from nazorat.services import EmbeddedPostgres, MosquittoBroker, free_port
from simulator.publisher import publish
from simulator.run import simulate
from simulator.scenarios import Message, Plan, SimConfig
from telemetry.store import migrate as db

_TICK = os.sysconf("SC_CLK_TCK")
_log = logging.getLogger("benchmarks.e2e")


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


# the project's Mosquitto queues at most 1,000,000 messages for an offline session
# (deploy/mosquitto/mosquitto.conf.template: max_queued_messages), so a larger run's ceiling is measured on
# its first messages up to this many
CEILING_MAX_MESSAGES = 900_000


def _broker_ceiling(plan: Plan, broker: MosquittoBroker, processes: int) -> dict[str, Any]:
    """The run's messages (the same payloads, on another topic tree; at most
    ``CEILING_MAX_MESSAGES`` publishes, from the start of the run) queued through the
    simulator's publisher, unpaced, then drained by ``mosquitto_sub``."""
    sample: list[Message] = []
    n = 0
    for m in plan.messages:
        if n + m.repeat > CEILING_MAX_MESSAGES:
            break
        sample.append(m)
        n += m.repeat

    def queue(prefix: str) -> int:
        msgs = [Message(0.0, m.device_id, prefix + m.device_id, m.payload, m.status, m.skew_ms, m.repeat)
                for m in sample]
        return publish(msgs, broker.url, compression=1e12, processes=processes, connections=2 * processes,
                       start_delay_s=0.0).acked

    out = ceilings.drain(broker, queue, "e2e-ceiling")
    out["broker_ceiling_messages"] = n
    out["broker_ceiling_complete"] &= out["broker_ceiling_acked"] == out["broker_ceiling_messages"]
    return out


def _copy_ceiling(url: str, plan: Plan) -> dict[str, Any]:
    """A bare binary COPY of the run's fix rows into a table like ``positions``."""
    subject = {d["id"]: d.get("subject_id") for d in plan.devices}

    def rows() -> Iterator[tuple[Any, ...]]:
        for m in plan.messages:
            if m.payload is None:
                continue
            doc = json.loads(m.payload)
            for f in doc if isinstance(doc, list) else [doc]:
                yield (m.device_id, datetime.fromtimestamp(f["t"] / 1000, UTC), subject[m.device_id], f["lat"],
                       f["lon"], f["acc"], f.get("spd"), f.get("hdg"), f.get("src", "gps"), f.get("seq"), False, [])

    return ceilings.copy(url, rows())


def _timeseries(url: str, pub: Any) -> list[dict[str, Any]]:
    """Offered vs stored per wall second, the backlog, and publish -> stored latency."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id, (extract(epoch FROM device_time) * 1000)::int8,"
            " (extract(epoch FROM received_at) * 1000)::int8 FROM positions WHERE device_id LIKE 'e2e-%'").fetchall()
    t0 = pub.started_ms // 1000
    stored: dict[int, int] = {}
    lat: dict[int, list[int]] = {}
    for dev, t_ms, rec_ms in rows:
        sec = int(rec_ms) // 1000
        stored[sec] = stored.get(sec, 0) + 1
        sent = pub.published.get((dev, int(t_ms)))
        if sent is not None:
            lat.setdefault(sec, []).append(int(rec_ms) - sent)
    last = max([*stored, *pub.per_second, t0])
    out, offered_total, stored_total = [], 0, 0
    for sec in range(t0, last + 1):
        n, f = pub.per_second.get(sec, (0, 0))
        offered_total += f
        stored_total += stored.get(sec, 0)
        ls = sorted(lat.get(sec, []))
        out.append({"t_s": sec - t0, "offered_messages": n, "offered_fixes": f, "stored_fixes": stored.get(sec, 0),
                    "backlog_fixes": max(0, offered_total - stored_total),
                    "p50_ms": ls[len(ls) // 2] if ls else None,
                    "p99_ms": ls[min(len(ls) - 1, int(len(ls) * 0.99))] if ls else None})
    return out


def run(devices: int, seconds: float, *, seed: int = 11, processes: int | None = None, ramp_s: float = 0.0,
        fixes_per_message: int = 1) -> dict[str, Any]:
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
                           prefix="e2e", fixes_per_message=fixes_per_message)
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
                          connections=2 * n_proc, verify=True, verify_timeout_s=120.0, ramp_s=ramp_s)
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
            "mode": "quick" if seconds <= 60 and devices <= 1000 else "full",
            "devices": devices,
            "fixes_per_message_compliant": fixes_per_message,
            "traffic_seconds": seconds,
            "ramp_s": ramp_s,
            "simulated_seconds": span,
            "compression": round(span / seconds, 2),
            "publisher_processes": n_proc,
            "registration_s": round(registered_s, 1),
            "phases_s": result.phases_s,
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
            # what the false alerts were, and which simulated behaviour sent them
            "false_by_kind_and_behaviour": dict(Counter(
                f"{a['kind']} from {plan.behaviour.get(a['device_id'], 'unknown')}" for a in report.false).most_common()),
            "false_sample": [{k: a.get(k) for k in ("kind", "device_id", "zone_id", "fix_time", "status_time",
                                                     "created_at", "details")} for a in report.false[:20]],
        }
        t_ceil = time.monotonic()
        _log.info("measuring the broker's drain ceiling on the same traffic (at most %d messages)",
                  CEILING_MAX_MESSAGES)
        out.update(_broker_ceiling(plan, broker, max(2, n_proc)))
        out["phases_s"]["broker_ceiling"] = round(time.monotonic() - t_ceil, 2)
        t_ceil = time.monotonic()
        out.update(_copy_ceiling(url, plan))
        out["phases_s"]["copy_ceiling"] = round(time.monotonic() - t_ceil, 2)
        _log.info("ceilings measured")
        out["messages_per_s_vs_broker_drain"] = round(out["messages_per_s"] / out["broker_drain_messages_per_s"], 4)
        out["fixes_per_s_vs_copy"] = round(out["fixes_per_s"] / out["copy_rows_per_s"], 4)
        out["timeseries"] = _timeseries(url, pub)
        # what the engine logged at ERROR or worse (a reconnect, a failed batch): counted, the first few kept
        bad = [line for line in log_path.read_text(errors="replace").splitlines()
               if " ERROR " in line or " CRITICAL " in line]
        out["engine_log_errors"] = {"count": len(bad), "first": bad[:10]}
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    p.add_argument("--devices", type=int, help="default: 800 quick, 10,000 full")
    p.add_argument("--seconds", type=float, help="traffic time, default: 60 quick, 300 full")
    p.add_argument("--processes", type=int, help="publisher processes (default: 1 per ~12k planned messages/s)")
    p.add_argument("--rate", type=float, help="target messages/s (sets the traffic time; overrides --seconds)")
    p.add_argument("--ramp", type=float, default=0.0, help="seconds to raise the rate linearly to full")
    p.add_argument("--fixes-per-message", type=int, default=1,
                   help="compliant devices' fixes per upload (10: store and forward); scenario devices send 1")
    p.add_argument("--plot", type=Path, help="also write the time-series plot here (PNG; needs the bench extra)")
    a = p.parse_args(argv)
    devices = a.devices or (400 if a.quick else 10_000)
    msgs_per_device_s = 0.0375 / a.fixes_per_message  # planned messages per device per simulated s (mean ~27 s)
    seconds = a.seconds or (60.0 if a.quick else 300.0)
    if a.rate:
        seconds = devices * msgs_per_device_s * 7200.0 / a.rate
    per_s = devices * msgs_per_device_s * 7200.0 / seconds
    result = run(devices, seconds, processes=a.processes or max(1, math.ceil(per_s / 12_000)), ramp_s=a.ramp,
                 fixes_per_message=a.fixes_per_message)
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    if a.plot:
        from benchmarks.plot import plot

        plot(result, a.plot)
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["recall"] == 1.0 and result["false_alerts"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
