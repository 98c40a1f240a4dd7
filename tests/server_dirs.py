"""Folders for servers the tests start that run as another OS user (the embedded
PostgreSQL drops root to ``nazorat-pg``).

They must not live under pytest's temporary root: every new pytest session resets
``/tmp/pytest-of-<user>`` to mode 0700 (pytest secures it at start-up), which cuts a
running server off from its own data folder when two sessions overlap (seen as
"could not access directory ...: Permission denied" and servers dying mid-test)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def server_dir(name: str) -> Path:
    """A fresh folder for one server, removed when the test process exits."""
    path = Path(tempfile.mkdtemp(prefix=f"nazorat-test-{name}-"))
    atexit.register(shutil.rmtree, path, True)
    return path


__all__ = ["server_dir"]
