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


class EventStream:
    """A client of ``GET /feed``: parses SSE events from a streaming response."""

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None,
                 last_event_id: int | None = None, cookies: dict[str, str] | None = None) -> None:
        h = dict(headers or {})
        if last_event_id is not None:
            h["Last-Event-ID"] = str(last_event_id)
        if cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        self._cm = client.stream("GET", "/feed", headers=h, timeout=httpx.Timeout(20.0))
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> dict[str, Any]:
        """The next event (id, event, data as JSON); keep-alive comments are skipped."""
        import json

        event: dict[str, Any] = {}
        for line in self._lines:
            if not line:
                if "data" in event:
                    return event
                event = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[key] = json.loads(value) if key == "data" else value
        raise AssertionError("the stream ended")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def insert_alert(database_url: str, subject: str, device: str, kind: str = "victim_proximity") -> int:
    """An alert as the pipeline writes one, behind a stored fix (its evidence)."""
    import uuid
    from datetime import UTC, datetime, timedelta

    import psycopg

    t = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(microseconds=uuid.uuid4().int % 10**12)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                     " VALUES (%s, %s, %s, 41.3, 69.2, 5, 'gps')", (device, t, subject))
        (aid,) = conn.execute("INSERT INTO alerts (kind, subject_id, device_id, fix_time) VALUES (%s, %s, %s, %s)"
                              " RETURNING id", (kind, subject, device, t)).fetchone()  # type: ignore[misc]
    return int(aid)
