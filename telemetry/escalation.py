"""Escalation of unacknowledged alerts: a periodic job, its clock injectable.

An open alert not acknowledged within its severity's first threshold
(``alert_escalation.first_s``) is escalated to the supervisor of its subject's unit
(level 1), and again at the second threshold (level 2): each is a state change on the
alert, a row of alert history (so an event on the live feed) and an audit record.
Several API processes may run the job at once: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
from prometheus_client import Counter
from psycopg_pool import AsyncConnectionPool

from telemetry.store import alert_lifecycle, audit

log = logging.getLogger(__name__)
ESCALATIONS = Counter("nazorat_alert_escalations_total", "Alerts escalated to a supervisor", ["severity", "level"])
ESCALATION_FAILURES = Counter("nazorat_alert_escalation_failures_total", "Escalation checks that failed")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def escalate_once(conn: psycopg.AsyncConnection[Any], now: datetime) -> list[dict[str, Any]]:
    """Escalate what is due at ``now``, audit it, commit; returns the escalated alerts."""
    rows = await alert_lifecycle.escalate_due(conn, now)
    for row in rows:
        await audit.append(conn, actor="system", role="system", action="alert.escalate", subject_id=row["subject_id"],
                           target=str(row["id"]), scope="all",
                           details={"level": row["escalation_level"], "severity": row["severity"],
                                    "supervisor_id": row["supervisor_id"], "unit_id": row["unit_id"]})
        ESCALATIONS.labels(row["severity"], str(row["escalation_level"])).inc()
    await conn.commit()
    return rows


async def run_escalation(pool: AsyncConnectionPool, *, interval_s: float, clock: Clock = utc_now,
                         stop: asyncio.Event | None = None) -> None:
    """Check every ``interval_s`` until cancelled (or ``stop``); a failed check is logged
    with its traceback and counted, and the next one runs."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            async with pool.connection() as conn:
                done = await escalate_once(conn, clock())
            if done:
                log.info("escalated %d alert(s)", len(done))
        except (psycopg.Error, OSError):
            ESCALATION_FAILURES.inc()
            log.exception("escalation check failed; retrying in %.0f s", interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


__all__ = ["ESCALATIONS", "Clock", "escalate_once", "run_escalation", "utc_now"]
