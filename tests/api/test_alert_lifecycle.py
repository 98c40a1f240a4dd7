"""The alert lifecycle: acknowledge (note), resolve (outcome and required note), assign,
reopen (reason), each a row of history and an audit record; severity per alert type;
escalation to the unit's supervisor past per-severity times, with an injected clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from telemetry.escalation import escalate_once
from tests.api.officers import admin, app_client, sign_in

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _world(c: httpx.Client, database_url: str, kinds: tuple[str, ...] = ("victim_proximity",)) -> dict[str, object]:
    h = admin(c)
    assert c.post("/units", headers=h, json={"id": "u1", "name": "u1"}).status_code == 201
    assert c.post("/subjects", headers=h, json={"id": "A", "full_name": "a"}).status_code == 201
    assert c.post("/devices", headers=h, json={"id": "dA", "subject_id": "A"}).status_code == 201
    ring = [[69.2, 41.3], [69.21, 41.3], [69.21, 41.31], [69.2, 41.31], [69.2, 41.3]]
    assert c.post("/zones", headers=h, json={"id": "zA", "name": "z", "kind": "exclusion", "subject_id": "A",
                                             "geometry": {"type": "Polygon", "coordinates": [ring]}}).status_code == 201
    sup_id, sup = sign_in(c, "sup", "supervisor", unit="u1")
    off_id, off = sign_in(c, "off", "officer", unit="u1")
    other_id, _ = sign_in(c, "other", "officer", unit="u1")
    assert c.put("/subjects/A/assignment", headers=h, json={"officer_id": off_id}).status_code == 200
    alerts = []
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                     " VALUES ('dA', %s, 'A', 41.3, 69.2, 5, 'gps')", (T0,))
        for kind in kinds:
            (aid,) = conn.execute("INSERT INTO alerts (kind, severity, subject_id, device_id, zone_id, fix_time,"
                                  " created_at) VALUES (%s, 'high', 'A', 'dA', 'zA', %s, %s) RETURNING id",
                                  (kind, T0, T0)).fetchone()
            alerts.append(aid)
    return {"sup": sup, "off": off, "sup_id": sup_id, "off_id": off_id, "other_id": other_id, "alerts": alerts}


def test_transitions_history_and_audit(database_url: str) -> None:
    with app_client(database_url) as c:
        w = _world(c, database_url)
        (aid,) = w["alerts"]  # type: ignore[misc]
        off, sup = w["off"], w["sup"]
        alert = c.get(f"/alerts/{aid}", headers=off).json()  # type: ignore[arg-type]
        assert alert["severity"] == "critical" and alert["status"] == "open" and len(alert["zone_version"]) == 64

        def post(path: str, body: dict[str, object] | None, who: object = off) -> httpx.Response:
            return c.post(f"/alerts/{aid}/{path}", headers=who, json=body)  # type: ignore[arg-type]

        r = post("acknowledge", {"note": "calling the subject"})
        assert r.status_code == 200 and r.json()["acknowledged_by"] == "off"
        assert r.json()["acknowledged_note"] == "calling the subject"
        assert post("acknowledge", None).status_code == 409
        assert post("resolve", {"outcome": "false_alarm"}).status_code == 422
        assert post("resolve", {"outcome": "false_alarm", "note": ""}).status_code == 422
        assert post("resolve", {"outcome": "confirmed", "note": "x"}).status_code == 422
        r = post("resolve", {"outcome": "technical", "note": "GPS multipath near the tower"})
        assert r.status_code == 200 and (r.json()["status"], r.json()["resolution"]) == ("resolved", "technical")
        assert post("resolve", {"outcome": "technical", "note": "again"}).status_code == 409
        assert post("assign", {"officer_id": w["off_id"]}).status_code == 409  # resolved
        assert post("reopen", {"reason": ""}).status_code == 422
        r = post("reopen", {"reason": "the victim reported the subject nearby"})
        assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["resolution"] is None
        assert post("assign", {"officer_id": w["other_id"]}).status_code == 403  # an officer takes it for themself
        assert post("assign", {"officer_id": w["off_id"]}).status_code == 200
        r = post("assign", {"officer_id": w["other_id"]}, sup)
        assert r.status_code == 200 and r.json()["assigned_to"] == w["other_id"]
        assert post("assign", {"officer_id": 999_999}, sup).status_code == 404
        r = post("resolve", {"outcome": "confirmed_violation", "note": "confirmed by a patrol"}, sup)
        assert r.status_code == 200
        history = c.get(f"/alerts/{aid}/history", headers=off).json()  # type: ignore[arg-type]
        assert [(h["action"], h["from_status"], h["to_status"], h["actor"]) for h in history] == [
            ("raised", None, "open", "system"),
            ("acknowledged", "open", "acknowledged", "off"),
            ("resolved", "acknowledged", "resolved", "off"),
            ("reopened", "resolved", "open", "off"),
            ("assigned", "open", "open", "off"),
            ("assigned", "open", "open", "sup"),
            ("resolved", "open", "resolved", "sup"),
        ]
        assert history[2]["outcome"] == "technical" and history[3]["note"].startswith("the victim")
        assert c.get("/alerts/999999/history", headers=off).status_code == 404  # type: ignore[arg-type]
    with psycopg.connect(database_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE target = %s AND action LIKE 'alert.%%'"
                                              " AND action <> 'alert.read'"
                                              " ORDER BY id", (str(aid),))]
    assert actions == ["alert.acknowledge", "alert.resolve", "alert.reopen", "alert.assign", "alert.assign",
                       "alert.resolve"]


def test_severity_per_alert_type(database_url: str) -> None:
    with app_client(database_url) as c:
        w = _world(c, database_url, ("strap_cut", "victim_proximity", "battery_low", "something_new"))
        got = {a["kind"]: a["severity"] for a in c.get("/alerts", headers=w["off"]).json()}  # type: ignore[arg-type]
    assert got == {"strap_cut": "critical", "victim_proximity": "critical", "battery_low": "low",
                   "something_new": "high"}


def test_escalation_with_an_injected_clock(database_url: str) -> None:
    with app_client(database_url) as c:
        w = _world(c, database_url, ("victim_proximity", "battery_low", "strap_cut"))
        critical, low, acked = w["alerts"]  # type: ignore[misc]
        assert c.post(f"/alerts/{acked}/acknowledge", headers=w["off"]).status_code == 200  # type: ignore[arg-type]

    async def at(seconds: int) -> list[tuple[int, int]]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return [(r["id"], r["escalation_level"]) for r in await escalate_once(conn, T0 + timedelta(seconds=seconds))]

    # critical: 300 s, then 900 s; low: 4 h, then 24 h; an acknowledged alert never escalates
    assert asyncio.run(at(299)) == []
    assert asyncio.run(at(300)) == [(critical, 1)]
    assert asyncio.run(at(300)) == []
    assert asyncio.run(at(899)) == []
    assert asyncio.run(at(900)) == [(critical, 2)]
    assert asyncio.run(at(4 * 3600)) == [(low, 1)]
    assert asyncio.run(at(10 * 86400)) == [(low, 2)]
    assert asyncio.run(at(100 * 86400)) == []
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT escalation_level, escalated_to, escalated_at FROM alerts WHERE id = %s",
                           (critical,)).fetchone()
        events = conn.execute("SELECT alert_id, level, assigned_to FROM alert_history WHERE action = 'escalated'"
                              " ORDER BY id").fetchall()
        audited = conn.execute("SELECT target, details->>'level' FROM audit_log WHERE action = 'alert.escalate'"
                               " ORDER BY id").fetchall()
    assert row == (2, w["sup_id"], T0 + timedelta(seconds=900))
    assert events == [(critical, 1, w["sup_id"]), (critical, 2, w["sup_id"]), (low, 1, w["sup_id"]),
                      (low, 2, w["sup_id"])]
    assert audited == [(str(critical), "1"), (str(critical), "2"), (str(low), "1"), (str(low), "2")]


def test_the_periodic_job_escalates(database_url: str) -> None:
    """The app runs the check itself; its clock, injected, is a day ahead."""
    future = T0 + timedelta(days=1)
    with app_client(database_url, {"escalation_interval_s": 0.05, "clock": lambda: future}) as c:
        w = _world(c, database_url)
        (aid,) = w["alerts"]  # type: ignore[misc]
        deadline = time.monotonic() + 30
        while c.get(f"/alerts/{aid}", headers=w["sup"]).json()["escalation_level"] < 2:  # type: ignore[arg-type]
            assert time.monotonic() < deadline, "the escalation job did not run"
            time.sleep(0.05)


def test_alert_statistics(database_url: str) -> None:
    with app_client(database_url) as c:
        w = _world(c, database_url, ("victim_proximity", "victim_proximity", "battery_low", "strap_cut"))
        a1, a2, a3, _ = w["alerts"]  # type: ignore[misc]
        for aid, outcome in ((a1, "false_alarm"), (a2, "confirmed_violation"), (a3, "false_alarm")):
            r = c.post(f"/alerts/{aid}/resolve", headers=w["off"], json={"outcome": outcome, "note": "n"})  # type: ignore[arg-type]
            assert r.status_code == 200
        with psycopg.connect(database_url) as conn:  # the times, set for the test
            for aid, ack_s, res_s in ((a1, 60, 120), (a2, 180, 600), (a3, 30, 30)):
                conn.execute("UPDATE alerts SET acknowledged_at = created_at + %s * interval '1 s',"
                             " resolved_at = created_at + %s * interval '1 s' WHERE id = %s", (ack_s, res_s, aid))
        _, aud = sign_in(c, "aud", "auditor")
        by_kind = {r["key"]: r for r in c.get("/statistics/alerts", headers=aud, params={"group_by": "kind"}).json()}
        vp = by_kind["victim_proximity"]
        assert (vp["total"], vp["resolved"], vp["false_alarm"], vp["confirmed_violation"]) == (2, 2, 1, 1)
        assert vp["false_alarm_rate"] == 0.5 and vp["ack_p50_s"] == 120 and vp["resolve_p90_s"] == 552
        assert by_kind["strap_cut"]["resolved"] == 0 and by_kind["strap_cut"]["false_alarm_rate"] is None
        by_officer = c.get("/statistics/alerts", headers=w["sup"], params={"group_by": "officer"}).json()  # type: ignore[arg-type]
        assert [(r["key"], r["total"]) for r in by_officer] == [("off", 4)]
        _, other = sign_in(c, "other2", "officer", unit="u1")
        assert c.get("/statistics/alerts", headers=other).json() == []  # nothing on its caseload
        metrics = c.get("/metrics", headers=admin(c)).text
        assert 'nazorat_alert_outcomes_total{outcome="false_alarm",severity="critical"}' in metrics
