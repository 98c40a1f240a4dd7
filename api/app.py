"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import errors
from api.auth import AuthConfig
from api.routes import accounts, alerts, audit, auth, operational, ops, registry
from telemetry.health import Health


def create_app(*, database_url: str, api_token: str | None, pool_max: int = 10, health: Health | None = None,
               auth_config: AuthConfig | None = None) -> FastAPI:
    """Every route but ``/healthz``, ``/readyz``, sign-in and the (data-free) dashboard
    page needs a credential (see :mod:`api.deps`). ``api_token``, when set, is a
    bootstrap admin key. ``health``: the process's parts (ingest reports into it) that
    ``/readyz`` shows; an API-only process gets its own, holding the database probe
    alone. API workers that serve the same officers need the same
    ``auth_config.jwt_secret``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=pool_max, open=False,
                                   kwargs={"connect_timeout": 5})
        await pool.open()
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="Nazorat", version="0.1.0", lifespan=lifespan,
                  description="E-monitoring: GPS telemetry, geofencing, alerts and registry.")
    app.state.api_token = api_token or None
    app.state.auth = auth_config or AuthConfig()
    app.state.health = health if health is not None else Health()
    errors.install(app)
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
    app.include_router(alerts.router)
    app.include_router(operational.router)
    return app


__all__ = ["create_app"]
