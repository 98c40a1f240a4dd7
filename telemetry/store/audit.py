"""The hash-chained, append-only audit log.

Every record carries the SHA-256 of the previous record (``prev_hash``) and its own
``hash`` over the previous hash and its fields. The chaining is done by a BEFORE INSERT
trigger (migration 0011) that locks the chain's head row, so any writer, whatever its
language or connection, is chained and concurrent writers are serialised: ids follow
chain order. UPDATE, DELETE and TRUNCATE raise. :func:`verify` recomputes the chain
and names the first record that does not match.

What is recorded: who (``actor``, ``role``), what (``action``, ``subject_id``,
``target``, ``details``), when (``at``), from where (``remote_addr``) and under which
scope (``scope``: ``all``, ``unit:U``, ``caseload:ID``, ``subject:S``, ``key:ID`` ...).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

Row = dict[str, Any]
_INSERT = ("INSERT INTO audit_log (actor, role, action, subject_id, target, remote_addr, scope, details)"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)")
# each row with the hash recomputed from its stored previous hash
_VERIFY = ("SELECT id, prev_hash, hash, audit_record_hash(prev_hash, id, at, actor, role, action, subject_id, target,"
           " remote_addr, scope, details) AS computed FROM audit_log WHERE id > %s ORDER BY id")
_HEAD = "SELECT last_id, last_hash FROM audit_head"
_COLS = "id, at, actor, role, action, subject_id, target, remote_addr, scope, details, encode(hash, 'hex') AS hash"


# (role, scope) of the caller the current request acts for: set once by the API's
# authentication dependency, so every audit call of the request records them
_caller: ContextVar[tuple[str | None, str | None]] = ContextVar("nazorat_audit_caller", default=(None, None))


def bind_caller(role: str | None, scope: str | None) -> None:
    """Record ``role`` and ``scope`` on this context's audit records unless given."""
    _caller.set((role, scope))


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of a chain check: ``ok``, how many records were checked, and the first
    broken record's id with the reason (``None`` when the chain holds)."""

    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None


class _Checker:
    def __init__(self) -> None:
        self.prev: bytes | None = None
        self.checked = 0
        self.broken: tuple[int, str] | None = None
        self.last_id: int | None = None

    def feed(self, row: tuple[Any, ...]) -> bool:
        """Check one row; False once the first broken record is found."""
        rid, prev_hash, stored, computed = row
        prev_hash = bytes(prev_hash) if prev_hash is not None else None
        stored = bytes(stored) if stored is not None else None
        self.checked += 1
        if prev_hash != self.prev:
            self.broken = (rid, "its previous hash does not match the record before it (a record was removed,"
                                " inserted or rewritten)")
            return False
        if stored != bytes(computed):
            self.broken = (rid, "its contents do not match its hash (the record was altered)")
            return False
        self.prev = stored
        self.last_id = rid
        return True

    def finish(self, head: tuple[Any, ...] | None) -> ChainReport:
        if self.broken is not None:
            return ChainReport(False, self.checked, *self.broken)
        if head is not None:
            last_id, last_hash = head
            last_hash = bytes(last_hash) if last_hash is not None else None
            if last_id != self.last_id or last_hash != self.prev:
                return ChainReport(False, self.checked, self.last_id,
                                   "the chain ends before the recorded head (records after it were removed)")
        return ChainReport(True, self.checked)


def verify(conn: psycopg.Connection[Any]) -> ChainReport:
    """Recompute the whole chain in id order (sync, for the CLI), in one snapshot."""
    checker = _Checker()
    with conn.transaction(), conn.cursor() as cur:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = conn.execute(_HEAD).fetchone()
        cur.execute(_VERIFY, (0,))
        for row in cur:
            if not checker.feed(row):
                break
    return checker.finish(head)


async def verify_async(conn: psycopg.AsyncConnection[Any]) -> ChainReport:
    """The same check for the API (``GET /audit/verify``)."""
    checker = _Checker()
    async with conn.transaction(), conn.cursor() as cur:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = await (await conn.execute(_HEAD)).fetchone()
        await cur.execute(_VERIFY, (0,))
        async for row in cur:
            if not checker.feed(row):
                break
    return checker.finish(head)


async def append(
    conn: psycopg.AsyncConnection[Any], *, actor: str, action: str, role: str | None = None,
    subject_id: str | None = None, target: str | None = None, remote_addr: str | None = None,
    scope: str | None = None, details: Row | None = None,
) -> None:
    """Append one record (in the caller's transaction: it commits with the action)."""
    bound_role, bound_scope = _caller.get()
    role, scope = role or bound_role, scope or bound_scope
    await conn.execute(_INSERT, (actor, role, action, subject_id, target, remote_addr, scope, Jsonb(details or {})))


def append_sync(
    conn: psycopg.Connection[Any], *, actor: str, action: str, role: str | None = None,
    subject_id: str | None = None, target: str | None = None, remote_addr: str | None = None,
    scope: str | None = None, details: Row | None = None,
) -> None:
    conn.execute(_INSERT, (actor, role, action, subject_id, target, remote_addr, scope, Jsonb(details or {})))


async def list_records(
    conn: psycopg.AsyncConnection[Any], *, actor: str | None, action: str | None, subject_id: str | None,
    since: datetime | None, after_id: int | None, limit: int,
) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_COLS} FROM audit_log WHERE (%(actor)s::text IS NULL OR actor = %(actor)s)"
            " AND (%(action)s::text IS NULL OR action = %(action)s)"
            " AND (%(subject)s::text IS NULL OR subject_id = %(subject)s)"
            " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
            " AND (%(after)s::bigint IS NULL OR id > %(after)s) ORDER BY id DESC LIMIT %(limit)s",
            {"actor": actor, "action": action, "subject": subject_id, "since": since, "after": after_id,
             "limit": limit})
        return await cur.fetchall()


__all__ = ["ChainReport", "append", "append_sync", "bind_caller", "list_records", "verify", "verify_async"]
