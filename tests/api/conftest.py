"""An in-process API (``api.create_app`` under uvicorn in a thread) on a fresh database:
quicker than the whole stack, and a test can stand in another principal (a non-admin
role) through FastAPI's dependency overrides."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api import create_app
from api.deps import Principal, get_principal
from nazorat.services import free_port
from telemetry.store.scope import ALL


@dataclass
class LiveApi:
    url: str
    token: str
    app: FastAPI
    database_url: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    @contextmanager
    def acting_as(self, role: str, name: str = "officer-1") -> Iterator[Principal]:
        """Requests are made by a principal of ``role`` (the token is still required), with
        every subject in its scope: these tests are about what a role may see, not a
        caseload (tests/api/test_scoping.py is)."""
        principal = Principal(name=name, role=role, remote_addr="127.0.0.1", explicit_scope=ALL)

        async def _principal() -> Principal:
            return principal

        self.app.dependency_overrides[get_principal] = _principal
        try:
            yield principal
        finally:
            self.app.dependency_overrides.pop(get_principal, None)


@pytest.fixture
def live_api(database_url: str) -> Iterator[LiveApi]:
    token = uuid.uuid4().hex
    app = create_app(database_url=database_url, api_token=token, pool_max=4)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process API did not start")
        time.sleep(0.02)
    try:
        yield LiveApi(f"http://127.0.0.1:{port}", token, app, database_url)
    finally:
        server.should_exit = True
        thread.join(15)
