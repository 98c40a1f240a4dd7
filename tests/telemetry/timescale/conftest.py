"""The TimescaleDB tier: PostgreSQL 17 + TimescaleDB 2.23 built for WASM (PGlite), served
over TCP by ``server.mjs`` under Node.js: one in-memory server with the extension installed,
reset before each test, and a fresh one without it for the conversion of a plain database.

``make test`` installs the npm packages into ``.pglite/`` (ignored by git). Without
Node.js the tier is skipped; with Node.js but without the packages it fails, saying how to
install them. The server has one backend session, served to one client at a time (a
second connection waits until the first closes), and no COPY: tests hold one connection
at a time, close it before ``upgrade()``, and insert rows with plain INSERTs.
"""

from __future__ import annotations

import contextlib
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


# drops what the tests and migrations created in public: not what belongs to an extension
_RESET = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT view_name FROM timescaledb_information.continuous_aggregates LOOP
        EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS public.%I CASCADE', r.view_name);
    END LOOP;
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') LOOP
        EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                       r.relname);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f);
    END LOOP;
END
$$
"""


@contextlib.contextmanager
def _server(log_dir: Path) -> Iterator[str]:
    """A fresh PGlite server (5-12 s to start); yields its URL."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the TimescaleDB tier runs TimescaleDB (PGlite, WASM) under Node.js")
    if not (MODULES / "@electric-sql" / "pglite-socket").is_dir():
        pytest.fail(f"the TimescaleDB tier's npm packages are missing from {MODULES.parent}: run `make pglite`"
                    " (make test does)")
    port = free_port()
    log_path = log_dir / "pglite.log"
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([node, str(LAUNCHER), str(MODULES), str(port)], stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
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
def pglite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh server with TimescaleDB available but not installed: a plain database."""
    with _server(tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def _timescale_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _server(tmp_path_factory.mktemp("pglite")) as url:
        with connect(url) as conn:
            conn.execute("CREATE EXTENSION timescaledb")  # the operator's step
        yield url


@pytest.fixture
def timescale_url(_timescale_server: str) -> str:
    """An empty database with TimescaleDB installed, and nothing else.

    One server serves these tests (the extension cannot be created twice in a session,
    and the session outlives its clients): before each test, whatever transaction a failed
    test left open is rolled back and every object in public is dropped, hypertables,
    continuous aggregates and their policies with them, except the extension's own (it
    lives in public too, and cannot be created twice in a session)."""
    with connect(_timescale_server) as conn:
        conn.execute("ROLLBACK")
        conn.execute(_RESET)
        left = conn.execute(
            "SELECT (SELECT count(*) FROM timescaledb_information.hypertables),"
            " (SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL),"
            " (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind <> 'S'"
            "  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = pg_class.oid AND d.deptype = 'e'))"
        ).fetchone()
    assert left == (0, 0, 0), f"the PGlite database could not be reset: {left} hypertables, policies, relations left"
    return _timescale_server
