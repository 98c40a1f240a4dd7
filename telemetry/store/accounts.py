"""Accounts, units, refresh tokens, API keys, login attempts and caseload assignment
(async, for the API and the ``nazorat users`` command).

Secrets never reach this module in clear: password hashes come from argon2 in
``api.auth``; refresh tokens and API keys are random 256-bit strings of which only a
SHA-256 is stored (a slow hash adds nothing to a secret with that much entropy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.errors import ConflictError, InvalidInputError, NotFoundError

Row = dict[str, Any]
ROLES = ("admin", "supervisor", "officer", "auditor", "appellant")
_ACCOUNT_COLS = "id, username, role, unit_id, subject_id, disabled, locked_until, created_at, password_changed_at"
_KEY_COLS = "id, account_id, name, prefix, scopes, created_by, created_at, revoked_at, last_used_at"

Conn = psycopg.AsyncConnection[Any]


async def _one(conn: Conn, sql: str, params: tuple[Any, ...] | list[Any]) -> Row | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchone()


async def _all(conn: Conn, sql: str, params: tuple[Any, ...] | list[Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql.encode(), params)
        return await cur.fetchall()


# ---- units -------------------------------------------------------------------------

async def create_unit(conn: Conn, unit_id: str, name: str) -> Row:
    try:
        async with conn.transaction():
            row = await _one(conn, "INSERT INTO units (id, name) VALUES (%s, %s) RETURNING id, name, created_at",
                             (unit_id, name))
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError("unit", unit_id, "already exists") from exc
    assert row is not None
    return row


async def list_units(conn: Conn) -> list[Row]:
    return await _all(conn, "SELECT id, name, created_at FROM units ORDER BY id", ())


async def unit_officers(conn: Conn, unit_id: str) -> list[Row] | None:
    """The officers and supervisors of a unit who can sign in (id and username only),
    by username; None when the unit does not exist."""
    if await _one(conn, "SELECT id FROM units WHERE id = %s", (unit_id,)) is None:
        return None
    return await _all(conn, "SELECT id, username, role FROM accounts WHERE unit_id = %s"
                      " AND role IN ('officer', 'supervisor') AND NOT disabled ORDER BY username, id", (unit_id,))


# ---- accounts ----------------------------------------------------------------------

async def create_account(conn: Conn, *, username: str, role: str, unit_id: str = "hq", subject_id: str | None = None,
                         password_hash: str | None) -> Row:
    if role not in ROLES:
        raise InvalidInputError("role", f"must be one of {', '.join(ROLES)}")
    if (role == "appellant") != (subject_id is not None):
        raise InvalidInputError("subject_id", "an appellant is linked to exactly one subject; other roles to none")
    try:
        async with conn.transaction():
            row = await _one(
                conn, "INSERT INTO accounts (username, role, unit_id, subject_id, password_hash, password_changed_at)"
                f" VALUES (%s, %s, %s, %s, %s, now()) RETURNING {_ACCOUNT_COLS}",
                (username, role, unit_id, subject_id, password_hash))
    except psycopg.errors.UniqueViolation as exc:
        raise ConflictError("account", username, "already exists") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFoundError("unit or subject", f"{unit_id}/{subject_id}") from exc
    except psycopg.errors.CheckViolation as exc:
        raise InvalidInputError("username", "1-64 letters, digits or _.@-") from exc
    assert row is not None
    return row


async def get_account(conn: Conn, account_id: int) -> Row:
    row = await _one(conn, f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE id = %s", (account_id,))
    if row is None:
        raise NotFoundError("account", str(account_id))
    return row


async def find_login(conn: Conn, username: str) -> Row | None:
    """The account with its password hash and lockout state (for sign-in only)."""
    return await _one(conn, f"SELECT {_ACCOUNT_COLS}, password_hash, failed_logins, locked_until > now() AS locked"
                      " FROM accounts WHERE username = %s", (username,))


async def list_accounts(conn: Conn, *, unit_id: str | None, limit: int, offset: int) -> list[Row]:
    return await _all(conn, f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE (%s::text IS NULL OR unit_id = %s)"
                      " ORDER BY id LIMIT %s OFFSET %s", (unit_id, unit_id, limit, offset))


async def update_account(conn: Conn, account_id: int, changes: Row) -> Row:
    """Change role, unit or ``disabled``; disabling or a role change revokes refresh tokens."""
    allowed = {k: v for k, v in changes.items() if k in ("role", "unit_id", "disabled", "subject_id")}
    for key in ("role", "unit_id", "disabled"):  # an explicit null (only subject_id may be cleared)
        if key in allowed and allowed[key] is None:
            raise InvalidInputError(key, "may not be null")
    current = await get_account(conn, account_id)
    if not allowed:
        return current
    sets = ", ".join(f"{k} = %s" for k in allowed)
    try:
        async with conn.transaction():
            row = await _one(conn, f"UPDATE accounts SET {sets} WHERE id = %s RETURNING {_ACCOUNT_COLS}",
                             [*allowed.values(), account_id])
            if allowed.get("disabled") or allowed.get("role", current["role"]) != current["role"]:
                await revoke_all_refresh(conn, account_id)
    except psycopg.errors.CheckViolation as exc:
        raise InvalidInputError("role", "an appellant is linked to exactly one subject; other roles to none") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFoundError("unit or subject", str(allowed)) from exc
    assert row is not None
    return row


async def set_password(conn: Conn, account_id: int, password_hash: str) -> None:
    """A new password ends every session (refresh tokens) and any lockout."""
    await conn.execute("UPDATE accounts SET password_hash = %s, password_changed_at = now(), failed_logins = 0,"
                       " locked_until = NULL WHERE id = %s", (password_hash, account_id))
    await revoke_all_refresh(conn, account_id)


async def unlock(conn: Conn, account_id: int) -> None:
    await conn.execute("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = %s", (account_id,))


# ---- login attempts, rate limit and lockout ---------------------------------------

async def failed_from_address(conn: Conn, remote_addr: str | None, window_s: int) -> int:
    row = await _one(conn, "SELECT count(*) AS n FROM login_attempts WHERE remote_addr IS NOT DISTINCT FROM %s"
                     " AND NOT success AND at > now() - %s * interval '1 second'", (remote_addr, window_s))
    return int(row["n"]) if row else 0


async def record_attempt(conn: Conn, *, username: str, remote_addr: str | None, success: bool,
                         account_id: int | None, max_failures: int, lockout_s: int) -> datetime | None:
    """Log an attempt; on failure count it against the account and lock it for
    ``lockout_s`` after ``max_failures`` in a row (returns the lock's end, if locked)."""
    await conn.execute("INSERT INTO login_attempts (username, remote_addr, success) VALUES (%s, %s, %s)",
                       (username[:64], remote_addr, success))
    if account_id is None:
        return None
    if success:
        await conn.execute("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = %s", (account_id,))
        return None
    # a lock that has run out starts the count afresh (else one more slip would re-lock)
    await conn.execute("UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = %s"
                       " AND locked_until <= now()", (account_id,))
    row = await _one(
        conn, "UPDATE accounts SET failed_logins = failed_logins + 1, locked_until = CASE WHEN failed_logins + 1 >= %s"
        " THEN now() + %s * interval '1 second' ELSE locked_until END WHERE id = %s RETURNING locked_until",
        (max_failures, lockout_s, account_id))
    return row["locked_until"] if row else None


# ---- refresh tokens ----------------------------------------------------------------

async def create_refresh(conn: Conn, account_id: int, token_hash: bytes, ttl_s: int) -> int:
    row = await _one(conn, "INSERT INTO refresh_tokens (account_id, token_hash, expires_at)"
                     " VALUES (%s, %s, now() + %s * interval '1 second') RETURNING id", (account_id, token_hash, ttl_s))
    assert row is not None
    return int(row["id"])


async def consume_refresh(conn: Conn, token_hash: bytes) -> Row | None:
    """Revoke a live refresh token and return its (enabled) account, or None. A token
    that was already used is a sign of theft: every session of its account is revoked."""
    row = await _one(conn, "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL"
                     " AND expires_at > now() RETURNING id, account_id", (token_hash,))
    if row is None:
        reused = await _one(conn, "SELECT account_id FROM refresh_tokens WHERE token_hash = %s AND replaced_by IS NOT NULL",
                            (token_hash,))
        if reused is not None:
            await revoke_all_refresh(conn, int(reused["account_id"]))
        return None
    account = await _one(conn, f"SELECT {_ACCOUNT_COLS} FROM accounts WHERE id = %s AND NOT disabled",
                         (row["account_id"],))
    if account is not None:
        account["refresh_id"] = row["id"]
    return account


async def link_refresh(conn: Conn, old_id: int, new_id: int) -> None:
    await conn.execute("UPDATE refresh_tokens SET replaced_by = %s WHERE id = %s", (new_id, old_id))


async def revoke_refresh(conn: Conn, token_hash: bytes) -> bool:
    cur = await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
                             (token_hash,))
    return cur.rowcount > 0


