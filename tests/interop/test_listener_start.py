"""A listener that cannot bind fails its task (the supervisor restarts it with backoff)
rather than ending the engine: uvicorn's own reaction is ``sys.exit``."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ingest.http import HttpIngest
from telemetry.pipeline import Pipeline


def test_a_taken_port_is_a_task_failure_not_an_exit() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    listener = HttpIngest(pipeline=Pipeline("postgresql://unused"), database_url="postgresql://unused")
    try:
        with pytest.raises(RuntimeError, match="could not serve"):
            asyncio.run(asyncio.wait_for(listener.serve("127.0.0.1", port, asyncio.Event()), 30))
    finally:
        taken.close()
