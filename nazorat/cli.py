"""The ``nazorat`` command: the composition root that starts processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.request
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from nazorat.exit_watchdog import ExitWatchdog
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
    run.add_argument("--broker", choices=("mosquitto", "rabbitmq-cluster"), default="mosquitto",
                     help="rabbitmq-cluster: a local 3-node RabbitMQ cluster of our own (deploy/rabbitmq.md)")

    serve = sub.add_parser("serve", help="ingest and API against configured services")
    _common(serve)
    serve.add_argument("--port", type=int)
    serve.add_argument("--no-api", action="store_true")
    serve.add_argument("--health-port", type=int, help="also serve /healthz and /readyz on this port (for --no-api)")
    serve.add_argument("--http-port", type=int,
                       help="serve the HTTP ingest listener (OsmAnd, OwnTracks HTTP) on this port (env NAZORAT_HTTP_PORT)")
    serve.add_argument("--no-ingest", action="store_true")
    serve.add_argument("--client-id")
    serve.add_argument("--shared-group")
    serve.add_argument("--mqtt-protocol", type=int, choices=(4, 5), default=5)

    dbp = sub.add_parser("db", help="database schema")
    dbs = dbp.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade", help="apply pending migrations")
    up.add_argument("--database-url")

    sim = sub.add_parser("simulate", help="publish a simulated fleet with ground truth (and verify it)")
    sim.add_argument("--api-url", required=True)
    sim.add_argument("--token", help="API token (env NAZORAT_API_TOKEN)")
    sim.add_argument("--mqtt-url", required=True)
    sim.add_argument("--devices", type=int, default=50, help="devices, victim phones included")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--hours", type=float, default=2.0, help="simulated span (a curfew, then a day)")
    sim.add_argument("--night-hours", type=float, default=2 / 3, help="the curfew part of the span")
    sim.add_argument("--duration", type=float, help="wall seconds to replay the span in (default: real time)")
    sim.add_argument("--scenario-rate", type=float, default=0.01,
                     help="share of the ankle monitors given each scenario (at least one each)")
    sim.add_argument("--prefix", default="sim", help="id prefix of the fleet's subjects and devices")
    sim.add_argument("--truth", type=Path, default=Path("simulate-truth.jsonl"), help="ground-truth file (JSON lines)")
    sim.add_argument("--verify", action="store_true", help="read the alerts back through the API and score them")
    sim.add_argument("--report-json", type=Path, help="write the verification summary here")
    sim.add_argument("--processes", type=int, default=1, help="publisher processes")
    sim.add_argument("--connections", type=int, default=2, help="shared MQTT connections (without --credentials)")
    sim.add_argument("--credentials", type=Path,
                     help="per-device MQTT passwords: 'device<TAB>password' lines, as `nazorat devices credentials` prints")
    sim.add_argument("--database-url",
                     help="a compressed replay needs device profiles with compressed thresholds and there is no API"
                          " route for profiles: with this URL they are written (an operator's step); without it the"
                          " gps_loss and communication_loss scenarios are left out of a compressed replay")
    sim.add_argument("--no-register", action="store_true")
    sim.add_argument("--background", type=int, default=0,
                     help="beside the plan, this many compliant devices reporting in real time for the replay's"
                          " wall time (generated as they are sent: the way to 100,000-200,000 devices; shared"
                          " connections, not --credentials)")
    sim.add_argument("--background-interval", type=float, default=10.0, help="their seconds between fixes")

    ver = sub.add_parser("verify", help="score the alerts of a simulated run against its ground-truth file")
    ver.add_argument("truth", type=Path)
    ver.add_argument("--api-url", required=True)
    ver.add_argument("--token", help="API token (env NAZORAT_API_TOKEN)")
    ver.add_argument("--json", type=Path, help="write the summary here")

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

    from nazorat import broker_cli

    broker_cli.add_parser(sub)

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
    if args.command == "verify":
        return _verify(args, settings)
    if args.command == "devices":
        return _credentials(args, settings)
    if args.command == "broker":
        return broker_cli.run(args, settings)
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
                                       args.mqtt_url or settings.mqtt_url, broker_kind=args.broker)
    try:
        infra.migrate(settings)  # as the owner role; the engine and the API run as the run-time role
        token = settings.api_token or stack.load_or_create_token(data_dir)
        auth = _auth_config(settings, data_dir)
        status = _until_stopped(lambda watchdog: stack.serve(
            watchdog=watchdog, exit_deadline_s=settings.exit_deadline_s,
            auth_config=auth, demo_accounts=data_dir / "demo-accounts",
            database_url=infra.database_url, mqtt_url=infra.mqtt_url, mqtt_protocol=infra.mqtt_protocol,
            api_token=token, host=settings.api_host, port=args.port or settings.api_port,
            batch_max_messages=settings.batch_max_messages, batch_max_ms=settings.batch_max_ms,
            retention_days=settings.retention_days, demo_fleet=args.fleet, fleet_credentials=infra.device_credentials,
            http_port=settings.http_port or 5055, webhook_backoff_s=settings.webhook_backoff_s,
            amqp=infra.amqp, fleet_mqtt_url=infra.fleet_mqtt_url,
        ), before_forced_exit=infra.stop)
    finally:
        infra.stop()
    print("Nazorat stopped." if status == 0 else "Nazorat stopped after a fatal failure.", flush=True)
    return status


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from nazorat import stack

    database_url = args.database_url or settings.database_url
    mqtt_url = args.mqtt_url or settings.mqtt_url
    if settings.broker == "rabbitmq":
        mqtt_url = settings.amqp_urls
    if not database_url or not mqtt_url:
        print("serve needs a database URL and an MQTT URL (NAZORAT_BROKER=rabbitmq: NAZORAT_AMQP_URLS)",
              file=sys.stderr)
        return 2
    stack.migrate(database_url, settings)
    return _until_stopped(lambda watchdog: stack.serve(
        watchdog=watchdog, exit_deadline_s=settings.exit_deadline_s,
        auth_config=_auth_config(settings, Path(settings.data_dir).resolve()),
        database_url=database_url, mqtt_url=mqtt_url, mqtt_protocol=args.mqtt_protocol,
        api_token=settings.api_token or "", host=settings.api_host, port=args.port or settings.api_port,
        ingest=not args.no_ingest, api=not args.no_api, client_id=args.client_id or settings.mqtt_client_id,
        shared_group=args.shared_group or settings.mqtt_shared_group,
        batch_max_messages=settings.batch_max_messages, batch_max_ms=settings.batch_max_ms,
        retention_days=settings.retention_days, health_port=args.health_port,
        http_port=args.http_port or settings.http_port, webhook_backoff_s=settings.webhook_backoff_s,
        amqp=_amqp_options(mqtt_url, settings),
    ))


def _amqp_options(url: str, settings: Settings) -> Any:
    """The RabbitMQ backend's options when ``url`` is an amqp:// URL list (else None)."""
    if not url.startswith(("amqp://", "amqps://")):
        return None
    from ingest.amqp import AmqpOptions, parse_amqp_urls

    owned = tuple(int(p) for p in settings.amqp_owned.split(",") if p.strip()) if settings.amqp_owned else None
    return AmqpOptions(parse_amqp_urls(url), partitions=settings.amqp_partitions, owned=owned,
                       standby_delay_s=settings.amqp_standby_delay_s)


