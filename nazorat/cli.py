"""The ``nazorat`` command: the composition root that starts processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from telemetry.settings import Settings


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="PostgreSQL URL (env NAZORAT_DATABASE_URL)")
    p.add_argument("--mqtt-url", help="mqtt://host:port (env NAZORAT_MQTT_URL)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nazorat", description="Nazorat E-monitoring engine")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="all-in-one: embedded services when none configured, ingest, API, demo fleet")
    _common(run)
    run.add_argument("--port", type=int, help="API port (env NAZORAT_API_PORT, default 8000)")
    run.add_argument("--fleet", type=int, default=20, help="simulated devices (0: none)")

    serve = sub.add_parser("serve", help="ingest and API against configured services")
    _common(serve)
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-api", action="store_true")
    serve.add_argument("--health-port", type=int, help="also serve /healthz and /readyz on this port (for --no-api)")
    serve.add_argument("--no-ingest", action="store_true")
    serve.add_argument("--client-id")
    serve.add_argument("--shared-group")
    serve.add_argument("--mqtt-protocol", type=int, choices=(4, 5), default=5)

    dbp = sub.add_parser("db", help="database schema")
    dbs = dbp.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--database-url")

    sim = sub.add_parser("simulate", help="publish a simulated fleet")
    sim.add_argument("--api-url", required=True)
    sim.add_argument("--token", help="API token (env NAZORAT_API_TOKEN)")
    sim.add_argument("--mqtt-url", required=True)
    sim.add_argument("--devices", type=int, default=20)
    sim.add_argument("--interval", type=float, default=1.0)
    sim.add_argument("--duration", type=float)
    sim.add_argument("--no-register", action="store_true")

    zl = sub.add_parser("zones", help="zone tools")
    zls = zl.add_subparsers(dest="zones_command", required=True)
    load = zls.add_parser("load", help="import a GeoJSON FeatureCollection through the API")
    load.add_argument("file", type=Path)
    load.add_argument("--api-url", required=True)
    load.add_argument("--token")

    dev = sub.add_parser("devices", help="device tools")
    devs = dev.add_subparsers(dest="devices_command", required=True)
    cred = devs.add_parser("credentials", help="create or rotate MQTT passwords for devices (printed once)")
    cred.add_argument("device_ids", nargs="+")
    cred.add_argument("--auth-dir", type=Path, help="the broker's password/ACL folder (default DATA_DIR/mqtt-auth)")
    cred.add_argument("--engine", action="store_true",
                      help="the names are engine service accounts (nazorat-engine, nazorat-engine-<worker>), not devices")

    users = sub.add_parser("users", help="officers' accounts")
    userss = users.add_subparsers(dest="users_command", required=True)
    uadd = userss.add_parser("add", help="create an account (password from a prompt, or stdin when not a terminal)")
    uadd.add_argument("name")
    uadd.add_argument("--role", required=True, choices=("admin", "supervisor", "officer", "auditor", "appellant"))
    uadd.add_argument("--unit", default="hq")
    uadd.add_argument("--subject", help="the subject an appellant is linked to")
    uadd.add_argument("--database-url")

    aud = sub.add_parser("audit", help="the audit log")
    auds = aud.add_subparsers(dest="audit_command", required=True)
    ver = auds.add_parser("verify", help="check the hash chain; names the first broken record")
    ver.add_argument("--database-url")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()  # type: ignore[call-arg]  # fields come from the environment
    if args.command == "run":
        return _run(args, settings)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "db":
        from telemetry.store import migrate as db

        url = args.database_url or settings.database_url
        if not url:
            parser.error("--database-url or NAZORAT_DATABASE_URL is required")
        print("\n".join(db.upgrade(url, retention_days=settings.retention_days, timezone=settings.timezone))
              or "schema is up to date")
        return 0
    if args.command == "simulate":
        return _simulate(args, settings)
    if args.command in ("users", "audit"):
        from nazorat import accounts_cli

        url = args.database_url or settings.database_url
        if not url:
            parser.error("--database-url or NAZORAT_DATABASE_URL is required")
        if args.command == "users":
            return accounts_cli.add_user(url, args.name, role=args.role, unit=args.unit, subject=args.subject)
        return accounts_cli.verify_audit(url)
    if args.command == "devices":
        return _credentials(args, settings)
    if args.command == "zones":
        token = args.token or settings.api_token
        req = urllib.request.Request(args.api_url.rstrip("/") + "/zones/import", data=args.file.read_bytes(),
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            print(f"imported {len(json.loads(resp.read()))} zones")
        return 0
    return 2


def _credentials(args: argparse.Namespace, settings: Settings) -> int:
    """Create or rotate MQTT passwords (printed once, stored hashed); the running broker
    that uses these files reloads them at once (its PID is recorded beside them)."""
    from nazorat.services import AccountNameError, CredentialStore, check_device_id, check_service_account

    store = CredentialStore(args.auth_dir or Path(settings.data_dir) / "mqtt-auth")
    try:
        for name in args.device_ids:  # every name is checked before anything is written
            (check_service_account if args.engine else check_device_id)(name)
    except AccountNameError as exc:
        print(f"nazorat: {exc}", file=sys.stderr)
        return 2
    store.write_acl()
    if args.engine:
        passwords = {name: store.rotate_engine_password(name) for name in args.device_ids}
    else:
        passwords = store.add_devices(args.device_ids)
    for name, password in passwords.items():
        print(f"{name}\t{password}")
    pid = store.reload_broker()
    if pid is not None:
        print(f"written to {store.password_file}; the running broker (pid {pid}) reloaded it", file=sys.stderr)
    else:
        print(f"written to {store.password_file}; no running broker uses it: it takes effect when the stack starts",
              file=sys.stderr)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from nazorat import stack

    data_dir = Path(settings.data_dir).resolve()
    infra = stack.start_infrastructure(data_dir, args.database_url or settings.database_url,
                                       args.mqtt_url or settings.mqtt_url)
    try:
        infra.migrate(settings)  # as the owner role; the engine and the API run as the run-time role
        token = settings.api_token or stack.load_or_create_token(data_dir)
        auth = _auth_config(settings, data_dir)
        status = _until_stopped(stack.serve(
            auth_config=auth, demo_accounts=data_dir / "demo-accounts",
            database_url=infra.database_url, mqtt_url=infra.mqtt_url, mqtt_protocol=infra.mqtt_protocol,
            api_token=token, host=settings.api_host, port=args.port or settings.api_port,
            batch_max_messages=settings.batch_max_messages, batch_max_ms=settings.batch_max_ms,
            retention_days=settings.retention_days, demo_fleet=args.fleet, fleet_credentials=infra.device_credentials,
        ))
    finally:
        infra.stop()
    print("Nazorat stopped." if status == 0 else "Nazorat stopped after a fatal failure.", flush=True)
    return status


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from nazorat import stack

    database_url = args.database_url or settings.database_url
    mqtt_url = args.mqtt_url or settings.mqtt_url
    if not database_url or not mqtt_url:
        print("serve needs a database URL and an MQTT URL", file=sys.stderr)
        return 2
    stack.migrate(database_url, settings)
    return _until_stopped(stack.serve(
        auth_config=_auth_config(settings, Path(settings.data_dir).resolve()),
        database_url=database_url, mqtt_url=mqtt_url, mqtt_protocol=args.mqtt_protocol,
        api_token=settings.api_token or "", host=settings.api_host, port=args.port or settings.api_port,
        ingest=not args.no_ingest, api=not args.no_api, client_id=args.client_id or settings.mqtt_client_id,
        shared_group=args.shared_group or settings.mqtt_shared_group,
        batch_max_messages=settings.batch_max_messages, batch_max_ms=settings.batch_max_ms,
        retention_days=settings.retention_days, health_port=args.health_port,
    ))


def _until_stopped(main: Coroutine[Any, Any, None]) -> int:
    """Run ``serve``: exit status 0 after SIGTERM/SIGINT, 1 after a fatal task failure or
    a failed start (the supervisor has logged it with its traceback)."""
    from nazorat.errors import NazoratError

    try:
        asyncio.run(main)
    except NazoratError as exc:
        print(f"nazorat: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _auth_config(settings: Settings, data_dir: Path) -> Any:
    """Sign-in settings; the access-token key from NAZORAT_JWT_SECRET or DATA_DIR/jwt-secret
    (mode 600, shared by the API workers started from the same folder)."""
    from api.auth import AuthConfig
    from nazorat import stack

    return AuthConfig.from_settings(settings, settings.jwt_secret or stack.load_or_create_secret(data_dir / "jwt-secret"))


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator import build_fleet, publish, register_fleet

    fleet = build_fleet(args.devices)
    if not args.no_register:
        register_fleet(args.api_url, args.token or settings.api_token or "", fleet)
    sent = asyncio.run(publish(args.mqtt_url, fleet, interval_s=args.interval, duration_s=args.duration))
    print(f"published {sent} fixes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
