"""Attachments of appeals (async, for the API): kept in their own table, away from the
hot tables, each with its SHA-256; the size and type rules are
:func:`telemetry.appeals.check_attachment` (the type by magic bytes)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry import appeals as workflow
from telemetry.errors import ConflictError, NotFoundError
from telemetry.store.appeals import Viewer, get

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Any]
_META = "id, appeal_id, filename, media_type, size_bytes, encode(sha256, 'hex') AS sha256, uploaded_at, uploaded_by"


async def add(conn: Conn, appeal_id: int, viewer: Viewer, *, filename: str, content: bytes, by: str,
              now: datetime) -> Row:
    """Store one file of an open appeal and write the step; a file already attached
    (same hash) is a ConflictError."""
    async with conn.transaction():
        appeal = await get(conn, appeal_id, viewer, lock=True)
        cur = await conn.execute("SELECT count(*) FROM appeal_attachments WHERE appeal_id = %s", (appeal_id,))
        count = (await cur.fetchone() or (0,))[0]
        media_type = workflow.check_attachment(appeal_id, appeal["state"], int(count), content)
        digest = hashlib.sha256(content).digest()
        try:
            async with conn.transaction(), conn.cursor(row_factory=dict_row) as c:
                await c.execute(f"INSERT INTO appeal_attachments (appeal_id, filename, media_type, size_bytes, sha256,"
                                f" content, uploaded_at, uploaded_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                                f" RETURNING {_META}",
                                (appeal_id, filename, media_type, len(content), digest, content, now, by))
                row = await c.fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError("attachment", digest.hex(), "this file is already attached") from exc
        assert row is not None
        await conn.execute("INSERT INTO appeal_events (appeal_id, at, actor, action, from_state, to_state, note)"
                           " VALUES (%s, %s, %s, 'attachment', %s, %s, %s)",
                           (appeal_id, now, by, appeal["state"], appeal["state"], f"{filename} sha256:{digest.hex()}"))
    return row


async def list_for(conn: Conn, appeal_id: int) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_META} FROM appeal_attachments WHERE appeal_id = %s ORDER BY id", (appeal_id,))
        return await cur.fetchall()


async def content(conn: Conn, appeal_id: int, attachment_id: int, viewer: Viewer) -> Row:
    await get(conn, appeal_id, viewer)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_META}, content FROM appeal_attachments WHERE appeal_id = %s AND id = %s",
                          (appeal_id, attachment_id))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError("attachment", str(attachment_id))
    return row


__all__ = ["add", "content", "list_for"]
