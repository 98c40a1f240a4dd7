"""The TimescaleDB tier: PostgreSQL 17 + TimescaleDB 2.23 built for WASM (PGlite), served
over TCP by ``server.mjs`` under Node.js, one fresh in-memory server per test.

``make test`` installs the npm packages into ``.pglite/`` (ignored by git). Without
Node.js the tier is skipped; with Node.js but without the packages it fails, saying how to
install them. The server has one backend session, served to one client at a time (a
second connection waits until the first closes), and no COPY: tests hold one connection
at a time, close it before ``upgrade()``, and insert rows with plain INSERTs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nazorat.services import free_port

ROOT = Path(__file__).resolve().parents[3]
MODULES = ROOT / ".pglite" / "node_modules"
LAUNCHER = Path(__file__).with_name("server.mjs")


def connect(url: str) -> psycopg.Connection[Any]:
    """Autocommit, and no server-side prepared statements: their names would collide in
    the session that every client of the server shares."""
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


@pytest.fixture
def pglite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh server with TimescaleDB available but not installed, as a plain database."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the TimescaleDB tier runs TimescaleDB (PGlite, WASM) under Node.js")
    if not (MODULES / "@electric-sql" / "pglite-socket").is_dir():
        pytest.fail(f"the TimescaleDB tier's npm packages are missing from {MODULES.parent}: run `make pglite`"
                    " (make test does)")
    port = free_port()
    log_path = tmp_path / "pglite.log"
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([node, str(LAUNCHER), str(MODULES), str(port)], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"listening" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the PGlite server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def timescale_url(pglite_url: str) -> str:
    """A fresh server with TimescaleDB installed (the operator's step) and nothing else."""
    with connect(pglite_url) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
    return pglite_url
