"""How long the engine takes to load and compile its registry snapshot, by fleet size.

    python -m benchmarks.snapshot [--devices 10000,100000] [--json PATH]

The pipeline rebuilds its ``RegistrySnapshot`` (every subject's rules, every zone
compiled for the numba evaluator, devices, terms, links) at the first batch after any
registry change: at national scale that is a pause in ingest for the whole fleet. This
measures it on the background fleet's registry (``simulator.background``: per device a
subject with its term, an exclusion circle and, for house arrest, a home square),
written straight into a fresh database, then read and compiled the way the pipeline does
(``store.registry_rows`` then ``build_snapshot``), best of three. No peer: this is a
cost of our own, measured to be watched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from benchmarks.stored import fresh_database
from nazorat.services import EmbeddedPostgres
from simulator.background import BackgroundConfig, registry
from telemetry.snapshot import build_snapshot
from telemetry.store import ingest as store


def _fill(url: str, n: int) -> int:
    cfg = BackgroundConfig(devices=n, seed=3, prefix="snap")
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        subjects, terms, zone_rows, devices = [], [], [], []
        for subject, zs, device in registry(cfg):
            subjects.append((subject["id"], subject["full_name"], subject["order_type"]))
            terms.append((subject["id"], subject["order_type"]))
            for z in zs:
                zone_rows.append((z["id"], z["name"], z["kind"], z["subject_id"], Jsonb(z["geometry"]),
                                  z.get("radius_m"), z.get("buffer_m", 0.0)))
            devices.append((device["id"], device["subject_id"]))
        cur.executemany("INSERT INTO subjects (id, full_name, order_type) VALUES (%s, %s, %s)", subjects)
        cur.executemany("INSERT INTO supervision_terms (subject_id, order_type, status, created_by)"
                        " VALUES (%s, %s, 'active', 'bench')", terms)
        cur.executemany("INSERT INTO zones (id, name, kind, subject_id, geometry, radius_m, buffer_m)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s)", zone_rows)
        cur.executemany("INSERT INTO devices (id, subject_id) VALUES (%s, %s)", devices)
    return len(zone_rows)


def measure(url: str, n: int) -> dict[str, Any]:
    zones = _fill(url, n)
    read, build = [], []
    for _ in range(3):
        with psycopg.connect(url) as conn:
            t0 = time.perf_counter()
            rows = store.registry_rows(conn)
            t1 = time.perf_counter()
            snap = build_snapshot(rows)
            t2 = time.perf_counter()
        read.append(t1 - t0)
        build.append(t2 - t1)
        assert not snap.compile_errors, list(snap.compile_errors.items())[:3]
    return {"devices": n, "subjects": n, "zones": zones, "read_s": round(min(read), 3),
            "build_s": round(min(build), 3), "total_s": round(min(read) + min(build), 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="10000,100000", help="comma-separated fleet sizes")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="nazorat-bench-snapshot-"))
    pg = EmbeddedPostgres(tmp / "pg")
    pg.start()
    try:
        runs = []
        for i, n in enumerate(int(x) for x in a.devices.split(",")):
            runs.append(measure(fresh_database(pg, f"snap{i}"), n))
            print(json.dumps(runs[-1]), flush=True)
        out = {"runs": runs, "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                        f"Python {platform.python_version()}"}
    finally:
        pg.destroy()
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
