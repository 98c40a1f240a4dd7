"""Alert-burden statistics (async, for the API): per officer, unit, alert type, zone or
device profile, the time to acknowledge and to resolve (p50/p90, seconds), the outcomes
and the false-alarm rate. No coordinates: auditors may read them.

An alert whose contest was upheld (``appeals``, issue 12) was a false alert: it counts in
``false_alarm`` (and the rate) and in ``contested_upheld``, not in ``excused``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from telemetry.store.scope import Scope, subject_filter

Row = dict[str, Any]
#: the alert was excused by an upheld contest
_UPHELD = ("(a.resolution = 'excused' AND EXISTS (SELECT 1 FROM appeals ap WHERE ap.alert_id = a.id"
           " AND ap.track = 'contest' AND ap.state = 'upheld'))")
#: what the statistics can be grouped by (a closed set: each is an SQL expression)
GROUPS = {
    "officer": "coalesce(acc.username, '(no officer)')",  # the subject's caseload officer
    "unit": "coalesce(s.unit_id, '(no unit)')",
    "kind": "a.kind",
    "zone": "coalesce(a.zone_id, '(no zone)')",
    "device_profile": "coalesce(d.profile, '(unknown)')",
}


async def alert_statistics(conn: psycopg.AsyncConnection[Any], *, group_by: str, since: datetime | None,
                           until: datetime | None, scope: Scope | None) -> list[Row]:
    key = GROUPS[group_by]
    cond, params = subject_filter(scope, "a.subject_id")
    ack = "extract(epoch FROM a.acknowledged_at - a.created_at)"
    res = "extract(epoch FROM a.resolved_at - a.created_at)"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {key} AS key, count(*) AS total,"
            " count(a.acknowledged_at) AS acknowledged, count(a.resolved_at) AS resolved,"
            f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {ack}) AS ack_p50_s,"
            f" percentile_cont(0.9) WITHIN GROUP (ORDER BY {ack}) AS ack_p90_s,"
            f" percentile_cont(0.5) WITHIN GROUP (ORDER BY {res}) AS resolve_p50_s,"
            f" percentile_cont(0.9) WITHIN GROUP (ORDER BY {res}) AS resolve_p90_s,"
            " count(*) FILTER (WHERE a.resolution = 'confirmed_violation') AS confirmed_violation,"
            f" count(*) FILTER (WHERE a.resolution = 'false_alarm' OR {_UPHELD}) AS false_alarm,"
            " count(*) FILTER (WHERE a.resolution = 'technical') AS technical,"
            f" count(*) FILTER (WHERE a.resolution = 'excused' AND NOT {_UPHELD}) AS excused,"
            f" count(*) FILTER (WHERE {_UPHELD}) AS contested_upheld,"
            " count(*) FILTER (WHERE a.escalation_level > 0) AS escalated"
            " FROM alerts a LEFT JOIN subjects s ON s.id = a.subject_id"
            " LEFT JOIN accounts acc ON acc.id = s.officer_id LEFT JOIN devices d ON d.id = a.device_id"
            " WHERE (%s::timestamptz IS NULL OR a.created_at >= %s) AND (%s::timestamptz IS NULL OR a.created_at < %s)"
            f" AND {cond} GROUP BY 1 ORDER BY 1",
            (since, since, until, until, *params))
        rows = await cur.fetchall()
    for r in rows:
        r["false_alarm_rate"] = r["false_alarm"] / r["resolved"] if r["resolved"] else None
    return rows


__all__ = ["GROUPS", "alert_statistics"]
