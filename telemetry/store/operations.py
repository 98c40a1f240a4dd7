"""Operational records for the API (async): what the engine set aside instead of stopping."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]


async def list_operational_errors(conn: psycopg.AsyncConnection[Any], *, kind: str | None, open_only: bool,
                                  limit: int) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, kind, entity, fix_time, reason, first_seen, last_seen, occurrences, resolved_at"
            " FROM operational_errors WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)"
            " AND (NOT %(open)s OR resolved_at IS NULL) ORDER BY id DESC LIMIT %(limit)s",
            {"kind": kind, "open": open_only, "limit": limit})
        return await cur.fetchall()


__all__ = ["list_operational_errors"]