def _until_stopped(main: Callable[[ExitWatchdog], Coroutine[Any, Any, None]], *,
                   before_forced_exit: Callable[[], None] | None = None) -> int:
    """Run ``serve``: exit status 0 after SIGTERM/SIGINT, 1 after a fatal task failure or
    a failed start (the supervisor has logged it with its traceback), and 1 when the stop
    hangs (``nazorat.exit_watchdog``: ``before_forced_exit`` runs first)."""
    from nazorat.errors import NazoratError

    watchdog = ExitWatchdog(before_exit=before_forced_exit)
    try:
        asyncio.run(main(watchdog))
    except NazoratError as exc:
        print(f"nazorat: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        watchdog.disarm()
    return 0


def _auth_config(settings: Settings, data_dir: Path) -> Any:
    """Sign-in settings; the access-token key from NAZORAT_JWT_SECRET or DATA_DIR/jwt-secret
    (mode 600, shared by the API workers started from the same folder)."""
    from api.auth import AuthConfig
    from nazorat import stack

    return AuthConfig.from_settings(settings, settings.jwt_secret or stack.load_or_create_secret(data_dir / "jwt-secret"))


def apply_sim_profiles(database_url: str, plan: Any) -> None:
    """Write the device profiles a compressed replay needs (``Plan.profiles_needed``) and
    assign the fleet's devices to them: an operator's step, since the API has no route
    for profiles. Announced on the registry channel, so running engines reload."""
    import psycopg

    from telemetry.store.profiles import put_device_profile

    needed = plan.profiles_needed()
    if not needed:
        return
    with psycopg.connect(database_url) as conn:
        for name, values in needed.items():
            put_device_profile(conn, name, values, [d for d, p in plan.profiles.items() if p == name])


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulator.background import BackgroundConfig
    from simulator.progress import LiveProgress
    from simulator.run import simulate
    from simulator.scenarios import SCENARIOS, SimConfig

    span_s = round(args.hours * 3600 / 60) * 60
    night_s = round(args.night_hours * 3600 / 60) * 60
    compression = max(1.0, span_s / args.duration) if args.duration else 1.0
    scenarios: tuple[str, ...] = SCENARIOS
    if compression > 1 and not args.database_url:
        scenarios = tuple(s for s in SCENARIOS if s not in ("gps_loss", "communication_loss"))
        print("compressed replay without --database-url: gps_loss and communication_loss left out", file=sys.stderr)
    config = SimConfig(devices=args.devices, seed=args.seed, span_s=span_s, night_s=night_s, compression=compression,
                       prefix=args.prefix, rates=dict.fromkeys(scenarios, args.scenario_rate), scenarios=scenarios)
    credentials = None
    if args.credentials:
        credentials = dict(line.split("\t", 1) for line in args.credentials.read_text().split("\n") if "\t" in line)
    background = None
    if args.background:
        if credentials is not None:
            print("--background publishes over shared connections: leave out --credentials", file=sys.stderr)
            return 2
        background = BackgroundConfig(devices=args.background, seed=args.seed, interval_s=args.background_interval,
                                      duration_s=span_s / compression, prefix=args.prefix)
    token = args.token or settings.api_token or ""
    with LiveProgress(args.api_url, token) as live:
        result = simulate(config, api_url=args.api_url, token=token, mqtt_url=args.mqtt_url, truth_path=args.truth,
                          credentials=credentials, register_fleet=not args.no_register,
                          before_publish=(lambda plan: apply_sim_profiles(args.database_url, plan))
                          if args.database_url else None, processes=args.processes, connections=args.connections,
                          progress=live, verify=args.verify, background=background)
    pub = result.published
    secs = max(0.001, (pub.ended_ms - pub.started_ms) / 1000)
    summary: dict[str, object] = {
        "published": f"{pub.messages:,} messages ({pub.fixes:,} fixes) in {secs:.1f} s",
        "achieved rate": f"{pub.messages / secs:,.0f} msg/s", "acknowledged": f"{pub.acked:,}",
        "most behind schedule": f"{pub.max_lag_s:.2f} s", "ground truth": str(args.truth)}
    if result.report is not None:
        s = result.report.summary()
        summary |= {"recall": result.report.recall, "false alerts": result.report.false_alerts,
                    "publish -> visible p50 / p99": f"{s['publish_to_visible_p50_ms']} / {s['publish_to_visible_p99_ms']} ms"}
    live.summary(summary)
    if result.report is not None:
        print(result.report.text())
        if args.report_json:
            args.report_json.write_text(json.dumps(result.report.summary(), indent=2) + "\n")
        return 0 if result.report.recall == 1.0 and result.report.false_alerts == 0 else 1
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from simulator.registry import Api
    from simulator.truth import read_truth
    from simulator.verify import verify

    run, events = read_truth(args.truth)
    with Api(args.api_url, args.token or settings.api_token or "") as api:
        report = verify(api, run, events)
    print(report.text())
    if args.json:
        args.json.write_text(json.dumps(report.summary(), indent=2) + "\n")
    return 0 if report.recall == 1.0 and report.false_alerts == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
