"""Roles and grants: who may do what in the database (DESIGN.md section 8).

Three roles:

- ``postgres`` (or the server's superuser): used only to create the roles and the
  database (``provision``).
- ``nazorat_owner``: owns the database and the public schema and runs the migrations
  (DDL); not a superuser, cannot create roles or databases.
- ``nazorat_app``: what the engine and the API connect as at run time. Not a superuser,
  cannot create anything in the schema (no DDL), may read and write the tables, and only
  INSERT and SELECT on the append-only tables (``APPEND_ONLY_TABLES``: no UPDATE, DELETE
  or TRUNCATE). Default privileges of the owner give it the same on tables a later
  migration creates, and ``grant_runtime`` re-applies the grants after every upgrade.

The embedded server (``nazorat.services.postgres``) provisions these on start; a
deployment with its own server runs ``provision`` once as its superuser, or grants the
same by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
OWNER_ROLE = "nazorat_owner"
RUNTIME_ROLE = "nazorat_app"
# tables the run-time role may only append to and read
# audit_head is written only by the audit chain trigger (SECURITY DEFINER), never by the run-time role
APPEND_ONLY_TABLES = ("audit_log", "audit_head")


def with_credentials(url: str, role: str, password: str, database: str | None = None) -> str:
    """``url`` with its user, password (and optionally database) replaced."""
    u = urlsplit(url)
    host = u.hostname or "127.0.0.1"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}" + (f":{u.port}" if u.port else "")
    path = f"/{database}" if database is not None else u.path
    return urlunsplit((u.scheme, netloc, path, u.query, u.fragment))


@dataclass(frozen=True)
class Database:
    """A provisioned database: migrate through ``owner_url``, run through ``runtime_url``."""

    name: str
    owner_url: str
    runtime_url: str


def provision(admin_url: str, name: str, passwords: Mapping[str, str], *, template: str | None = None) -> Database:
    """Create (or re-key) the owner and run-time roles and database ``name`` owned by the
    owner, on the server of superuser ``admin_url``; idempotent. ``template`` clones a
    database (the test suite's migrated template)."""
    owner, runtime = passwords[OWNER_ROLE], passwords[RUNTIME_ROLE]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for role, password in ((OWNER_ROLE, owner), (RUNTIME_ROLE, runtime)):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                                 " PASSWORD {}").format(verb, sql.Identifier(role), sql.Literal(password)))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            create = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(OWNER_ROLE))
            if template is not None:
                create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(create)
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(OWNER_ROLE)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        # TEMPORARY: the pipeline stages each batch in a temporary table
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(name), sql.Identifier(RUNTIME_ROLE)))
    db_admin = with_credentials(admin_url, *_userinfo(admin_url), database=name)
    with psycopg.connect(db_admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")  # needs the superuser, not the owner
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(OWNER_ROLE)))
        _adopt(conn)
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        ident = {"owner": sql.Identifier(OWNER_ROLE), "app": sql.Identifier(RUNTIME_ROLE)}
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
                             " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}").format(**ident))
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public"
                             " GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app}").format(**ident))
    grant_runtime(db_admin)
    return Database(name, with_credentials(admin_url, OWNER_ROLE, owner, database=name),
                    with_credentials(admin_url, RUNTIME_ROLE, runtime, database=name))


def _adopt(conn: psycopg.Connection[Any]) -> None:
    """Hand the owner role what an older version created as the superuser, so that later
    migrations (run as the owner) may alter it. Sequences behind serial columns follow
    their tables."""
    kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for group in (("r", "p", "f", "v", "m"), ("S",)):
        rows = conn.execute(
            "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind::text = ANY(%s) AND pg_get_userbyid(c.relowner) <> %s",
            (list(group), OWNER_ROLE)).fetchall()
        for relname, relkind in rows:
            conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
                sql.SQL(kinds[relkind]), sql.Identifier(relname), sql.Identifier(OWNER_ROLE)))


def _userinfo(url: str) -> tuple[str, str]:
    u = urlsplit(url)
    return u.username or SUPERUSER, u.password or ""


def grant_runtime(url: str) -> None:
    """Grant the run-time role what it needs on every table now in the schema and take
    away what it must not have. Run after each upgrade as the owner (or the superuser):
    a migration may have created tables that default privileges did not cover (made by
    another role) or recreated an append-only one."""
    app = sql.Identifier(RUNTIME_ROLE)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(app))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(app))
        conn.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(app))
        conn.execute(sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {}").format(app))
        present = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            ([*APPEND_ONLY_TABLES, "schema_migrations"],))}
        for table in sorted(present):
            conn.execute(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(sql.Identifier(table), app))
        if "schema_migrations" in present:
            conn.execute(sql.SQL("REVOKE INSERT ON schema_migrations FROM {}").format(app))


__all__ = ["APPEND_ONLY_TABLES", "OWNER_ROLE", "RUNTIME_ROLE", "SUPERUSER", "Database", "grant_runtime", "provision",
           "with_credentials"]
