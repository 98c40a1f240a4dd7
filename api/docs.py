"""The API documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) served with
their assets from this package, so they render on a closed network: no CDN, no web
fonts, no online validator.

The assets are vendored unchanged from the npm registry (``swagger-ui-dist`` 5.35.0 and
``redoc`` 2.5.4, bundles/redoc.standalone.js) into ``api/static/docs`` with their
licences. To update: ``npm pack swagger-ui-dist@<v> redoc@<v>`` and copy the same files.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

ASSET_PREFIX = "/docs/assets"
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@cache
def _asset(name: str) -> bytes:
    return resources.files("api.static.docs").joinpath(name).read_bytes()


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets; create the app with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not added too."""
    openapi_url = app.openapi_url or "/openapi.json"
    favicon = f"{ASSET_PREFIX}/favicon-32x32.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} — API", oauth2_redirect_url=None,
            swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js", swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url=favicon, swagger_ui_parameters={"validatorUrl": None})

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} — API reference",
                              redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js", redoc_favicon_url=favicon,
                              with_google_fonts=False)

    @app.get(ASSET_PREFIX + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, f"no documentation asset {name!r}")
        return Response(_asset(name), media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


__all__ = ["ASSET_PREFIX", "install"]
