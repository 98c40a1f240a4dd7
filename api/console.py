"""The officers' console and the appellants' page: static files from ``web/`` (plain ES
modules, see docs/console.md) with Leaflet from ``web/node_modules`` (installed from the
npm registry by ``make web``), served by the API itself so that nothing is fetched from
elsewhere at run time.

The files hold no data and need no credential; every data call of their scripts sends
the signed-in person's bearer token. A Content-Security-Policy keeps the pages on this
origin (plus the configured tile server, when there is one). ``/console/config.json``
tells the page the optional tile URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PREFIX = "/console"


def _policy(tile_url: str | None) -> str:
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc.replace('a.', '*.', 1) if '{s}' in tile_url else parts.netloc}"
    return (f"default-src 'self'; img-src 'self' data:{tiles}; connect-src 'self'; style-src 'self' 'unsafe-inline';"
            " script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


class _Files(StaticFiles):
    """Static files with the console's security headers."""

    def __init__(self, *, directory: Path, policy: str, **kw: Any) -> None:
        super().__init__(directory=directory, check_dir=False, **kw)
        self._policy = policy

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self._policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-cache"
        return response


def install(app: FastAPI, *, tile_url: str | None = None, tile_attribution: str | None = None,
            web_dir: Path = WEB_DIR) -> None:
    """``/`` redirects to the console; ``/console/`` serves ``web/src`` and
    ``/console/vendor/leaflet/`` Leaflet's ``dist`` folder (404 until ``make web``)."""
    policy = _policy(tile_url)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(f"{PREFIX}/config.json", include_in_schema=False)
    async def config() -> JSONResponse:
        return JSONResponse({"tile_url": tile_url, "tile_attribution": tile_attribution},
                            headers={"Cache-Control": "no-cache"})

    app.mount(f"{PREFIX}/vendor/leaflet", _Files(directory=web_dir / "node_modules" / "leaflet" / "dist", policy=policy),
              name="console-leaflet")
    app.mount(PREFIX, _Files(directory=web_dir / "src", policy=policy, html=True), name="console")


__all__ = ["PREFIX", "WEB_DIR", "install"]
