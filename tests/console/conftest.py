"""The browser tier: Debian's chromium driven by Playwright (no browser download)
against the real stack (``nazorat serve``: ingest + API, the suite's PostgreSQL and
Mosquitto). One browser and one stack for the module; each test has its own browser
context (its own session storage). Skipped, with the reason, without chromium,
Playwright or the console's Leaflet (``make web``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from api.console import WEB_DIR
from tests.conftest import ROOT, Stack, _admin, _db_url, start_stack, stop_stack

CHROMIUM = os.environ.get("NAZORAT_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("NAZORAT_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"


def _requirements() -> str | None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        return f"no chromium at {CHROMIUM} (make test installs Debian's chromium when run as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[test]')"
    if not (WEB_DIR / "node_modules" / "leaflet" / "dist" / "leaflet-src.esm.js").exists():
        return "the console's Leaflet is not installed: run `make web` (needs npm)"
    return None


class CutProxy:
    """A TCP relay in front of the API that a test can cut, as a lost network would:
    ``cut()`` closes every open connection and refuses new ones until ``restore()``."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.down = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True, name="cut-proxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self._lock:
                    self._open.discard(s)
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def cut(self) -> None:
        self.down = True
        self.cuts += 1
        with self._lock:
            sockets = list(self._open)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self._server.close()
        self.cut()


@pytest.fixture(scope="module")
def console_stack(pg_admin_url: str, template_db: str, mqtt_url: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    name = f"nz_console_{uuid.uuid4().hex[:10]}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    log_path = tmp_path_factory.mktemp("console-stack") / "stack.log"
    stack = start_stack(_db_url(pg_admin_url, name), mqtt_url, log_path)
    try:
        yield stack
    finally:
        stop_stack(stack, log_path)
        _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def proxy(console_stack: Stack) -> Iterator[CutProxy]:
    p = CutProxy(console_stack.api_url)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def browser(console_stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nconsole test artifacts (screenshots): {ARTIFACTS}")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                               headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


class Requests:
    """Every request a page made (asserted to stay on 127.0.0.1)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def foreign(self) -> list[str]:
        return [u for u in self.urls if not (u.startswith(("data:", "blob:", "about:"))
                                             or urlsplit(u).hostname == "127.0.0.1")]


@pytest.fixture
def page_factory(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []
    seen = Requests()

    def make(**options: Any) -> Any:
        ctx = browser.new_context(locale="en-GB", **options)
        ctx.on("request", lambda r: seen.urls.append(r.url))
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.js_errors = errors
        return page

    make.requests = seen  # type: ignore[attr-defined]
    yield make
    for ctx in contexts:
        ctx.close()
    assert seen.urls, "the pages made no request at all"
    assert seen.foreign() == [], f"requests left 127.0.0.1: {seen.foreign()}"
