"""``nazorat run`` creates a demo admin and one officer, prints how to sign in and the
passwords once, keeps them in a mode-600 file, and puts half the demo fleet on the
officer's caseload."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from nazorat.services import free_port
from tests.conftest import ROOT


def test_run_creates_demo_accounts(database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "NAZORAT_DATA_DIR": str(tmp_path / "data"), "NAZORAT_DATABASE_URL": database_url,
           "NAZORAT_MQTT_URL": mqtt_url, "NAZORAT_API_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("NAZORAT_API_TOKEN", None)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "nazorat.cli", "run", "--fleet", "4"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while b"Nazorat is running" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        text = log.read_text()
        assert "Demo accounts (shown once)" in text and "/auth/token" in text
        secrets_file = tmp_path / "data" / "demo-accounts"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        passwords = dict(line.split("\t") for line in secrets_file.read_text().splitlines())
        assert set(passwords) == {"demo-admin", "demo-officer"}
        assert re.search(rf"demo-officer / {re.escape(passwords['demo-officer'])}", text)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            r = c.post("/auth/token", data={"grant_type": "password", "username": "demo-officer",
                                            "password": passwords["demo-officer"]})
            assert r.status_code == 200, r.text
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            while len(c.get("/subjects", headers=h).json()) < 2:  # the fleet registers after start-up
                assert time.monotonic() < deadline + 60, "the demo caseload was not assigned"
                time.sleep(0.5)
            assert len(c.get("/subjects", headers=h).json()) == 2  # half of the fleet of 4
    finally:
        proc.terminate()
        proc.wait(30)
