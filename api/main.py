"""The API alone, configured from the environment, for a process manager that runs N
workers::

    NAZORAT_DATABASE_URL=... NAZORAT_JWT_SECRET=... \\
        uvicorn --factory api.main:app_from_environment --workers 4 --port 8000

Every worker has its own database pool and its own LISTEN connection for the live
feed, so any worker serves any officer; they must share ``NAZORAT_JWT_SECRET`` (a
token signed by one is read by the others). ``NAZORAT_API_TOKEN``, when set, is the
bootstrap admin key. Ingest runs apart (``nazorat serve --no-api``)."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.auth import AuthConfig
from telemetry.settings import Settings


def app_from_environment() -> FastAPI:
    settings = Settings()  # type: ignore[call-arg]  # fields come from the environment
    if not settings.database_url:
        raise ValueError("NAZORAT_DATABASE_URL is required")
    if not settings.jwt_secret:
        raise ValueError("NAZORAT_JWT_SECRET is required: every API worker signs and reads the same tokens")
    return create_app(database_url=settings.database_url, api_token=settings.api_token,
                      auth_config=AuthConfig.from_settings(settings))


__all__ = ["app_from_environment"]
