"""The ceilings a benchmark's rates are held against, measured in the same run.

This machine's speed drifts up to 2x within an hour, so a rate alone cannot tell code
from machine; its ratio to these can:

- ``drain``: the broker's own delivery rate of the same traffic to a C client:
  ``queue(prefix)`` publishes the run's payloads under another topic tree while a
  persistent ``mosquitto_sub`` session is offline, then that session drains them (QoS 1).
- ``copy``: a bare binary COPY of the same rows into a copy of the ``positions`` table
  (same keys and indexes), in one transaction.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from nazorat.services import MosquittoBroker

COPY_COLUMNS = ("device_id, device_time, subject_id, lat, lon, accuracy_m, speed_mps, heading_deg, source, seq,"
                " late, flags")
COPY_TYPES = ["text", "timestamptz", "text", "float8", "float8", "float8", "float8", "float8", "text", "int8", "bool",
              "text[]"]


def drain(broker: MosquittoBroker, queue: Callable[[str], int], client_id: str = "bench-ceiling") -> dict[str, Any]:
    """``queue(prefix)`` publishes the traffic under ``prefix`` and returns how many
    messages the broker acknowledged; the drain of those by ``mosquitto_sub`` is timed."""
    sub = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-c", "-i", client_id, "-q", "1",
           "-t", "ceiling/#"]
    subprocess.run([*sub, "-W", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    t0 = time.time()
    acked = queue("ceiling/")
    publish_s = time.time() - t0
    t0 = time.time()
    done = subprocess.run([*sub, "-C", str(acked), "-W", "300"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False)
    drain_s = time.time() - t0
    return {"broker_ceiling_acked": acked, "broker_ceiling_complete": done.returncode == 0,
            "broker_drain_messages_per_s": round(acked / drain_s),
            "unpaced_publish_messages_per_s": round(acked / publish_s)}


def copy(url: str, rows: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """Rows in ``COPY_COLUMNS`` order, copied in binary into a table like ``positions``."""
    rows = list(rows)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS ceiling_positions")
        conn.execute("CREATE TABLE ceiling_positions (LIKE positions INCLUDING DEFAULTS INCLUDING INDEXES)")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY ceiling_positions ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(COPY_TYPES)
            for r in rows:
                cp.write_row(r)
        conn.commit()
        s = time.perf_counter() - t0
        conn.execute("DROP TABLE ceiling_positions")
    return {"copy_rows": len(rows), "copy_rows_per_s": round(len(rows) / s)}


__all__ = ["copy", "drain"]
