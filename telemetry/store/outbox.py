"""The alert outbox's SQL (sync, for the ingest worker through its pipeline connection):
pending rows oldest first, and marking them published or failed (migration 0014)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]


def pending(conn: psycopg.Connection[Any], limit: int) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT id, alert_id, topic, payload FROM alert_outbox WHERE published_at IS NULL"
                    " ORDER BY id LIMIT %s", (limit,))
        return cur.fetchall()


def mark_published(conn: psycopg.Connection[Any], ids: list[int]) -> None:
    if ids:
        conn.execute("UPDATE alert_outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)", (ids,))


def mark_failed(conn: psycopg.Connection[Any], outbox_id: int, error: str) -> None:
    conn.execute("UPDATE alert_outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                 (error[:500], outbox_id))


__all__ = ["mark_failed", "mark_published", "pending"]
