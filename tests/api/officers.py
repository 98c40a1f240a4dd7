"""Helpers for the officers' API tests: the app in-process (real PostgreSQL), accounts
made through the API with the bootstrap token, sign-in through the OAuth2 form."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn

from api import create_app
from api.auth import AuthConfig
from nazorat.services import free_port

TestClient = httpx.Client

BOOTSTRAP = "bootstrap-token-for-tests"
PASSWORD = "correct horse battery"


@contextmanager
def app_client(database_url: str, app_options: dict[str, Any] | None = None, **auth: Any) -> Iterator[TestClient]:
    """The app in a uvicorn server on a thread; ``auth``: AuthConfig fields; ``app_options``:
    more create_app arguments (the escalation job is off unless given)."""
    options: dict[str, Any] = {"escalation_interval_s": None, **(app_options or {})}
    app = create_app(database_url=database_url, api_token=BOOTSTRAP, pool_max=4,
                     auth_config=AuthConfig(jwt_secret="test-secret-" + "x" * 32, **auth), **options)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    server.install_signal_handlers = False  # type: ignore[attr-defined,unused-ignore]

    @contextlib.contextmanager
    def no_signals() -> Iterator[None]:
        yield

    server.capture_signals = no_signals  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def admin(c: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {BOOTSTRAP}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_account(c: TestClient, username: str, role: str, unit: str = "hq", subject: str | None = None,
                 password: str = PASSWORD) -> int:
    r = c.post("/accounts", headers=admin(c), json={"username": username, "role": role, "unit_id": unit,
                                                    "subject_id": subject, "password": password})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def login(c: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    r = c.post("/auth/token", data={"grant_type": "password", "username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sign_in(c: TestClient, username: str, role: str, **kw: Any) -> tuple[int, dict[str, str]]:
    account_id = make_account(c, username, role, **kw)
    return account_id, bearer(login(c, username)["access_token"])
