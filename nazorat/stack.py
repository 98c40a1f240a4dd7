"""Running the engine: API + ingest in one event loop under one supervisor, and the
all-in-one demo stack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import uvicorn

from api import create_app
from api.auth import AuthConfig
from geofence import warm_up
from ingest import HttpIngest, IngestWorker, WebhookDispatcher
from ingest.amqp import AmqpOptions
from nazorat import demo
from nazorat.errors import StartupError
from nazorat.exit_watchdog import ExitWatchdog
from nazorat.probes import serve_probes
from nazorat.services import ENGINE_USER, AmqttBroker, CredentialStore, EmbeddedPostgres, MosquittoBroker
from nazorat.services.errors import MigrationPrivilegeError
from nazorat.supervisor import Policy, Supervisor, TaskSpec, watch_readiness
from telemetry.health import Health
from telemetry.pipeline import Pipeline
from telemetry.settings import Settings
from telemetry.store import migrate as db
from telemetry.store.roles import RUNTIME_ROLE, grant_runtime

log = logging.getLogger("nazorat")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Infrastructure:
    """The services ``nazorat run`` uses. ``database_url`` is what the engine and the API
    connect with: on the embedded PostgreSQL the least-privilege run-time role
    (``nazorat_app``, no DDL, append-only audit log); ``migration_url`` is the owner role
    that applies migrations (``migrate``). With a configured database both are that URL."""

    database_url: str
    mqtt_url: str
    mqtt_protocol: int
    postgres: EmbeddedPostgres | None = None
    broker: MosquittoBroker | AmqttBroker | None = None
    credentials: CredentialStore | None = None  # set when our Mosquitto enforces per-device auth
    migration_url: str | None = None
    # `nazorat run --broker rabbitmq-cluster`: our local 3-node cluster (deploy/rabbitmq.md)
    rabbit: Any = None  # nazorat.services.rabbitmq.RabbitCluster
    rabbit_admin: Any = None  # nazorat.services.rabbit_provision.RabbitAdmin
    amqp: AmqpOptions | None = None
    fleet_mqtt_url: str | None = None  # where devices publish, when not the engine's broker URL

    def migrate(self, settings: Settings | None = None) -> list[str]:
        """Apply pending migrations as the owner; on our PostgreSQL, re-grant the run-time role."""
        settings = settings or Settings()  # type: ignore[call-arg]  # fields come from the environment
        applied = db.upgrade(self.migration_url or self.database_url, retention_days=settings.retention_days,
                             timezone=settings.timezone)
        if self.migration_url is not None:
            grant_runtime(self.migration_url)
        return applied

    def device_credentials(self, device_ids: list[str]) -> dict[str, str] | None:
        """Passwords for these devices on our broker (None: the broker is anonymous)."""
        if self.rabbit_admin is not None and self.amqp is not None:
            from nazorat.services.rabbit_provision import provision

            return provision(self.rabbit_admin, partitions=self.amqp.partitions, devices=device_ids,
                             engine_accounts=(), rotate=True).passwords
        if self.credentials is None or not isinstance(self.broker, MosquittoBroker):
            return None
        out = self.credentials.add_devices(device_ids)
        self.broker.reload()
        return out

    def stop(self) -> None:
        if self.rabbit is not None:
            self.rabbit.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_infrastructure(data_dir: Path, database_url: str | None, mqtt_url: str | None,
                         broker_kind: str = "mosquitto") -> Infrastructure:
    """Use the configured services, or start an embedded PostgreSQL and a broker
    (``broker_kind="rabbitmq-cluster"``: a local 3-node RabbitMQ cluster, provisioned)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = None
    migration_url = None
    if database_url is None:
        pg = EmbeddedPostgres(data_dir / "pg")
        pg.start()
        try:
            database = pg.provision("nazorat")
        except BaseException:
            pg.stop()
            raise
        database_url, migration_url = database.runtime_url, database.owner_url
        log.info("started embedded PostgreSQL on 127.0.0.1:%d (data in %s, passwords in %s); the engine and the API"
                 " connect as %s", pg.port, pg.data_dir, pg.secret_file, RUNTIME_ROLE)
    broker: MosquittoBroker | AmqttBroker | None = None
    store = None
    protocol = 5
    if mqtt_url is None and broker_kind == "rabbitmq-cluster":
        try:
            return _with_rabbit_cluster(data_dir, Infrastructure(database_url, "", protocol, pg,
                                                                 migration_url=migration_url))
        except BaseException:
            if pg is not None:
                pg.stop()
            raise
    if mqtt_url is None:
        try:
            if MosquittoBroker.available():
                store = CredentialStore(data_dir / "mqtt-auth")
                store.write_acl()
                engine_pw = store.engine_password()
                broker = MosquittoBroker(data_dir / "mqtt", password_file=store.password_file, acl_file=store.acl_file,
                                         pid_file=store.pid_file)
                broker.start()
                mqtt_url = f"mqtt://{ENGINE_USER}:{engine_pw}@{broker.host}:{broker.port}"
            else:
                broker = AmqttBroker()
                broker.start()
                mqtt_url = broker.url
                protocol = 4
                log.warning("mosquitto not found: embedded amqtt broker (anonymous, not durable) at %s", broker.url)
        except BaseException:
            if pg is not None:
                pg.stop()
            raise
        log.info("started %s broker at mqtt://%s:%d", type(broker).__name__, broker.host, broker.port)
    return Infrastructure(database_url, mqtt_url, protocol, pg, broker, store, migration_url=migration_url)


