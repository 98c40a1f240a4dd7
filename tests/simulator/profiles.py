"""The device profiles a compressed replay needs, written as an operator would (there
is no API route for profiles): rows in ``device_profiles``, then ``devices.profile``."""

from __future__ import annotations

import psycopg

from simulator.scenarios import Plan
from telemetry.store.sql import REGISTRY_CHANNEL


def apply_profiles(database_url: str, plan: Plan) -> None:
    needed = plan.profiles_needed()
    if not needed:
        return
    with psycopg.connect(database_url) as conn:
        for name, values in needed.items():
            cols = ", ".join(values)
            conn.execute(f"INSERT INTO device_profiles (name, {cols}) VALUES (%s, {', '.join(['%s'] * len(values))})"
                         " ON CONFLICT (name) DO NOTHING", (name, *values.values()))
        for name in needed:
            conn.execute("UPDATE devices SET profile = %s WHERE id = ANY(%s)",
                         (name, [d for d, p in plan.profiles.items() if p == name]))
        conn.execute(f"NOTIFY {REGISTRY_CHANNEL}")


__all__ = ["apply_profiles"]
