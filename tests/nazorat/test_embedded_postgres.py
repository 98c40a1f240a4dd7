"""The embedded PostgreSQL is not open to other local users, and the engine and the API
run as a least-privilege role: no superuser, no DDL, an append-only audit log."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from nazorat.services import EmbeddedPostgres, free_port
from nazorat.services.errors import MigrationPrivilegeError
from nazorat.services.postgres import _bin_dir
from nazorat.stack import Infrastructure, migrate, start_infrastructure
from telemetry.store import migrate as db
from telemetry.store.roles import OWNER_ROLE, RUNTIME_ROLE, Database, provision


def _psql(pg: EmbeddedPostgres, *, host: str, as_user: str | None = None, password: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    cmd = [str(_bin_dir() / "psql"), "-w", "-h", host, "-p", str(pg.port), "-U", "postgres", "-d", "postgres",
           "-Atc", "SELECT count(*) FROM pg_roles"]
    if as_user is not None:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env, check=False)


def test_a_local_user_without_the_secret_is_refused(embedded_pg: EmbeddedPostgres | None) -> None:
    """Before: pg_hba.conf said ``trust``, so any local user was the superuser with no password."""
    if embedded_pg is None:
        pytest.skip("NAZORAT_TEST_DATABASE_URL names an outside server; this checks the embedded one")
    pg = embedded_pg
    other = "nobody" if os.geteuid() == 0 else None  # as root: a real other OS user; else ourselves
    refused = _psql(pg, host="127.0.0.1", as_user=other)
    assert refused.returncode != 0, refused.stdout
    assert "password" in refused.stderr, refused.stderr
    wrong = _psql(pg, host="127.0.0.1", as_user=other, password="guess")
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr, wrong.stderr
    # the secret itself is what lets a client in (so the refusals above are about the secret)
    allowed = _psql(pg, host="127.0.0.1", as_user=other, password=pg.passwords()["postgres"])
    assert allowed.returncode == 0, allowed.stderr
    # the secret file is mode 600, and the Unix socket sits in the data folder (mode 700)
    assert stat.S_IMODE(pg.secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(pg.data_dir.stat().st_mode) == 0o700
    if other is not None:
        assert subprocess.run(["runuser", "-u", other, "--", "cat", str(pg.secret_file)],
                              capture_output=True, check=False).returncode != 0
        by_socket = _psql(pg, host=str(pg.data_dir), as_user=other)
        assert by_socket.returncode != 0


def _refused(url: str, statement: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute(statement.encode())
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_runtime_role_appends_to_the_audit_log_but_cannot_rewrite_it_nor_change_the_schema(
        runtime_database: Database) -> None:
    url = runtime_database.runtime_url
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                           " WHERE rolname = current_user").fetchone()
        assert row == (RUNTIME_ROLE, False, False, False)
        conn.execute("INSERT INTO audit_log (actor, action) VALUES ('officer-1', 'read history')")
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s-1', 'A Person')")  # ordinary tables: writable
        conn.execute("DELETE FROM subjects WHERE id = 's-1'")
    assert _refused(url, "UPDATE audit_log SET actor = 'someone else'")
    assert _refused(url, "DELETE FROM audit_log")
    assert _refused(url, "TRUNCATE audit_log")
    assert _refused(url, "CREATE TABLE stolen (x text)")
    assert _refused(url, "ALTER TABLE positions ADD COLUMN x int")
    assert _refused(url, "DROP TABLE audit_log")
    assert _refused(url, "INSERT INTO schema_migrations (version, name) VALUES (9998, 'x')")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (1,)


def test_tables_from_later_migrations_are_granted_and_the_audit_log_stays_append_only(
        pg_admin_url: str, role_passwords: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrations run as the owner role; a later migration's new table is usable at run
    time, and one that recreates ``audit_log`` does not make it writable."""
    import uuid

    name = f"nz_later_{uuid.uuid4().hex[:8]}"
    database = provision(pg_admin_url, name, role_passwords)
    try:
        infra = Infrastructure(database.runtime_url, "mqtt://unused:1883", 5, migration_url=database.owner_url)
        assert infra.migrate()  # the shipped migrations, as the owner
        with psycopg.connect(database.owner_url) as conn:
            assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'positions'").fetchone() == (OWNER_ROLE,)
        later = (9999, "9999_later.sql",
                 "CREATE TABLE later_things (id bigserial PRIMARY KEY, v text);"
                 "DROP TABLE audit_log; CREATE TABLE audit_log (id bigserial PRIMARY KEY, actor text NOT NULL);")
        shipped = db.migrations()
        monkeypatch.setattr(db, "migrations", lambda: [*shipped, later])
        # the run-time role cannot apply it (no DDL) and says so
        with pytest.raises(MigrationPrivilegeError, match=r"9999_later\.sql"):
            migrate(database.runtime_url)
        assert infra.migrate() == ["9999_later.sql"]
        with psycopg.connect(database.runtime_url, autocommit=True) as conn:
            conn.execute("INSERT INTO later_things (v) VALUES ('x')")
            conn.execute("UPDATE later_things SET v = 'y'")
            conn.execute("INSERT INTO audit_log (actor) VALUES ('officer-1')")
        assert _refused(database.runtime_url, "UPDATE audit_log SET actor = 'x'")
        assert _refused(database.runtime_url, "DELETE FROM audit_log")
        assert migrate(database.runtime_url) == []  # nothing pending: the run-time role passes
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def test_nazorat_run_connects_the_engine_as_the_runtime_role(tmp_path: Path) -> None:
    """``start_infrastructure`` (``nazorat run``): the engine's URL is the run-time role,
    migrations go through the owner, and a data folder from before (``trust``) is secured."""
    legacy = tmp_path / "data" / "pg"
    legacy.mkdir(parents=True)
    pg = EmbeddedPostgres(legacy)
    pg._prepare_user()
    done = subprocess.run([str(_bin_dir() / "initdb"), "-D", str(legacy), "--auth=trust", "-U", "postgres",
                           "--no-instructions"], capture_output=True, text=True, check=False, **pg._as_server_user())
    assert done.returncode == 0, done.stderr
    # as an older version left it: database "nazorat" migrated by the superuser, over trust
    port = free_port()
    old_server = subprocess.Popen([str(_bin_dir() / "postgres"), "-D", str(legacy), "-h", "127.0.0.1", "-p", str(port),
                                   "-k", str(legacy)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  **pg._as_server_user())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                    conn.execute("CREATE DATABASE nazorat")
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        db.upgrade(f"postgresql://postgres@127.0.0.1:{port}/nazorat")
    finally:
        old_server.terminate()
        old_server.wait(30)
    infra = start_infrastructure(tmp_path / "data", None, "mqtt://127.0.0.1:1")
    try:
        assert infra.postgres is not None
        assert "trust" not in (legacy / "pg_hba.conf").read_text()
        assert infra.migrate() == []  # the old schema, now the owner's: its upgrade runs as the owner
        assert migrate(infra.database_url) == []
        with psycopg.connect(infra.database_url) as conn:
            assert conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone() == (RUNTIME_ROLE, False)
        assert _refused(infra.database_url, "UPDATE audit_log SET actor = 'x'")
        refused = _psql(infra.postgres, host="127.0.0.1")
        assert refused.returncode != 0 and "password" in refused.stderr
    finally:
        infra.stop()
