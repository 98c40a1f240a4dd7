"""The benchmarks' database side: a fresh migrated database (``fresh_database``), the
fleet the ingest benchmarks register (``register_devices``),
and what a run stored: wait until the published fixes are in (or 300 s), then count them
and their publish -> stored latency (``seq`` holds the publish time, ms)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from nazorat.services import EmbeddedPostgres
from telemetry.store import migrate as db


@dataclass(frozen=True)
class Stored:
    rows: int
    distinct: int  # distinct (device_id, device_time)
    last_commit: float  # epoch s of the newest received_at
    p50_ms: float
    p99_ms: float
    late: int


def fresh_database(pg: EmbeddedPostgres, name: str) -> str:
    """A new, migrated database ``name`` on the benchmark's embedded PostgreSQL; its URL."""
    admin = pg.url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = admin.rsplit("/", 1)[0] + "/" + name
    db.upgrade(url)
    return url


def register_devices(url: str, prefix: str, n: int) -> None:
    """Subject ``bench`` wearing devices ``{prefix}-0000`` .. ``{prefix}-{n-1:04d}``."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('bench', 'Bench')")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id, subject_id) VALUES (%s, 'bench')",
                            [(f"{prefix}-{d:04d}",) for d in range(n)])


def wait_and_count(url: str, sent: int, timeout_s: float = 300.0) -> Stored:
    deadline = time.time() + timeout_s
    with psycopg.connect(url) as conn:
        while time.time() < deadline:
            stored = conn.execute("SELECT count(*) FROM positions").fetchone()[0]  # type: ignore[index]
            conn.commit()
            if stored >= sent:
                break
            time.sleep(0.25)
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, device_time)), extract(epoch FROM max(received_at)),"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at) * 1000 - seq),"
            " percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM received_at) * 1000 - seq),"
            " count(*) FILTER (WHERE late) FROM positions").fetchone()
    assert row is not None
    return Stored(int(row[0]), int(row[1]), float(row[2]), float(row[3]), float(row[4]), int(row[5]))


__all__ = ["Stored", "fresh_database", "register_devices", "wait_and_count"]
