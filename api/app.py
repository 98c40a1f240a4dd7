"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import console, docs, errors
from api.auth import AuthConfig
from api.feed import FeedHub
from api.routes import (
    accounts,
    alerts,
    appeals,
    audit,
    auth,
    device_registry,
    evidence,
    feed,
    interop,
    locations,
    operational,
    ops,
    registry,
    statistics,
    subject_details,
    terms,
    webhooks,
    zone_versions,
)
from telemetry.escalation import Clock, run_escalation, utc_now
from telemetry.health import Health
from telemetry.settings import Settings

log = logging.getLogger(__name__)


def create_app(*, database_url: str, api_token: str | None, pool_max: int = 10, health: Health | None = None,
               auth_config: AuthConfig | None = None, escalation_interval_s: float | None = 30.0,
               clock: Clock = utc_now, feed_poll_s: float = 15.0, console_tile_url: str | None = None,
               console_tile_attribution: str | None = None) -> FastAPI:
    """Every route but ``/healthz``, ``/readyz``, sign-in and the (data-free) dashboard
    page needs a credential (see :mod:`api.deps`). ``api_token``, when set, is a
    bootstrap admin key. ``health``: the process's parts (ingest reports into it) that
    ``/readyz`` shows; an API-only process gets its own, holding the database probe
    alone. API workers that serve the same officers need the same
    ``auth_config.jwt_secret``. ``escalation_interval_s``: how often this process runs
    the escalation check (None: never), with ``clock`` for "now". ``console_tile_url``:
    an optional map tile URL template for the console (default: a plain background)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=pool_max, open=False,
                                   kwargs={"connect_timeout": 5})
        await pool.open()
        app.state.pool = pool
        hub = FeedHub(database_url, poll_s=feed_poll_s)
        await hub.__aenter__()
        app.state.feed = hub
        jobs: list[asyncio.Task[None]] = []
        if escalation_interval_s is not None:
            jobs.append(asyncio.create_task(run_escalation(pool, interval_s=escalation_interval_s, clock=clock),
                                            name="escalation"))
        for job in jobs:
            job.add_done_callback(_report_end)
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            if jobs:
                await asyncio.wait(jobs)  # cancelled on purpose; a failure was reported by _report_end
            await hub.__aexit__(None, None, None)
            await pool.close()

    app = FastAPI(title="Nazorat", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="E-monitoring: GPS telemetry, geofencing, alerts and registry.")
    app.state.api_token = api_token or None
    app.state.auth = auth_config or AuthConfig()
    app.state.health = health if health is not None else Health()
    app.state.clock = clock  # "now" for the appeals' deadlines (tests inject one)
    errors.install(app)
    docs.install(app)
    app.include_router(ops.router)
    app.include_router(auth.router)
    app.include_router(accounts.accounts)
    app.include_router(accounts.units)
    app.include_router(accounts.api_keys)
    app.include_router(accounts.caseload)
    app.include_router(audit.router)
    app.include_router(registry.subjects)
    app.include_router(registry.devices)
    app.include_router(registry.zones)
    app.include_router(locations.locations)
    app.include_router(locations.subject_tracks)
    app.include_router(subject_details.router)
    app.include_router(terms.router)
    app.include_router(terms.tasks)
    app.include_router(device_registry.router)
    app.include_router(zone_versions.router)
    app.include_router(zone_versions.subject_zones)
    app.include_router(alerts.router)
    app.include_router(evidence.router)
    app.include_router(statistics.router)
    app.include_router(appeals.router)
    app.include_router(appeals.appellants)
    app.include_router(feed.router)
    app.include_router(operational.router)
    app.include_router(interop.router)
    app.include_router(webhooks.router)
    settings = Settings()  # type: ignore[call-arg]  # fields come from the environment
    console.install(app, tile_url=console_tile_url or settings.console_tile_url,
                    tile_attribution=console_tile_attribution or settings.console_tile_attribution)
    return app


def _report_end(task: asyncio.Task[None]) -> None:
    """A background job of the app must not stop silently."""
    if not task.cancelled() and task.exception() is not None:
        log.error("API background job %s stopped", task.get_name(), exc_info=task.exception())


__all__ = ["create_app"]
