"""Running the engine: API + ingest in one event loop, and the all-in-one demo stack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import psycopg.sql
import uvicorn

from api import create_app
from api.auth import AuthConfig
from geofence import warm_up
from ingest import IngestWorker
from nazorat import demo
from nazorat.services import ENGINE_USER, AmqttBroker, CredentialStore, EmbeddedPostgres, MosquittoBroker
from telemetry.pipeline import Pipeline
from telemetry.store import migrate as db

log = logging.getLogger("nazorat")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Infrastructure:
    database_url: str
    mqtt_url: str
    mqtt_protocol: int
    postgres: EmbeddedPostgres | None = None
    broker: MosquittoBroker | AmqttBroker | None = None
    credentials: CredentialStore | None = None  # set when our Mosquitto enforces per-device auth

    def device_credentials(self, device_ids: list[str]) -> dict[str, str] | None:
        """Passwords for these devices on our broker (None: the broker is anonymous)."""
        if self.credentials is None or not isinstance(self.broker, MosquittoBroker):
            return None
        out = {d: self.credentials.add_device(d) for d in device_ids}
        self.broker.reload()
        return out

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()


def ensure_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url`` if missing; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return admin_url.rsplit("/", 1)[0] + "/" + name


def start_infrastructure(data_dir: Path, database_url: str | None, mqtt_url: str | None) -> Infrastructure:
    """Use the configured services, or start an embedded PostgreSQL and a broker."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pg = None
    if database_url is None:
        pg = EmbeddedPostgres(data_dir / "pg")
        pg.start()
        database_url = ensure_database(pg.url(), "nazorat")
        log.info("started embedded PostgreSQL on 127.0.0.1:%d (data in %s)", pg.port, pg.data_dir)
    broker: MosquittoBroker | AmqttBroker | None = None
    store = None
    protocol = 5
    if mqtt_url is None:
        try:
            if MosquittoBroker.available():
                store = CredentialStore(data_dir / "mqtt-auth")
                store.write_acl()
                engine_pw = store.engine_password()
                broker = MosquittoBroker(data_dir / "mqtt", password_file=store.password_file, acl_file=store.acl_file)
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
    return Infrastructure(database_url, mqtt_url, protocol, pg, broker, store)


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
) -> None:
    """Run ingest and/or the API until SIGINT/SIGTERM (or ``stop``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks: list[asyncio.Task[object]] = []
    if ingest:
        # kernels are loaded from numba's cache (compiled there on a fresh checkout)
        # before the first fix can arrive
        await asyncio.to_thread(warm_up)
    pipeline = Pipeline(database_url)
    server = None
    if api:
        app = create_app(database_url=database_url, api_token=api_token, auth_config=auth_config)
        server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
        tasks.append(asyncio.create_task(server.serve(), name="api"))
    worker = None
    if ingest:
        worker = IngestWorker(mqtt_url=mqtt_url, pipeline=pipeline, client_id=client_id, shared_group=shared_group,
                              protocol=mqtt_protocol, batch_max_messages=batch_max_messages,
                              batch_max_ms=batch_max_ms, retention_days=retention_days)
        tasks.append(asyncio.create_task(worker.run(stop), name="ingest"))
    if server is not None:
        while not server.started:
            if tasks[0].done():
                await tasks[0]  # surfaces the start-up error
                return
            await asyncio.sleep(0.05)
    if worker is not None:
        await asyncio.wait_for(worker.connected.wait(), timeout=30)
    api_url = f"http://{host}:{port}"
    if ready is not None:
        ready.set()
    if demo_accounts is not None and api:
        print(await asyncio.to_thread(demo.ensure_accounts, api_url, api_token, demo_accounts), flush=True)
    if demo_fleet:
        tasks.append(asyncio.create_task(
            _demo_fleet(api_url, api_token, mqtt_url, demo_fleet, stop, fleet_credentials), name="fleet"))
    print(f"Nazorat is running.\n  API:       {api_url}\n  API docs:  {api_url}/docs\n"
          f"  Dashboard: {api_url}/#token={api_token}\n  Token:     {api_token}\n"
          f"  MQTT:      {_without_password(mqtt_url)}\n  Stop with Ctrl-C.", flush=True)
    await stop.wait()
    if server is not None:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(pipeline.close)


async def _demo_fleet(api_url: str, token: str, mqtt_url: str, n: int, stop: asyncio.Event,
                      credentials: Callable[[list[str]], dict[str, str] | None] | None) -> None:
    from urllib.parse import urlparse

    from simulator import build_fleet, publish, register_fleet

    fleet = build_fleet(n)
    await asyncio.to_thread(register_fleet, api_url, token, fleet)
    await asyncio.to_thread(demo.assign_caseload, api_url, token, [s["id"] for s in fleet.subjects])
    passwords = credentials([d.device_id for d in fleet.devices]) if credentials else None
    u = urlparse(mqtt_url)
    device_url = f"mqtt://{u.hostname}:{u.port}"  # devices log in as themselves, not as the engine
    log.info("demo fleet of %d devices registered; publishing", n)
    while not stop.is_set():
        try:
            await publish(device_url, fleet, interval_s=1.0, stop=stop, credentials=passwords)
        except Exception:
            log.exception("demo fleet publisher failed; restarting")
            await asyncio.sleep(1.0)


def _without_password(url: str) -> str:
    from urllib.parse import urlparse

    u = urlparse(url)
    return f"{u.scheme}://{u.username + '@' if u.username else ''}{u.hostname}:{u.port}"


def migrate(database_url: str) -> list[str]:
    return db.upgrade(database_url)


__all__ = ["Infrastructure", "ensure_database", "load_or_create_secret", "load_or_create_token", "migrate", "serve",
           "start_infrastructure"]
