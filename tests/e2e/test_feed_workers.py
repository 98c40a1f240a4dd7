"""Two API worker processes: an alert raised by an MQTT fix through one engine reaches a
live-feed client connected to the other API process (LISTEN/NOTIFY through the
database, no shared memory)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from nazorat.services import free_port
from tests.api.officers import EventStream
from tests.conftest import ROOT, start_stack
from tests.e2e.test_fix_to_alert import VICTIM, fix, publish, register

SECRET = "e2e-shared-signing-key-" + "k" * 32


def _api_worker(database_url: str, token: str, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The documented multi-worker command, one worker on its own port."""
    port = free_port()
    env = {**os.environ, "NAZORAT_DATABASE_URL": database_url, "NAZORAT_API_TOKEN": token,
           "NAZORAT_JWT_SECRET": SECRET}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_from_environment",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"API worker did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def test_an_alert_reaches_a_client_of_the_other_worker(database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    stack = start_stack(database_url, mqtt_url, tmp_path / "stack.log", extra_env={"NAZORAT_JWT_SECRET": SECRET})
    worker, worker_url = _api_worker(database_url, stack.token, tmp_path / "worker.log")
    try:
        subject, device = f"s-{uuid.uuid4().hex[:6]}", f"d-{uuid.uuid4().hex[:6]}"
        with stack.client() as c:  # worker 1 (the engine's own API)
            register(c, subject, device)
            r = c.post("/accounts", json={"username": "olga", "role": "officer", "password": "p" * 12})
            assert r.status_code == 201
            assert c.put(f"/subjects/{subject}/assignment", json={"officer_id": r.json()["id"]}).status_code == 200
            r = c.post("/auth/token", data={"grant_type": "password", "username": "olga", "password": "p" * 12})
            access = r.json()["access_token"]  # signed by worker 1 ...
        with httpx.Client(base_url=worker_url, timeout=20) as w2:  # ... read by worker 2
            stream = EventStream(w2, {"Authorization": f"Bearer {access}"})
            assert stream.response.status_code == 200
            publish(stack, device, fix(int(time.time() * 1000) - 5_000, *VICTIM))
            seen = set()
            while not {"exclusion_zone_entered"} <= seen:
                ev = stream.next()
                assert ev["data"]["alert"]["subject_id"] == subject and ev["data"]["action"] == "raised"
                seen.add(ev["data"]["alert"]["kind"])
            stream.close()
    finally:
        for proc in (worker, stack.process):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
