"""Supervision: a task that raises is logged, counted and restarted (or ends the process),
and ``/readyz`` tells when ingest is down or stuck while ``/healthz`` stays a liveness check.

The engine runs in-process (``nazorat.stack.serve`` in a thread with its own event loop)
against the suite's PostgreSQL and broker, or its own Mosquitto where a test stops the
broker; faults are injected by patching ``Pipeline.process``. The exit-status test runs
``nazorat serve`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from nazorat.services import MosquittoBroker, free_port
from nazorat.stack import serve
from telemetry.model import InboundMessage
from telemetry.pipeline import BatchOutcome, Pipeline
from telemetry.wire import fixes_topic
from tests.conftest import _MQTT_PROTOCOL, ROOT
from tests.ingest.harness import T0, Publisher

TOKEN = "supervision-token"


class InjectedFaultError(RuntimeError):
    """The fault the tests inject; nothing else raises it."""


@dataclass
class Fault:
    """Wraps ``Pipeline.process``: raises ``times`` times (None: until disarmed), or blocks
    while ``hold`` is set; otherwise calls the real method."""

    real: Callable[..., BatchOutcome]
    times: int | None = 1
    raised: int = 0
    armed: bool = True
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def __call__(self, pipeline: Pipeline, messages: Sequence[InboundMessage], live: bool = True) -> BatchOutcome:
        if self.hold.is_set():
            self.release.wait(60)
        if self.armed and (self.times is None or self.raised < self.times):
            self.raised += 1
            raise InjectedFaultError(f"injected fault #{self.raised} in the ingest loop")
        return self.real(pipeline, messages, live=live)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def process(pipeline: Pipeline, messages: Sequence[InboundMessage], *, live: bool = True) -> BatchOutcome:
            return self(pipeline, messages, live)

        monkeypatch.setattr(Pipeline, "process", process)


@dataclass
class Engine:
    api_url: str
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stop: asyncio.Event
    error: list[BaseException]

    def readyz(self) -> httpx.Response:
        return httpx.get(f"{self.api_url}/readyz", timeout=10)

    def wait_readyz(self, status: int, timeout_s: float = 60.0,
                    until: Callable[[dict[str, Any]], bool] = lambda body: True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            r = self.readyz()
            last = (r.status_code, r.text)
            if r.status_code == status and until(r.json()):
                body: dict[str, Any] = r.json()
                return body
            time.sleep(0.1)
        raise AssertionError(f"/readyz never answered {status} as expected; last {last[0]}: {last[1][:2000]}")


@contextmanager
def running(database_url: str, mqtt_url: str, *, protocol: int | None = None, **kw: Any) -> Iterator[Engine]:
    """``serve`` with ingest and the API in a thread; stopped (and its error re-raised) on exit."""
    port = free_port()
    started = threading.Event()
    box: dict[str, Any] = {}
    error: list[BaseException] = []

    async def main() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(serve(
            database_url=database_url, mqtt_url=mqtt_url, mqtt_protocol=protocol or _MQTT_PROTOCOL["value"],
            api_token=TOKEN, host="127.0.0.1", port=port, client_id=f"sup-{uuid.uuid4().hex[:8]}",
            stop=stop, ready=ready, **kw))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        started.set()
        waiter.cancel()
        await task

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            error.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert started.wait(90), "serve did not start"
    assert not error, error
    engine = Engine(f"http://127.0.0.1:{port}", thread, box["loop"], box["stop"], error)
    try:
        yield engine
    finally:
        engine.loop.call_soon_threadsafe(engine.stop.set)
        thread.join(60)
        assert not thread.is_alive(), "serve did not stop"
    assert not error, error


def register(database_url: str, n: int) -> list[str]:
    suffix = uuid.uuid4().hex[:6]
    devices = [f"sv-{suffix}-{i}" for i in range(n)]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES (%s, 'Supervision Subject')", (f"sv-{suffix}",))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id, subject_id) VALUES (%s, %s)",
                            [(d, f"sv-{suffix}") for d in devices])
    return devices


def numbered_fixes(devices: list[str], start: int, stop: int) -> list[tuple[str, bytes]]:
    """Fix k (start <= k < stop) of every device at T0 + k seconds, one fix per message."""
    return [(fixes_topic(d), json.dumps({"t": T0 + k * 1000, "lat": 41.30 + i * 0.001, "lon": 69.24 + k * 1e-6,
                                         "acc": 5.0, "seq": k}).encode())
            for k in range(start, stop) for i, d in enumerate(devices)]


def stored(database_url: str) -> int:
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    assert row is not None
    return int(row[0])


def wait_stored(database_url: str, want: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    got = stored(database_url)
    while got < want and time.monotonic() < deadline:
        time.sleep(0.2)
        got = stored(database_url)
    return got


def sample(name: str, task: str) -> float:
    return REGISTRY.get_sample_value(name, {"task": task}) or 0.0


def publisher(mqtt_url: str) -> Publisher:
    u = urlparse(mqtt_url)
    assert u.hostname is not None and u.port is not None
    return Publisher(u.hostname, u.port)


def test_an_exception_inside_the_ingest_loop_restarts_it_logged_counted_and_no_fix_lost(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # the bug this guards: a non-MQTT exception out of the pipeline killed the ingest task
    # silently while /healthz still said ok; every fix after it was never stored
    devices = register(database_url, 4)
    failures, restarts = sample("nazorat_task_failures_total", "ingest"), sample("nazorat_task_restarts_total", "ingest")
    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url) as engine:
            pub.publish_all(numbered_fixes(devices, 0, 25))
            assert wait_stored(database_url, 100) == 100
            fault = Fault(Pipeline.process, times=1)
            fault.install(monkeypatch)
            pub.publish_all(numbered_fixes(devices, 25, 75))  # the first batch of these raises
            assert wait_stored(database_url, 300) == 300, "ingest did not come back: fixes after the fault are lost"
            assert fault.raised == 1
            time.sleep(0.5)
            assert stored(database_url) == 300
            assert sample("nazorat_task_failures_total", "ingest") == failures + 1
            assert sample("nazorat_task_restarts_total", "ingest") == restarts + 1
            logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], InjectedFaultError)]
            assert logged and logged[0].levelno == logging.ERROR and "restarting" in logged[0].getMessage()
            assert "InjectedFaultError" in caplog.text and "Traceback" in caplog.text  # the traceback is in the log
            assert httpx.get(f"{engine.api_url}/healthz", timeout=10).json() == {"status": "ok"}
            body = engine.wait_readyz(200)
            assert body["parts"]["task.ingest"]["restarts"] == 1
    finally:
        pub.close()


def test_a_process_without_the_api_answers_readyz_on_its_probe_port(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = register(database_url, 1)
    probe_port = free_port()
    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url, api=False, health_port=probe_port) as engine:
            engine.api_url = f"http://127.0.0.1:{probe_port}"
            body = engine.wait_readyz(200)
            assert {"broker", "ingest", "task.ingest", "task.probes"} <= set(body["parts"])
            assert httpx.get(f"{engine.api_url}/healthz", timeout=10).json() == {"status": "ok"}
            assert httpx.get(f"{engine.api_url}/metrics", timeout=10).status_code == 404
            Fault(Pipeline.process, times=None).install(monkeypatch)
            pub.publish_all(numbered_fixes(devices, 0, 2))
            engine.wait_readyz(503, until=lambda b: "task.ingest" in b["failing"])
    finally:
        pub.close()


def test_a_batch_that_raised_half_way_is_rolled_back_and_redelivered_not_committed_later(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a step that raises after writing (not a database error) left its transaction open on
    # the pipeline's connection; the next batch on that connection committed it
    devices = register(database_url, 2)
    real = Pipeline.process
    raised: list[int] = []

    def half_written(pipeline: Pipeline, messages: Sequence[InboundMessage], *, live: bool = True) -> BatchOutcome:
        if not raised:
            raised.append(1)
            conn = pipeline._connection()  # the batch's own connection and transaction
            conn.execute("INSERT INTO dead_letters (topic, reason, payload, payload_size)"
                         " VALUES ('half/written', 'written by a batch that then raised', '', 0)")
            raise InjectedFaultError("a step raised after writing")
        return real(pipeline, messages, live=live)

    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url):
            monkeypatch.setattr(Pipeline, "process", half_written)
            pub.publish_all(numbered_fixes(devices, 0, 10))
            assert wait_stored(database_url, 20) == 20  # redelivered and stored by the restarted worker
            assert raised == [1]
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT count(*) FROM dead_letters WHERE topic = 'half/written'").fetchone()
            assert row == (0,), "the failed batch's writes were committed"
    finally:
        pub.close()


def test_a_failing_periodic_job_is_logged_and_counted_and_ingest_goes_on(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # a non-storage error out of the silence check used to end the ingest task silently
    devices = register(database_url, 2)
    failures = sample("nazorat_task_failures_total", "silence_check")

    def broken(pipeline: Pipeline) -> list[int]:
        raise InjectedFaultError("silence check broke")

    monkeypatch.setattr(Pipeline, "check_silence", broken)
    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url, silence_check_s=0.2) as engine:
            deadline = time.monotonic() + 30
            while sample("nazorat_task_failures_total", "silence_check") < failures + 2:
                assert time.monotonic() < deadline, "the silence check's failures are not counted"
                time.sleep(0.1)
            pub.publish_all(numbered_fixes(devices, 0, 5))
            assert wait_stored(database_url, 10) == 10, "ingest stopped with the failing job"
            body = engine.wait_readyz(200)  # not critical: shown, does not gate readiness
            assert body["parts"]["job.silence_check"]["ok"] is False
            assert any(r.exc_info and isinstance(r.exc_info[1], InjectedFaultError) for r in caplog.records)
    finally:
        pub.close()


def test_readyz_lists_zones_that_do_not_compile_by_id_without_their_geometry(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = register(database_url, 1)
    reasons = {"zone-b": "Self-intersection[69.2451 41.3112]", "zone-a": "unknown time zone 'Mars/Olympus'"}
    monkeypatch.setattr(Pipeline, "compile_errors", property(lambda self: dict(reasons)))
    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url) as engine:
            pub.publish_all(numbered_fixes(devices, 0, 2))
            assert wait_stored(database_url, 2) == 2
            body = engine.wait_readyz(200, until=lambda b: b["parts"]["zones"]["ok"] is False)
            assert body["parts"]["zones"]["zone_ids"] == ["zone-a", "zone-b"]
            assert "69.2451" not in json.dumps(body) and "Mars" not in json.dumps(body)  # ids, not reasons
    finally:
        pub.close()


def test_ingest_is_stuck_only_when_messages_wait_longer_than_the_threshold() -> None:
    from telemetry.health import ingest_part

    def part(**kw: Any) -> bool:
        args: dict[str, Any] = {"backlog": 0, "batch_age_s": None, "backlog_age_s": None, "loop_age_s": 0.0,
                                "loop_interval_s": 30.0, "stall_after_s": 10.0, **kw}
        return ingest_part(**args).ok

    assert part()  # idle, never a batch
    assert part(backlog=5, batch_age_s=3600.0, backlog_age_s=1.0)  # quiet for an hour, then a message: not stuck
    assert not part(backlog=5, batch_age_s=3600.0, backlog_age_s=11.0)
    assert not part(backlog=5, batch_age_s=None, backlog_age_s=11.0)  # never a batch since start
    assert part(backlog=500, batch_age_s=0.01, backlog_age_s=600.0)  # a steady stream: batches keep coming
    assert part(backlog=0, batch_age_s=3600.0)
    assert not part(loop_age_s=41.0)  # the loop itself has not turned


def test_readyz_is_503_while_the_ingest_task_keeps_crashing_and_200_once_it_is_back(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = register(database_url, 2)
    pub = publisher(mqtt_url)
    try:
        with running(database_url, mqtt_url) as engine:
            body = engine.wait_readyz(200)
            assert {"database", "broker", "ingest", "zones", "task.ingest", "task.api"} <= set(body["parts"])
            fault = Fault(Pipeline.process, times=None)
            fault.install(monkeypatch)
            pub.publish_all(numbered_fixes(devices, 0, 5))
            body = engine.wait_readyz(503, until=lambda b: "task.ingest" in b["failing"])
            assert body["status"] == "not_ready"
            assert body["parts"]["task.ingest"]["detail"].startswith("restarting")
            # liveness is not readiness: the process is alive, it does not ingest
            assert httpx.get(f"{engine.api_url}/healthz", timeout=10).status_code == 200
            fault.armed = False
            engine.wait_readyz(200)
            assert wait_stored(database_url, 10) == 10
            assert fault.raised >= 1
    finally:
        pub.close()


def test_readyz_is_503_while_a_batch_is_stuck_longer_than_the_threshold(
        database_url: str, mqtt_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    devices = register(database_url, 2)
    pub = publisher(mqtt_url)
    fault = Fault(Pipeline.process, times=0)
    try:
        with running(database_url, mqtt_url, ingest_stall_s=1.0) as engine:
            engine.wait_readyz(200)
            fault.install(monkeypatch)
            fault.hold.set()  # the next batch hangs inside the pipeline (a stuck database call)
            pub.publish_all(numbered_fixes(devices, 0, 5))
            body = engine.wait_readyz(503, until=lambda b: "ingest" in b["failing"])
            ingest = body["parts"]["ingest"]
            assert ingest["detail"].startswith("stuck") and ingest["backlog"] >= 1
            assert body["parts"]["broker"]["ok"]  # connected, and still stuck
            fault.release.set()
            engine.wait_readyz(200)
            assert wait_stored(database_url, 10) == 10
    finally:
        fault.release.set()
        pub.close()


@pytest.mark.skipif(not MosquittoBroker.available(), reason="needs mosquitto (the test stops its own broker)")
def test_readyz_is_503_while_the_broker_is_down_and_200_once_it_is_back(database_url: str, tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "mq")  # our own: the suite's broker is never stopped
    broker.start()
    devices = register(database_url, 2)
    try:
        with running(database_url, broker.url, protocol=5) as engine:
            engine.wait_readyz(200)
            broker.stop()
            body = engine.wait_readyz(503, until=lambda b: "broker" in b["failing"])
            assert body["parts"]["broker"]["ok"] is False
            assert httpx.get(f"{engine.api_url}/healthz", timeout=10).status_code == 200
            broker.start()
            engine.wait_readyz(200)
            pub = publisher(broker.url)
            try:
                pub.publish_all(numbered_fixes(devices, 0, 3))
            finally:
                pub.close()
            assert wait_stored(database_url, 6) == 6
    finally:
        broker.stop()


_WRAPPER = """
import sys
import uvicorn
from nazorat import cli

