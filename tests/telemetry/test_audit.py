"""The hash-chained audit log: the chain verifies, an altered, removed or truncated
record is named by ``nazorat audit verify``, concurrent writers keep one chain, and the
run-time role can append but not rewrite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import psycopg
import pytest

from nazorat.services.postgres import Database
from telemetry.store import audit
from tests.conftest import ROOT


def _write(url: str, n: int, actor: str = "officer-1") -> list[int]:
    with psycopg.connect(url) as conn:
        for i in range(n):
            audit.append_sync(conn, actor=actor, action="positions.read", subject_id=f"s{i}", remote_addr="10.0.0.1",
                              role="officer", scope="caseload:1", details={"rows": i, "note": "ünïcode"})
        conn.commit()
        return [r[0] for r in conn.execute("SELECT id FROM audit_log ORDER BY id")]


def _verify_cli(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nazorat.cli", "audit", "verify", "--database-url", url],
                          env={**os.environ}, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def _tamper(url: str, statement: str) -> None:
    """As the superuser with triggers off: what an intruder with full database access does."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement.encode())


def _report(url: str) -> audit.ChainReport:
    with psycopg.connect(url) as conn:
        return audit.verify(conn)


def test_an_altered_record_is_named(database_url: str) -> None:
    ids = _write(database_url, 6)
    r = _verify_cli(database_url)
    assert r.returncode == 0 and "audit chain ok: 6 records" in r.stdout, r.stdout + r.stderr
    _tamper(database_url, f"UPDATE audit_log SET actor = 'someone else' WHERE id = {ids[3]}")
    r = _verify_cli(database_url)
    assert r.returncode == 1
    assert f"broken at record {ids[3]}: its contents do not match its hash" in r.stdout, r.stdout
    # recomputing that record's hash does not help: the next record's link gives it away
    _tamper(database_url, f"UPDATE audit_log SET hash = audit_record_hash(prev_hash, id, at, actor, role, action,"
                          f" subject_id, target, remote_addr, scope, details) WHERE id = {ids[3]}")
    assert _report(database_url) == audit.ChainReport(False, 5, ids[4], _report(database_url).reason)
    assert "previous hash" in (_report(database_url).reason or "")


def test_removed_and_truncated_records_are_detected(database_url: str) -> None:
    ids = _write(database_url, 5)
    _tamper(database_url, f"DELETE FROM audit_log WHERE id = {ids[1]}")
    report = _report(database_url)
    assert not report.ok and report.first_broken_id == ids[2]
    _tamper(database_url, f"DELETE FROM audit_log WHERE id >= {ids[1]}")
    report = _report(database_url)  # only the first record is left: the head says there were more
    assert not report.ok and report.first_broken_id == ids[0] and "head" in (report.reason or "")


def test_updates_and_deletes_are_refused(database_url: str) -> None:
    _write(database_url, 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement.encode())
    assert _report(database_url).ok


def test_concurrent_writers_keep_one_chain(database_url: str) -> None:
    """Eight connections append at once, some transactions rolled back: one unbroken
    chain, ids in chain order."""
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with psycopg.connect(database_url) as conn:
                for i in range(25):
                    audit.append_sync(conn, actor=f"w{k}", action="alert.acknowledge", target=str(i))
                    audit.append_sync(conn, actor=f"w{k}", action="alert.resolve", target=str(i))
                    if i % 5 == 4:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = _report(database_url)
    assert report.ok and report.checked == 8 * 20 * 2


def test_the_runtime_role_appends_but_cannot_rewrite(runtime_database: Database) -> None:
    url = runtime_database.runtime_url
    with psycopg.connect(url) as conn:
        audit.append_sync(conn, actor="officer-1", action="positions.read")
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                          "UPDATE audit_head SET last_hash = NULL"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())
    assert _report(url) == audit.ChainReport(True, 1)
