"""One small database connection, opened when first needed and dropped on an error, for
the ingest side's lookups beside the pipeline's own (the HTTP listener's secrets and
bindings, the webhook outbox). Used from worker threads, one call at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg

from telemetry.errors import StorageError


class LazyConnection:
    def __init__(self, database_url: str, what: str) -> None:
        self._url = database_url
        self._what = what  # names the user in the StorageError
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def run(self, work: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """``work(conn)`` on the connection (autocommit); a database error closes it, so
        the next call reconnects, and is raised as ``StorageError``."""
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._url, connect_timeout=5, autocommit=True)
                return work(self._conn)
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise StorageError(f"{self._what}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["LazyConnection"]
