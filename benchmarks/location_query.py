"""Location-query benchmark: "who was within R metres of P" on a seeded positions table.

    python -m benchmarks.location_query --quick --json PATH   # 200k fixes
    python -m benchmarks.location_query --json PATH           # 1M fixes

It starts its own embedded PostgreSQL, loads fixes of 500 devices every 5 minutes (or
faster, to reach the size) over 7 days, scattered within 20 km of Tashkent, with COPY,
then times the prefilter (``telemetry.store.location_queries.fixes_in_box``) and the
exact test (``telemetry.location_query.answer``) for R = 150 m and 2 km over 1 hour,
1 day and 7 days. The peer in the same run: a count of every fix in the time range (the
cost of scanning the range without the box), so the ratio says what the box saves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from nazorat.services import EmbeddedPostgres
from telemetry.location_query import Circle, answer
from telemetry.reach import search_box
from telemetry.store import location_queries
from telemetry.store import migrate as db

P_LAT, P_LON = 41.3111, 69.2797
T0 = datetime(2026, 11, 1, tzinfo=UTC)
N_DEVICES = 500


def _load(url: str, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    step = max(1, int(7 * 86400 * N_DEVICES / n))
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO devices (id) VALUES (%s)", [(f"b{d:03d}",) for d in range(N_DEVICES)])
        with conn.cursor() as cur, cur.copy(
                "COPY positions (device_id, device_time, lat, lon, accuracy_m, source) FROM STDIN") as copy:
            written = 0
            t = 0
            while written < n:
                for d in range(N_DEVICES):
                    if written == n:
                        break
                    copy.write_row((f"b{d:03d}", T0 + timedelta(seconds=t + d % step), P_LAT + rng.uniform(-0.18, 0.18),
                                    P_LON + rng.uniform(-0.24, 0.24), rng.choice((5.0, 10.0, 30.0, 800.0)), "gps"))
                    written += 1
                t += step
        conn.execute("ANALYZE positions")


async def _measure(url: str, radius_m: float, span: timedelta) -> dict[str, Any]:
    since, until = T0 + timedelta(days=3), T0 + timedelta(days=3) + span
    async with await psycopg.AsyncConnection.connect(url) as conn:
        box = search_box(P_LAT, P_LON, radius_m + 1000)
        t0 = time.perf_counter()
        rows = await location_queries.fixes_in_box(conn, box, since=since, until=until, max_accuracy_m=1000,
                                                   include_victims=True, include_flagged=False, scope=None,
                                                   limit=100_001)
        t1 = time.perf_counter()
        subjects = answer(rows, Circle(P_LAT, P_LON, radius_m), fixes_limit=100)
        t2 = time.perf_counter()
        cur = await conn.execute("SELECT count(*) FROM positions WHERE device_time >= %s AND device_time < %s",
                                 (since, until))
        (in_range,) = await cur.fetchone() or (0,)
        t3 = time.perf_counter()
    return {"radius_m": radius_m, "span_h": span.total_seconds() / 3600, "candidates": len(rows),
            "fixes_in_range": in_range, "devices_found": sum(len(s["devices"]) for s in subjects),
            "prefilter_ms": round((t1 - t0) * 1000, 2), "exact_ms": round((t2 - t1) * 1000, 2),
            "peer_range_count_ms": round((t3 - t2) * 1000, 2)}


def run(n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-bench-"))
    pg = EmbeddedPostgres(tmp / "pg")
    pg.start()
    try:
        url = pg.url()
        db.upgrade(url)
        t = time.perf_counter()
        _load(url, n)
        load_s = time.perf_counter() - t
        cases = [asyncio.run(_measure(url, r, span)) for r in (150.0, 2000.0)
                 for span in (timedelta(hours=1), timedelta(days=1), timedelta(days=7))]
    finally:
        pg.destroy()
    return {"benchmark": "location_query", "fixes": n, "devices": N_DEVICES, "load_s": round(load_s, 1),
            "cases": cases, "python": platform.python_version(), "machine": platform.machine(),
            "note": "provisional: measured on a shared, loaded machine"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="200k fixes instead of 1M")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    result = run(200_000 if args.quick else 1_000_000)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
