"""The evidence behind alerts and violations, kept apart from the bulk tables.

Migration 0005: a trigger on ``alerts`` and ``violations`` copies the fix
(``evidence_positions``) or status report (``evidence_status``) they refer to, in the same
transaction, and foreign keys point at the copies. Writers do nothing special: they insert
the alert or violation as before, after the fix or report it names is stored. Retention
and compression treat ``positions`` and ``device_status`` freely; evidence rows are never
deleted.
"""

from __future__ import annotations

from typing import Any

import psycopg

_GAPS = """
SELECT (SELECT count(*) FROM alerts a
        WHERE (a.fix_time IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM evidence_positions e WHERE e.device_id = a.device_id AND e.device_time = a.fix_time))
           OR (a.status_time IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM evidence_status e WHERE e.device_id = a.device_id AND e.device_time = a.status_time)))
     + (SELECT count(*) FROM violations v
        WHERE NOT EXISTS (
                   SELECT 1 FROM evidence_positions e WHERE e.device_id = v.device_id
                   AND e.device_time = v.open_fix_time)
           OR (v.close_fix_time IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM evidence_positions e WHERE e.device_id = v.device_id
                   AND e.device_time = v.close_fix_time)))
"""


def evidence_gaps(conn: psycopg.Connection[Any]) -> int:
    """How many alerts and violations lack a stored fix or status report behind them.

    Zero whenever the evidence foreign keys are valid; a database upgraded after its
    evidence was already lost keeps those keys NOT VALID and is counted here.
    """
    row = conn.execute(_GAPS).fetchone()
    assert row is not None
    return int(row[0])


__all__ = ["evidence_gaps"]
