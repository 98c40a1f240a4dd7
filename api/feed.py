"""The live feed's fan-out: one LISTEN connection per API process.

Every alert event (a row of ``alert_history``: raised, acknowledged, resolved,
escalated ...) notifies ``nazorat_alert_events`` with its id when it commits
(migration 0012), and ids are committed in order (0013). The hub keeps the highest id
it has heard of and wakes the streams of this process, which read the rows themselves
(in their caller's scope) from the table; so any API worker serves any officer, and a
reconnecting client replays from the database. Streams also re-read every
``poll_s`` so that a notification lost while the listening connection reconnects only
delays an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import psycopg
from prometheus_client import Counter

log = logging.getLogger(__name__)
CHANNEL = "nazorat_alert_events"
LISTEN_FAILURES = Counter("nazorat_feed_listen_failures_total", "Live-feed LISTEN connections lost")


class FeedHub:
    """Owns the process's listening connection (an async context manager)."""

    def __init__(self, database_url: str, *, poll_s: float = 15.0) -> None:
        self._url = database_url
        self.poll_s = poll_s
        self.latest = 0  # the highest event id heard of
        self.generation = 0  # bumped by every notification (and by each reconnect)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def __aenter__(self) -> FeedHub:
        self._task = asyncio.create_task(self._listen(), name="feed-listen")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _wake(self, event_id: int | None) -> None:
        if event_id is not None and event_id > self.latest:
            self.latest = event_id
        self.generation += 1
        async with self._changed:
            self._changed.notify_all()

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.5
                    await self._wake(None)  # streams re-read: something may have passed while away
                    async for note in conn.notifies():
                        try:
                            await self._wake(int(note.payload))
                        except ValueError:
                            log.warning("ignored a %s notification that is not an event id", CHANNEL)
            except (psycopg.Error, OSError):
                LISTEN_FAILURES.inc()
                log.exception("live feed: the listening connection failed; reconnecting in %.1f s", delay)
            self.listening.clear()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 30.0)

    async def wait(self, generation: int) -> None:
        """Until a notification after ``generation`` (read before the stream's last
        query), or ``poll_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_s), self._changed:
                await self._changed.wait_for(lambda: self.generation > generation)


__all__ = ["CHANNEL", "FeedHub"]
