"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api import docs, errors
from api.routes import alerts, operational, ops, registry
from telemetry.health import Health


def create_app(*, database_url: str, api_token: str, pool_max: int = 10, health: Health | None = None) -> FastAPI:
    """Every route but ``/healthz``, ``/readyz`` and the (data-free) dashboard page needs
    the token. ``health``: the process's parts (ingest reports into it) that ``/readyz``
    shows; an API-only process gets its own, holding the database probe alone."""
    if not api_token:
        raise ValueError("an API token is required")

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

    app = FastAPI(title="Nazorat", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="E-monitoring: GPS telemetry, geofencing, alerts and registry.")
    app.state.api_token = api_token
    app.state.health = health if health is not None else Health()
    errors.install(app)
    docs.install(app)
    app.include_router(ops.router)
    app.include_router(registry.subjects)
    app.include_router(registry.devices)
    app.include_router(registry.zones)
    app.include_router(alerts.router)
    app.include_router(operational.router)
    return app


__all__ = ["create_app"]