if sys.argv[1] == "--api-fault":
    async def main_loop(self):
        raise RuntimeError("injected: the API server stopped serving")
    uvicorn.Server.main_loop = main_loop
if sys.argv[1] == "--hang-on-stop":  # a stop that never finishes: a thread that never returns
    import time
    from telemetry.pipeline import Pipeline
    Pipeline.close = lambda self: time.sleep(3600)
sys.exit(cli.main(sys.argv[2:]))
"""


def _serve_process(database_url: str, mqtt_url: str, port: int, log_path: Path, fault: str,
                   **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NAZORAT_DATABASE_URL": database_url, "NAZORAT_MQTT_URL": mqtt_url,
           "NAZORAT_API_TOKEN": TOKEN, "NAZORAT_API_PORT": str(port), "PYTHONUNBUFFERED": "1", **extra_env}
    with open(log_path, "wb") as out:
        return subprocess.Popen([sys.executable, "-c", _WRAPPER, fault, "serve", "--no-ingest"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 60.0) -> int:
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"nazorat serve kept running:\n{log_path.read_text()[-3000:]}") from None


def test_nazorat_serve_exits_0_on_sigterm_and_non_zero_when_a_fatal_task_fails(
        database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, fault: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp_path / f"{name}.log"
        procs.append(_serve_process(database_url, mqtt_url, port or free_port(), log_path, fault))
        return procs[-1], log_path

    try:
        # a clean stop: 0
        proc, log_path = start("clean", "--none")
        deadline = time.monotonic() + 60
        while b"Nazorat is running" not in log_path.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        out = log_path.read_text()
        assert out.count(TOKEN) == 1 and "#token=" not in out  # the token once, never in a URL
        proc.send_signal(signal.SIGTERM)
        assert _wait(proc, log_path) == 0
        # the API server stops serving after it started (the old stack kept running without it)
        proc, log_path = start("api-fault", "--api-fault")
        assert _wait(proc, log_path) == 1
        out = log_path.read_text()
        assert "task api failed" in out and "injected: the API server stopped serving" in out and "Traceback" in out
        # the API server cannot start (its port is taken): non-zero as well
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            proc, log_path = start("port-taken", "--none", taken.getsockname()[1])
            assert _wait(proc, log_path) == 1
        assert "task api failed (SystemExit)" in log_path.read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


def test_a_stop_that_hangs_ends_the_process_with_status_1_and_its_stacks(
        database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "hang.log"
    proc = _serve_process(database_url, mqtt_url, free_port(), log_path, "--hang-on-stop",
                          NAZORAT_EXIT_DEADLINE_S="3")
    try:
        deadline = time.monotonic() + 60
        while b"Nazorat is running" not in log_path.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert _wait(proc, log_path) == 1
        out = log_path.read_text()
        assert "did not finish stopping within 3 s" in out
        # where it hung: the task waiting on the thread, and the thread
        assert "asyncio task(s) pending" in out and "await asyncio.to_thread(pipeline.close)" in out
        assert 'File "<string>", line 13 in <lambda>' in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
