"""``nazorat users add`` and ``nazorat audit verify``."""

from __future__ import annotations

import asyncio
import getpass
import sys

import psycopg

from api.auth import hash_password
from api.auth.passwords import MIN_LENGTH
from telemetry.errors import TelemetryError
from telemetry.store import accounts as account_store
from telemetry.store import audit as audit_store


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def add_user(database_url: str, name: str, *, role: str, unit: str, subject: str | None) -> int:
    """Create an account; the password is read, hashed and never echoed or logged."""
    password = _read_password()
    if len(password) < MIN_LENGTH:
        print(f"the password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2

    async def create() -> dict[str, object]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            row = await account_store.create_account(conn, username=name, role=role, unit_id=unit, subject_id=subject,
                                                     password_hash=hash_password(password))
            await audit_store.append(conn, actor=f"cli:{getpass.getuser()}", role="admin", action="account.create",
                                     target=str(row["id"]), subject_id=subject, remote_addr="local",
                                     scope="all", details={"after": {"username": name, "role": role, "unit_id": unit}})
            await conn.commit()
            return row

    try:
        row = asyncio.run(create())
    except TelemetryError as exc:
        print(f"cannot create {name}: {exc}", file=sys.stderr)
        return 1
    print(f"created {row['role']} {row['username']} (id {row['id']}, unit {row['unit_id']})")
    return 0


def verify_audit(database_url: str) -> int:
    """Exit 0 when the chain holds, 1 naming the first broken record."""
    with psycopg.connect(database_url) as conn:
        report = audit_store.verify(conn)
    if report.ok:
        print(f"audit chain ok: {report.checked} records")
        return 0
    print(f"audit chain broken at record {report.first_broken_id}: {report.reason} ({report.checked} records checked)")
    return 1


__all__ = ["add_user", "verify_audit"]