async def revoke_all_refresh(conn: Conn, account_id: int) -> None:
    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = %s AND revoked_at IS NULL",
                       (account_id,))


# ---- API keys ------------------------------------------------------------------------

async def create_api_key(conn: Conn, *, account_id: int, name: str, prefix: str, key_hash: bytes, scopes: list[str],
                         created_by: str) -> Row:
    row = await _one(conn, "INSERT INTO api_keys (account_id, name, prefix, key_hash, scopes, created_by)"
                     f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_KEY_COLS}",
                     (account_id, name, prefix, key_hash, scopes, created_by))
    assert row is not None
    return row


async def find_api_key(conn: Conn, prefix: str) -> Row | None:
    """A live key by its public prefix, with its account (for authentication)."""
    return await _one(conn, "SELECT k.id, k.key_hash, k.scopes, a.id AS account_id, a.username, a.role, a.unit_id,"
                      " a.subject_id FROM api_keys k JOIN accounts a ON a.id = k.account_id"
                      " WHERE k.prefix = %s AND k.revoked_at IS NULL AND NOT a.disabled", (prefix,))


async def touch_api_key(conn: Conn, key_id: int) -> None:
    await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s"
                       " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", (key_id,))


async def list_api_keys(conn: Conn, account_id: int | None) -> list[Row]:
    return await _all(conn, f"SELECT {_KEY_COLS} FROM api_keys WHERE (%s::bigint IS NULL OR account_id = %s)"
                      " ORDER BY id", (account_id, account_id))