def _with_rabbit_cluster(data_dir: Path, infra: Infrastructure) -> Infrastructure:
    from nazorat.services.rabbit_provision import RabbitAdmin, provision
    from nazorat.services.rabbitmq import ADMIN_USER, RabbitCluster

    cluster = RabbitCluster(data_dir / "rabbitmq-cluster")
    log.info("starting a local 3-node RabbitMQ cluster in %s (about a minute)", cluster.base_dir)
    cluster.start()
    try:
        admin = RabbitAdmin(cluster.http_urls(), ADMIN_USER, cluster.admin_password)
        engine_pw = provision(admin, partitions=4, rotate=True).passwords["nazorat-engine"]
    except BaseException:
        cluster.stop()
        raise
    infra.rabbit, infra.rabbit_admin = cluster, admin
    urls = cluster.amqp_urls("nazorat-engine", engine_pw)
    infra.mqtt_url = ",".join(urls)
    infra.amqp = AmqpOptions(urls, partitions=4)
    infra.fleet_mqtt_url = f"mqtt://{cluster.host}:{cluster.nodes[0].mqtt_port}"
    log.info("RabbitMQ cluster up: MQTT on ports %s, management API %s (admin %s, password in this process only)",
             ", ".join(str(n.mqtt_port) for n in cluster.nodes), cluster.http_urls()[0], ADMIN_USER)
    return infra


def load_or_create_token(data_dir: Path) -> str:
    return load_or_create_secret(data_dir / "api-token")


