"""Database connections and versioned schema migrations (``nazorat db upgrade``)."""

from __future__ import annotations

import logging
from importlib import resources

import psycopg

from telemetry.store import evidence, timescale

log = logging.getLogger(__name__)
_LOCK_ID = 0x4E415A4F  # advisory lock: one migrator at a time


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    out = []
    for entry in resources.files("telemetry.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name, entry.read_text()))
    return sorted(out)


def upgrade(url: str, *, retention_days: int = 1095, timezone: str = "Asia/Tashkent") -> list[str]:
    """Apply pending migrations, then set up the server-specific parts (TimescaleDB
    policies for ``retention_days``, daily summaries by local day in ``timezone``); returns
    the names of the migrations applied. Safe to run concurrently and repeatedly."""
    applied: list[str] = []
    # no server-side prepared statements: a migrator gains nothing from them, and they
    # would collide on servers that share one session between clients (the test tier's)
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())  # trusted SQL shipped with the package
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                applied.append(name)
                log.info("applied migration %s", name)
            timescale.setup(conn, retention_days=retention_days, timezone=timezone)
            gaps = evidence.evidence_gaps(conn)
            if gaps:
                log.warning("%d alerts or violations have no stored evidence behind them (lost before migration"
                            " 0005_evidence)", gaps)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied


def pending(url: str) -> tuple[str, list[str]]:
    """(the connecting role, the names of the migrations not applied yet): for a role that
    may not run DDL, to tell an operator what is missing."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_user").fetchone()
        role = str(row[0]) if row is not None else "?"
        try:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        except psycopg.errors.UndefinedTable:
            done = set()
    return role, [name for version, name, _ in migrations() if version not in done]


__all__ = ["migrations", "pending", "upgrade"]