async def revoke_api_key(conn: Conn, key_id: int) -> Row:
    row = await _one(conn, f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
                     f" RETURNING {_KEY_COLS}", (key_id,))
    if row is None:
        raise NotFoundError("api key", str(key_id))
    return row


# ---- caseloads -------------------------------------------------------------------------

async def assign_subject(conn: Conn, *, subject_id: str, officer_id: int | None, unit_id: str | None, by: str,
                         reason: str | None) -> Row:
    """Put a subject on an officer's caseload (and the officer's unit unless one is
    given); kept as a row of ``subject_assignments``. Returns (before, after)."""
    before = await _one(conn, "SELECT officer_id, unit_id FROM subjects WHERE id = %s FOR UPDATE", (subject_id,))
    if before is None:
        raise NotFoundError("subject", subject_id)
    if officer_id is not None:
        officer = await get_account(conn, officer_id)
        if officer["role"] not in ("officer", "supervisor"):
            raise InvalidInputError("officer_id", "must be an officer's or a supervisor's account")
        unit_id = unit_id or officer["unit_id"]
    try:
        async with conn.transaction():
            await conn.execute("UPDATE subjects SET officer_id = %s, unit_id = %s WHERE id = %s",
                               (officer_id, unit_id, subject_id))
            row = await _one(conn, "INSERT INTO subject_assignments (subject_id, officer_id, unit_id, assigned_by, reason)"
                             " VALUES (%s, %s, %s, %s, %s) RETURNING id, subject_id, officer_id, unit_id, assigned_by,"
                             " assigned_at, reason", (subject_id, officer_id, unit_id, by, reason))
    except psycopg.errors.ForeignKeyViolation as exc:
        raise NotFoundError("unit", str(unit_id)) from exc
    assert row is not None
    row["before"] = dict(before)
    return row


async def assignment_history(conn: Conn, subject_id: str) -> list[Row]:
    return await _all(conn, "SELECT id, subject_id, officer_id, unit_id, assigned_by, assigned_at, reason"
                      " FROM subject_assignments WHERE subject_id = %s ORDER BY id", (subject_id,))


async def subject_owner(conn: Conn, subject_id: str) -> Row | None:
    return await _one(conn, "SELECT officer_id, unit_id FROM subjects WHERE id = %s", (subject_id,))


__all__ = [
    "ROLES",
    "assign_subject",
    "assignment_history",
    "consume_refresh",
    "create_account",
    "create_api_key",
    "create_refresh",
    "create_unit",
    "failed_from_address",
    "find_api_key",
    "find_login",
    "get_account",
    "link_refresh",
    "list_accounts",
    "list_api_keys",
    "list_units",
    "record_attempt",
    "revoke_all_refresh",
    "revoke_api_key",
    "revoke_refresh",
    "set_password",
    "subject_owner",
    "touch_api_key",
    "unlock",
]