def load_or_create_secret(path: Path) -> str:
    """A random secret kept in ``path`` (mode 600), created once; concurrent starters
    agree on one (written aside, then linked into place)."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


async def serve(
    *, database_url: str, mqtt_url: str, mqtt_protocol: int, api_token: str, host: str, port: int,
    ingest: bool = True, api: bool = True, client_id: str = "nazorat-ingest", shared_group: str | None = None,
    batch_max_messages: int = 500, batch_max_ms: int = 20, demo_fleet: int = 0, retention_days: int | None = None,
    fleet_credentials: Callable[[list[str]], dict[str, str] | None] | None = None,
    stop: asyncio.Event | None = None, ready: asyncio.Event | None = None,
    auth_config: AuthConfig | None = None, demo_accounts: Path | None = None,
    health: Health | None = None, ingest_stall_s: float = 30.0, connect_timeout_s: float = 30.0,
    silence_check_s: float = 30.0, health_port: int | None = None, http_port: int | None = None,
    webhook_backoff_s: float = 2.0, amqp: AmqpOptions | None = None, fleet_mqtt_url: str | None = None,
    watchdog: ExitWatchdog | None = None, exit_deadline_s: float = 45.0,
) -> None:
    """Run ingest and/or the API until SIGINT/SIGTERM (or ``stop``), every task owned by one
    ``Supervisor`` (the policy per task is in ``nazorat.supervisor``). Returns after a
    clean stop; raises ``FatalTaskError`` when a fatal task failed and ``StartupError``
    when ingest does not connect to the broker within ``connect_timeout_s``.
    ``ingest_stall_s``: how long messages may wait with no batch before ``/readyz`` says
    ingest is stuck; ``silence_check_s``: the interval of the communication-loss check;
    ``health_port``: serve ``/healthz`` and ``/readyz`` on it too (``nazorat.probes``, for a
    process without the API); ``http_port``: serve the HTTP ingest listener (OsmAnd /
    Traccar Client, OwnTracks HTTP; ``ingest.http``) on it, beside MQTT ingest. With ingest
    the webhook delivery loop runs too (``ingest.webhooks``; first retry after
    ``webhook_backoff_s``). ``watchdog`` (the command line's): once stopping, the process ends
    (status 1, with every stack in the log) if it has not finished within
    ``exit_deadline_s`` (``nazorat.exit_watchdog``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    arm_on_stop = None
    if watchdog is not None:
        arm_on_stop = asyncio.create_task(_arm_on_stop(stop, watchdog, exit_deadline_s), name="exit-watchdog")
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    health = health or Health(stall_after_s=ingest_stall_s)
    if ingest:
        # kernels are loaded from numba's cache (compiled there on a fresh checkout)
        # before the first fix can arrive
        await asyncio.to_thread(warm_up)
    pipeline = Pipeline(database_url)
    try:
        async with Supervisor(stop=stop, health=health) as supervisor:
            server = None
            if api:
                app = create_app(database_url=database_url, api_token=api_token, health=health,
                                 auth_config=auth_config)
                server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
                supervisor.start(TaskSpec("api", server.serve, Policy.FATAL, on_stop=_exit_server(server)))
            probes_started = asyncio.Event()
            if health_port is not None:
                supervisor.start(TaskSpec("probes", partial(serve_probes, health, host, health_port, stop,
                                                            probes_started), Policy.FATAL))
            worker = None
            if ingest:
                worker = IngestWorker(mqtt_url=mqtt_url, pipeline=pipeline, client_id=client_id,
                                      shared_group=shared_group, protocol=mqtt_protocol,
                                      batch_max_messages=batch_max_messages, batch_max_ms=batch_max_ms,
                                      retention_days=retention_days, silence_check_s=silence_check_s,
                                      health=health, amqp=amqp)
                supervisor.start(TaskSpec("ingest", partial(worker.run, stop), Policy.RESTART))
            if ingest:
                dispatcher = WebhookDispatcher(database_url=database_url, backoff_base_s=webhook_backoff_s)
                supervisor.start(TaskSpec("webhooks", partial(dispatcher.run, stop), Policy.RESTART, critical=False))
            http_started = asyncio.Event()
            if ingest and http_port is not None:
                listener = HttpIngest(pipeline=pipeline, database_url=database_url)
                supervisor.start(TaskSpec("http_ingest", partial(listener.serve, host, http_port, stop, http_started),
                                          Policy.RESTART))
            supervisor.start(TaskSpec("readiness", partial(watch_readiness, health, stop), Policy.RESTART,
                                      critical=False))
            if server is not None:
                await _until(lambda: server.started, stop)
            if health_port is not None:
                await _until(probes_started.is_set, stop)
            if ingest and http_port is not None:
                await _until(http_started.is_set, stop)
            connected = worker is None or await _until(worker.connected.is_set, stop, connect_timeout_s)
            if not connected and not stop.is_set():
                raise StartupError(f"ingest did not connect to the MQTT broker within {connect_timeout_s:.0f} s")
            if stop.is_set():
                return  # a fatal failure during start-up (raised by the supervisor) or an early signal
            if ready is not None:
                ready.set()
            api_url = f"http://{host}:{port}"
            if demo_accounts is not None and api:
                print(await asyncio.to_thread(demo.ensure_accounts, api_url, api_token, demo_accounts), flush=True)
            if demo_fleet and api:
                supervisor.start(TaskSpec(
                    "fleet", partial(_demo_fleet, api_url, api_token, fleet_mqtt_url or mqtt_url, demo_fleet, stop,
                                     fleet_credentials),
                    Policy.RESTART, critical=False))
            lines = ["Nazorat is running."]
            if api:
                # the token once, and never in a URL (a URL lands in the browser's history)
                lines += [f"  API:       {api_url}", f"  API docs:  {api_url}/docs", f"  Console:   {api_url}/console/",
                          f"  Appeals:   {api_url}/console/appeal.html",
                          f"  Token:     {api_token}", f"  Readiness: {api_url}/readyz"]
            elif health_port is not None:
                lines.append(f"  Readiness: http://{host}:{health_port}/readyz")
            else:
                lines.append("  Readiness: in this log (no API in this process; --health-port to probe it)")
            if ingest and amqp is not None:
                lines.append(f"  Broker:    RabbitMQ cluster, {len(amqp.urls)} nodes, {amqp.partitions} partitions")
            elif ingest:
                lines.append(f"  MQTT:      {_without_password(mqtt_url)}")
            if ingest and http_port is not None:
                lines.append(f"  HTTP in:   http://{host}:{http_port} (OsmAnd / Traccar Client, OwnTracks)")
            print("\n".join([*lines, "  Stop with Ctrl-C."]), flush=True)
            await stop.wait()
    finally:
        if watchdog is not None:  # a failed start-up, too; the event loop's teardown is covered
            watchdog.arm(exit_deadline_s, loop)
        if arm_on_stop is not None:
            arm_on_stop.cancel()
        await asyncio.to_thread(pipeline.close)


async def _arm_on_stop(stop: asyncio.Event, watchdog: ExitWatchdog, after_s: float) -> None:
    await stop.wait()
    watchdog.arm(after_s, asyncio.get_running_loop())


def _exit_server(server: uvicorn.Server) -> Callable[[], None]:
    def exit_() -> None:
        server.should_exit = True

    return exit_


async def _until(condition: Callable[[], bool], stop: asyncio.Event, timeout_s: float | None = None) -> bool:
    """Wait for ``condition`` (polled), ending early when ``stop`` is set. True once it holds."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while not condition():
        if stop.is_set() or (deadline is not None and time.monotonic() > deadline):
            return False
        await asyncio.sleep(0.05)
    return True


async def _demo_fleet(api_url: str, token: str, mqtt_url: str, n: int, stop: asyncio.Event,
                      credentials: Callable[[list[str]], dict[str, str] | None] | None) -> None:
    """Register the demo fleet (idempotent) and publish until ``stop``; a failure goes to
    the supervisor, which restarts this with backoff."""
    from urllib.parse import urlparse

    from simulator import build_fleet, publish, register_fleet

    fleet = build_fleet(n)
    await asyncio.to_thread(register_fleet, api_url, token, fleet)
    await asyncio.to_thread(demo.assign_caseload, api_url, token, [s["id"] for s in fleet.subjects])
    passwords = credentials([d.device_id for d in fleet.devices]) if credentials else None
    u = urlparse(mqtt_url)
    device_url = f"mqtt://{u.hostname}:{u.port}"  # devices log in as themselves, not as the engine
    log.info("demo fleet of %d devices registered; publishing", n)
    await publish(device_url, fleet, interval_s=1.0, stop=stop, credentials=passwords)


def _without_password(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return f"{u.scheme}://{u.username + '@' if u.username else ''}{u.hostname}:{u.port}"


def migrate(database_url: str, settings: Settings | None = None) -> list[str]:
    """Apply pending migrations and the server-specific setup. A role without DDL rights
    (the run-time role) passes when none is pending and raises ``MigrationPrivilegeError``
    when some are."""
    settings = settings or Settings()  # type: ignore[call-arg]  # fields come from the environment
    try:
        return db.upgrade(database_url, retention_days=settings.retention_days, timezone=settings.timezone)
    except psycopg.errors.InsufficientPrivilege as exc:
        role, missing = db.pending(database_url)
        if missing:
            raise MigrationPrivilegeError(role, missing) from exc
        return []


__all__ = ["Infrastructure", "load_or_create_secret", "load_or_create_token", "migrate", "serve",
           "start_infrastructure"]
