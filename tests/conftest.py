"""Session fixtures: a real PostgreSQL and a real MQTT broker, started by the suite.

``NAZORAT_TEST_DATABASE_URL`` / ``NAZORAT_TEST_MQTT_URL`` point the suite at existing
services instead. Every test that needs a database gets a fresh one, cloned from a
migrated template.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from geofence import warm_up
from nazorat.services import CredentialStore, EmbeddedPostgres, MosquittoBroker, free_port, start_broker
from telemetry.store import audit as audit_chain
from telemetry.store import migrate as db
from telemetry.store.roles import OWNER_ROLE, RUNTIME_ROLE, Database, grant_runtime, provision
from tests.server_dirs import server_dir

ROOT = Path(__file__).resolve().parents[1]
# MQTT 5 against Mosquitto or a configured broker; 3.1.1 against the amqtt fallback
_MQTT_PROTOCOL = {"value": int(os.environ.get("NAZORAT_TEST_MQTT_PROTOCOL", "5"))}


@pytest.fixture(scope="session", autouse=True)
def _geofence_kernels() -> None:
    """Compile the evaluator's kernels into numba's cache once, before any test starts an
    engine process: on a fresh checkout that takes 20 s to a minute, which each engine
    would otherwise spend before its first fix."""
    warm_up()


@pytest.fixture(scope="session")
def embedded_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | None]:
    """The suite's own PostgreSQL (SCRAM passwords from its secret file), or None when
    ``NAZORAT_TEST_DATABASE_URL`` names a server."""
    if os.environ.get("NAZORAT_TEST_DATABASE_URL"):
        yield None
        return
    pg = EmbeddedPostgres(server_dir("pg") / "data")
    pg.start()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="session")
def pg_admin_url(embedded_pg: EmbeddedPostgres | None) -> str:
    """A superuser URL (with its password): creates the databases the tests use."""
    return embedded_pg.url() if embedded_pg is not None else os.environ["NAZORAT_TEST_DATABASE_URL"]


@pytest.fixture(scope="session")
def role_passwords(embedded_pg: EmbeddedPostgres | None) -> dict[str, str]:
    """Passwords of the owner and run-time roles (``nazorat.services.postgres``)."""
    if embedded_pg is not None:
        return embedded_pg.passwords()
    return {OWNER_ROLE: uuid.uuid4().hex, RUNTIME_ROLE: uuid.uuid4().hex}


def _admin(admin_url: str, statement: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement.encode())


def _db_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str, role_passwords: dict[str, str]) -> str:
    """Migrated as ``nazorat run`` migrates: by the owner role, then the run-time grants."""
    name = f"nz_template_{uuid.uuid4().hex[:8]}"
    owner_url = provision(pg_admin_url, name, role_passwords).owner_url
    db.upgrade(owner_url)
    grant_runtime(owner_url)
    return name


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    name = f"nz_test_{uuid.uuid4().hex[:10]}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _db_url(pg_admin_url, name)
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def runtime_database(pg_admin_url: str, template_db: str, role_passwords: dict[str, str]) -> Iterator[Database]:
    """A fresh migrated database provisioned as ``nazorat run`` does: ``runtime_url`` is the
    least-privilege role the engine and the API connect as, ``owner_url`` the migrating one."""
    name = f"nz_rt_{uuid.uuid4().hex[:10]}"
    yield provision(pg_admin_url, name, role_passwords, template=template_db)
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("NAZORAT_TEST_MQTT_URL")
    if url:
        yield url
        return
    broker = start_broker(tmp_path_factory.mktemp("mqtt"))
    if not isinstance(broker, MosquittoBroker):
        _MQTT_PROTOCOL["value"] = 4
    try:
        yield broker.url
    finally:
        broker.stop()


@dataclass
class Stack:
    api_url: str
    token: str
    mqtt_url: str
    database_url: str
    process: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)


def start_stack(database_url: str, mqtt_url: str, log_path: Path, *, client_id: str | None = None,
                api: bool = True, extra_env: dict[str, str] | None = None) -> Stack:
    port = free_port()
    token = uuid.uuid4().hex
    env = {**os.environ, "NAZORAT_DATABASE_URL": database_url, "NAZORAT_MQTT_URL": mqtt_url,
           "NAZORAT_API_TOKEN": token, "NAZORAT_API_PORT": str(port), "PYTHONUNBUFFERED": "1",
           **(extra_env or {})}
    protocol = str(_MQTT_PROTOCOL["value"])
    args = [sys.executable, "-m", "nazorat.cli", "serve", "--client-id", client_id or f"nz-test-{uuid.uuid4().hex[:8]}",
            "--mqtt-protocol", protocol]
    if not api:
        args.append("--no-api")
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    stack = Stack(f"http://127.0.0.1:{port}", token, mqtt_url, database_url, proc)
    deadline = time.monotonic() + 60
    while b"Nazorat is running" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"stack did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return stack


def stop_stack(stack: Stack, log_path: Path) -> None:
    """SIGTERM the engine and check how it ended: it must stop within 20 s with exit code
    0, and its log must hold no traceback (an error it logged and went on from is still
    a failure of the test that caused it)."""
    stack.process.terminate()
    try:
        code = stack.process.wait(20)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait(10)
        pytest.fail(f"the engine did not stop within 20 s of SIGTERM:\n{log_path.read_text()[-3000:]}")
    log = log_path.read_text(errors="replace")
    if code != 0:
        pytest.fail(f"the engine exited with code {code}:\n{log[-3000:]}")
    if "Traceback (most recent call last)" in log:
        at = log.index("Traceback (most recent call last)")
        pytest.fail(f"the engine logged a traceback:\n{log[max(0, at - 500):at + 3000]}")


@pytest.fixture
def stack(database_url: str, mqtt_url: str, tmp_path: Path) -> Iterator[Stack]:
    log_path = tmp_path / "stack.log"
    s = start_stack(database_url, mqtt_url, log_path)
    try:
        yield s
    finally:
        stop_stack(s, log_path)
    # whatever the test did through the engine and the API, the audit chain holds
    with psycopg.connect(database_url) as conn:
        report = audit_chain.verify(conn)
    assert report.ok, f"audit chain broken after the test: {report}"


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, CredentialStore]]:
    """Our Mosquitto with per-device passwords and the ACL (as `nazorat run` starts it)."""
    store = CredentialStore(tmp_path / "auth")
    store.write_acl()
    store.engine_password()
    broker = MosquittoBroker(tmp_path / "mq", password_file=store.password_file, acl_file=store.acl_file,
                             pid_file=store.pid_file)
    broker.start()
    try:
        yield broker, store
    finally:
        broker.stop()
