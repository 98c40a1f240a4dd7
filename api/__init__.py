"""HTTP API (FastAPI): registry, alerts, metrics, dashboard."""

from api.app import create_app

__all__ = ["create_app"]
