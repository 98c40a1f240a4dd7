"""The live progress display of ``nazorat simulate`` (rich): messages sent, the achieved
rate over the last second, how far behind schedule the publisher runs, and the engine's
backlog (``nazorat_ingest_backlog`` from the API's ``/metrics``, when the token may read
it and the API runs in the ingest process); then a summary table at the end."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections import deque
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


def read_backlog(api_url: str, token: str, timeout_s: float = 2.0) -> int | None:
    """The engine's backlog from ``/metrics``; None when it cannot be read there."""
    req = urllib.request.Request(api_url.rstrip("/") + "/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            text = resp.read().decode()
    except (OSError, ValueError):
        return None
    for line in text.splitlines():
        if line.startswith("nazorat_ingest_backlog "):
            return int(float(line.split()[1]))
    return None


class LiveProgress:
    """A ``Progress`` callback (messages sent, planned, lag) that renders a live table."""

    def __init__(self, api_url: str | None = None, token: str = "", console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._api_url, self._token = api_url, token
        self._window: deque[tuple[float, int]] = deque(maxlen=16)
        self.sent = self.planned = 0
        self.lag_s = 0.0
        self.backlog: int | None = None
        self.peak_backlog = 0
        self.peak_rate = 0.0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._live = Live(self._table(), console=self._console, refresh_per_second=2, transient=False)
        self._poller: threading.Thread | None = None

    def __enter__(self) -> LiveProgress:
        self._started = time.monotonic()
        self._live.__enter__()
        if self._api_url is not None:
            self._poller = threading.Thread(target=self._poll, daemon=True)
            self._poller.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(3)
        self._live.update(self._table())
        self._live.__exit__(et, e, tb)

    def _poll(self) -> None:
        assert self._api_url is not None
        while not self._stop.wait(1.0):
            self.backlog = read_backlog(self._api_url, self._token)
            if self.backlog is not None:
                self.peak_backlog = max(self.peak_backlog, self.backlog)
            self._live.update(self._table())

    def rate(self) -> float:
        """Messages per second over the last few reports."""
        if len(self._window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._window[0], self._window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def __call__(self, sent: int, planned: int, lag_s: float) -> None:
        self.sent, self.planned, self.lag_s = sent, planned, lag_s
        self._window.append((time.monotonic(), sent))
        self.peak_rate = max(self.peak_rate, self.rate())
        self._live.update(self._table())

    def _table(self) -> Table:
        t = Table(title="nazorat simulate", show_header=False, box=None)
        share = f" ({100 * self.sent / self.planned:.0f} %)" if self.planned else ""
        t.add_row("sent", f"{self.sent:,} of {self.planned:,} messages{share}")
        t.add_row("achieved rate", f"{self.rate():,.0f} msg/s")
        t.add_row("behind schedule", f"{self.lag_s:+.2f} s")
        t.add_row("engine backlog", "n/a" if self.backlog is None else f"{self.backlog:,} messages")
        t.add_row("elapsed", f"{time.monotonic() - self._started:.0f} s")
        return t

    def summary(self, rows: dict[str, Any]) -> None:
        """Print the end-of-run summary table (``rows``: label -> value)."""
        t = Table(title="summary", show_header=False)
        for k, v in rows.items():
            t.add_row(k, str(v))
        t.add_row("peak rate", f"{self.peak_rate:,.0f} msg/s")
        t.add_row("peak engine backlog", "n/a" if self._api_url is None else f"{self.peak_backlog:,} messages")
        self._console.print(t)


__all__ = ["LiveProgress", "read_backlog"]
