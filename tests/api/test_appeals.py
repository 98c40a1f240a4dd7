"""Appeals through the API on a real database, with an injected clock (issue 12):
appellant accounts made by an officer or supervisor; a contest through every state to
upheld (the alert excused, the violation marked, the statistics counting a false alert)
and to rejected past its deadline (overdue on the supervisor's list); what an appellant
cannot see (404); attachments; texts in both languages; every step in the audit chain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from telemetry.store import audit
from tests.api.officers import PASSWORD, admin, app_client, bearer, login, sign_in

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)  # 11:00 in Tashkent


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


def _alert(conn: psycopg.Connection[Any], subject: str, at: datetime, *, violation: bool = True) -> int:
    device = f"d{subject}"
    conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                 " VALUES (%s, %s, %s, 41.3, 69.2, 5, 'gps')", (device, at, subject))
    vid = None
    if violation:
        (vid,) = conn.execute("INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time,"
                              " closed_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                              (subject, device, f"z{subject}", at, at, at + timedelta(minutes=5))).fetchone()  # type: ignore[misc]
    (aid,) = conn.execute("INSERT INTO alerts (kind, subject_id, device_id, zone_id, violation_id, fix_time, created_at)"
                          " VALUES ('inclusion_zone_left', %s, %s, %s, %s, %s, %s) RETURNING id",
                          (subject, device, f"z{subject}", vid, at, at)).fetchone()  # type: ignore[misc]
    return int(aid)


def world(c: httpx.Client, database_url: str) -> dict[str, Any]:
    """Units u1 and u2; subjects A (officer off, unit u1), B (off2, u1) and C (u2); each a
    device, an inclusion zone and an alert resolved by its officer as a confirmed violation."""
    h = admin(c)
    for unit in ("u1", "u2"):
        assert c.post("/units", headers=h, json={"id": unit, "name": unit}).status_code == 201
    w: dict[str, Any] = {"ids": {}, "heads": {"admin": h}, "alerts": {}}
    for name, role, unit in (("sup", "supervisor", "u1"), ("sup2", "supervisor", "u2"), ("off", "officer", "u1"),
                             ("off2", "officer", "u1"), ("rev", "officer", "u1"), ("rev2", "officer", "u2")):
        w["ids"][name], w["heads"][name] = sign_in(c, name, role, unit=unit)
    for sid, officer in (("A", "off"), ("B", "off2"), ("C", "rev2")):
        assert c.post("/subjects", headers=h, json={"id": sid, "full_name": f"person {sid}"}).status_code == 201
        assert c.post("/devices", headers=h, json={"id": f"d{sid}", "subject_id": sid}).status_code == 201
        assert c.post("/zones", headers=h, json={"id": f"z{sid}", "name": "home", "kind": "inclusion", "subject_id": sid,
                                                 "radius_m": 80, "geometry": {"type": "Point",
                                                                              "coordinates": [69.2, 41.3]}}
                      ).status_code == 201
        assert c.put(f"/subjects/{sid}/assignment", headers=h, json={"officer_id": w["ids"][officer]}).status_code == 200
    with psycopg.connect(database_url) as conn:
        for key, sid in (("A1", "A"), ("A2", "A"), ("A3", "A"), ("B1", "B")):
            w["alerts"][key] = _alert(conn, sid, T0 - timedelta(hours=len(w["alerts"]) + 1))
    for key, who in (("A1", "off"), ("A2", "off"), ("B1", "off2")):
        r = c.post(f"/alerts/{w['alerts'][key]}/resolve", headers=w["heads"][who],
                   json={"outcome": "confirmed_violation", "note": "left home after curfew"})
        assert r.status_code == 200, r.text
    return w


def appellant(c: httpx.Client, w: dict[str, Any], subject: str, username: str, by: str) -> dict[str, str]:
    r = c.post(f"/subjects/{subject}/appellants", headers=w["heads"][by],
               json={"username": username, "password": PASSWORD, "relation": "relative"})
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "appellant" and r.json()["subject_id"] == subject
    w["ids"][username] = r.json()["id"]
    head = bearer(login(c, username)["access_token"])
    w["heads"][username] = head
    return head


def test_appellant_accounts_are_made_within_the_caller_s_scope(database_url: str) -> None:
    with app_client(database_url) as c:
        w = world(c, database_url)
        body = {"username": "x1", "password": PASSWORD}
        assert c.post("/subjects/B/appellants", headers=w["heads"]["off"], json=body).status_code == 404  # not off's
        assert c.post("/subjects/A/appellants", headers=w["heads"]["sup2"], json=body).status_code == 404  # other unit
        assert c.post("/subjects/nobody/appellants", headers=w["heads"]["sup"], json=body).status_code == 404
        app = appellant(c, w, "A", "relative.a", by="off")
        appellant(c, w, "B", "lawyer.b", by="sup")
        # an appellant makes no accounts and sees no registry
        assert c.post("/subjects/A/appellants", headers=app, json={**body, "username": "x2"}).status_code == 404
        me = c.get("/auth/me", headers=app).json()
        assert me["role"] == "appellant" and me["subject_id"] == "A" and me["scope"] == "subject:A"


def test_contest_upheld_excuses_the_alert_and_counts_as_a_false_alert(database_url: str) -> None:
    clock = Clock()
    with app_client(database_url, app_options={"clock": clock}) as c:
        w = world(c, database_url)
        heads, ids, al = w["heads"], w["ids"], w["alerts"]
        app = appellant(c, w, "A", "relative.a", by="off")
        app_b = appellant(c, w, "B", "lawyer.b", by="sup")

        # what the appellant sees: only the subject's contestable alerts, no position (404 elsewhere)
        assert {a["id"] for a in c.get("/alerts", headers=app).json()} == {al["A1"], al["A2"]}
        for path in (f"/alerts/{al['B1']}", f"/alerts/{al['A3']}", "/subjects/A/positions", "/subjects/B/positions",
                     "/subjects/A", "/map/latest", f"/alerts/{al['A1']}/evidence",
                     f"/alerts/{al['A1']}/history", "/zones", "/devices", "/appeals/overdue"):
            assert c.get(path, headers=app).status_code == 404, path

        # contests: only of the subject's contestable alerts
        text = {"text": "I was at the hospital with my mother.", "language": "en"}
        for other in (al["B1"], al["A3"], 10**9):
            assert c.post("/appeals/contests", headers=app, json={"alert_id": other, **text}).status_code == 404
        assert c.post("/appeals/contests", headers=heads["off"], json={"alert_id": al["A1"], **text}).status_code == 403
        r = c.post("/appeals/contests", headers={**app, "Accept-Language": "en"}, json={"alert_id": al["A1"], **text})
        assert r.status_code == 201, r.text
        appeal = r.json()
        aid = appeal["id"]
        assert appeal["state"] == "submitted" and appeal["track"] == "contest"
        assert appeal["due_on"] == "2026-12-11" and appeal["due_at"] == "2026-12-11T19:00:00Z"
        assert appeal["status_text"] == "Your appeal has been received. It will be decided by 2026-12-11."
        assert appeal["events"][0]["action"] == "submitted" and not appeal["overdue"]
        assert appeal["violation_id"] is not None
        assert c.post("/appeals/contests", headers=app, json={"alert_id": al["A1"], **text}).status_code == 409

        # a file, by its content; the evidence bundle (with coordinates) is for the reviewers only
        pdf = b"%PDF-1.4\n% hospital discharge\n"
        r = c.post(f"/appeals/{aid}/attachments", headers=app, params={"filename": "discharge.pdf"}, content=pdf)
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == hashlib.sha256(pdf).hexdigest() and r.json()["media_type"] == "application/pdf"
        assert c.post(f"/appeals/{aid}/attachments", headers=app, params={"filename": "x.pdf"},
                      content=b"MZ\x90\x00 not a pdf").status_code == 422
        assert c.post(f"/appeals/{aid}/attachments", headers=app, params={"filename": "big.pdf"},
                      content=b"%PDF-" + b"0" * (5 * 1024 * 1024)).status_code == 413
        got = c.get(f"/appeals/{aid}/attachments/{r.json()['id']}", headers=app)
        assert got.status_code == 200 and got.content == pdf and got.headers["content-type"] == "application/pdf"
        assert c.get(f"/appeals/{aid}/evidence", headers=app).status_code == 404
        ev = c.get(f"/appeals/{aid}/evidence", headers=heads["off"])
        assert ev.status_code == 200 and any(f["properties"].get("role") == "alert_fix" for f in ev.json()["features"])

        # another subject's appellant learns nothing of it
        assert c.get(f"/appeals/{aid}", headers=app_b).status_code == 404
        assert c.get("/appeals", headers=app_b).json() == []
        assert c.post(f"/appeals/{aid}/attachments", headers=app_b, params={"filename": "a.pdf"},
                      content=pdf).status_code == 404

        # review: assigned by the unit's supervisor, never to the officer who resolved the alert
        assert c.post(f"/appeals/{aid}/assign", headers=heads["off"], json={"reviewer_id": ids["rev"]}).status_code == 403
        assert c.post(f"/appeals/{aid}/assign", headers=heads["sup2"], json={"reviewer_id": ids["rev2"]}).status_code == 404
        assert c.post(f"/appeals/{aid}/assign", headers=heads["sup"], json={"reviewer_id": ids["rev2"]}).status_code == 404
        assert c.post(f"/appeals/{aid}/assign", headers=heads["sup"], json={"reviewer_id": ids["off"]}).status_code == 422
        assert c.post(f"/appeals/{aid}/decide", headers=heads["rev"],
                      json={"decision": "upheld", "reason": "x"}).status_code == 404  # not (yet) its reviewer
        clock.now = T0 + timedelta(days=1)
        r = c.post(f"/appeals/{aid}/assign", headers=heads["sup"], json={"reviewer_id": ids["rev"]})
        assert r.status_code == 200 and r.json()["state"] == "under_review" and r.json()["reviewer_id"] == ids["rev"]
        assert c.post(f"/appeals/{aid}/extend", headers=heads["sup"], json={"reason": "x"}).status_code == 409
        # the reviewer sees the appeal although the subject is not on their caseload
        assert c.get(f"/appeals/{aid}", headers=heads["rev"]).status_code == 200
        assert c.post(f"/appeals/{aid}/decide", headers=heads["sup"],
                      json={"decision": "upheld", "reason": "x"}).status_code == 403
        assert c.post(f"/appeals/{aid}/decide", headers=heads["rev"],
                      json={"decision": "answered", "reason": "x"}).status_code == 422
        clock.now = T0 + timedelta(days=3)
        reason = "The hospital confirms the visit: the absence is excused."
        r = c.post(f"/appeals/{aid}/decide", headers=heads["rev"], json={"decision": "upheld", "reason": reason})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "upheld" and not r.json()["decided_late"]
        assert c.post(f"/appeals/{aid}/decide", headers=heads["rev"],
                      json={"decision": "rejected", "reason": "x"}).status_code == 409
        assert c.post(f"/appeals/{aid}/attachments", headers=app, params={"filename": "late.pdf"},
                      content=b"%PDF-late").status_code == 409

        # the alert is excused through its lifecycle, the violation marked, the statistics count a false alert
        alert = c.get(f"/alerts/{al['A1']}", headers=heads["off"]).json()
        assert alert["status"] == "resolved" and alert["resolution"] == "excused" and reason in alert["resolution_note"]
        actions = [h["action"] for h in c.get(f"/alerts/{al['A1']}/history", headers=heads["off"]).json()]
        assert actions == ["raised", "resolved", "reopened", "resolved"]
        with psycopg.connect(database_url) as conn:
            (contest,) = conn.execute("SELECT contest FROM violations WHERE id = %s",
                                      (appeal["violation_id"],)).fetchone()  # type: ignore[misc]
        assert contest == "upheld"
        stats = {s["key"]: s for s in c.get("/statistics/alerts", headers=heads["sup"], params={"group_by": "kind"}).json()}
        row = stats["inclusion_zone_left"]
        assert row["false_alarm"] == 1 and row["contested_upheld"] == 1 and row["excused"] == 0
        assert row["confirmed_violation"] == 2  # A2, B1
        # no longer contestable, so the appellant no longer lists it
        assert {a["id"] for a in c.get("/alerts", headers=app).json()} == {al["A2"]}

        # the appellant reads the decision in plain language, in either language; the notice is marked read
        mine = c.get(f"/appeals/{aid}", headers=app, params={"lang": "en"}).json()
        assert mine["status_text"] == f"Your appeal was upheld. Reasons: {reason}"
        assert [n["kind"] for n in mine["notices"]] == ["decision"]
        assert mine["notices"][0]["text"].startswith("Dear appellant, your appeal has been decided: upheld.")
        assert [e["action"] for e in mine["events"]] == ["submitted", "attachment", "assigned", "decided"]
        assert mine["events"][0]["text"] == "Contest of a violation submitted."
        uz = c.get(f"/appeals/{aid}", headers={**app, "Accept-Language": "uz-UZ, en;q=0.5"}).json()
        assert uz["status_text"].startswith("Murojaatingiz qanoatlantirildi.")
        assert uz["notices"][0]["read_at"] is not None
        assert [a["id"] for a in c.get("/appeals", headers=app).json()] == [aid]

        # every step is in the audit chain, and the chain holds
        with psycopg.connect(database_url, autocommit=True) as conn:
            steps = [r[0] for r in conn.execute(
                "SELECT action FROM audit_log WHERE target = %s ORDER BY id", (f"appeal:{aid}",))]
            assert audit.verify(conn).ok
            made = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'appellant.create'").fetchone()
        for step in ("appeal.submit", "appeal.attach", "appeal.evidence_read", "appeal.assign", "appeal.decide",
                     "appeal.read"):
            assert step in steps, (step, steps)
        assert made == (2,)
        assert c.get("/audit/verify", headers=admin(c)).json()["ok"] is True


def test_contest_rejected_after_its_deadline_is_overdue_then_late(database_url: str) -> None:
    clock = Clock()
    with app_client(database_url, app_options={"clock": clock}) as c:
        w = world(c, database_url)
        heads, ids, al = w["heads"], w["ids"], w["alerts"]
        app = appellant(c, w, "A", "subject.a", by="sup")
        # the contest deadline is configurable (admin)
        assert c.put("/appeals/settings", headers=heads["sup"], json={"contest_days": 5}).status_code == 403
        assert c.put("/appeals/settings", headers=admin(c), json={"contest_days": 5}).json()["contest_days"] == 5
        r = c.post("/appeals/contests", headers=app, json={"alert_id": al["A2"], "text": "It was not me."})
        assert r.status_code == 201
        aid, due_at = r.json()["id"], datetime.fromisoformat(r.json()["due_at"])
        assert r.json()["due_on"] == "2026-12-06"
        clock.now = due_at - timedelta(seconds=1)
        assert c.get("/appeals/overdue", headers=heads["sup"]).json() == []
        clock.now = due_at
        overdue = c.get("/appeals/overdue", headers=heads["sup"]).json()
        assert [a["id"] for a in overdue] == [aid] and overdue[0]["overdue"]
        assert c.get("/appeals/overdue", headers=heads["sup2"]).json() == []  # another unit's
        assert c.get("/appeals/overdue", headers=heads["off"]).status_code == 403
        assert [a["id"] for a in c.get("/appeals", headers=heads["off"], params={"overdue": True}).json()] == [aid]
        mine = c.get(f"/appeals/{aid}", headers=app, params={"lang": "en"}).json()
        assert mine["overdue"] and "The answer is overdue (it was due by 2026-12-06)" in mine["status_text"]
        assert c.post(f"/appeals/{aid}/assign", headers=heads["sup"], json={"reviewer_id": ids["rev"]}).status_code == 200
        clock.now = due_at + timedelta(days=2)
        r = c.post(f"/appeals/{aid}/decide", headers=heads["rev"],
                   json={"decision": "rejected", "reason": "The fixes show the subject 2 km from home."})
        assert r.status_code == 200 and r.json()["state"] == "rejected" and r.json()["decided_late"]
        assert not r.json()["overdue"]
        assert c.get("/appeals/overdue", headers=heads["sup"]).json() == []
        alert = c.get(f"/alerts/{al['A2']}", headers=heads["off"]).json()
        assert alert["resolution"] == "confirmed_violation"  # rejected: the alert stands
        with psycopg.connect(database_url, autocommit=True) as conn:
            (contest,) = conn.execute("SELECT v.contest FROM violations v JOIN alerts a ON a.violation_id = v.id"
                                      " WHERE a.id = %s", (al["A2"],)).fetchone()  # type: ignore[misc]
            assert contest == "rejected"
            assert audit.verify(conn).ok
        # a rejected contest may be contested again (a new appeal), a decided one never changes
        assert c.post("/appeals/contests", headers=app, json={"alert_id": al["A2"], "text": "again"}).status_code == 201
        uz = c.get(f"/appeals/{aid}", headers=app).json()
        assert uz["status_text"].startswith("Murojaatingiz rad etildi.")


def _has_example(spec: dict[str, Any], node: Any) -> bool:
    """Whether a schema or media-type object (its $refs and array items followed) carries an example."""
    if not isinstance(node, dict):
        return False
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _has_example(spec, spec["components"]["schemas"][name])
    if node.get("examples") or "example" in node:
        return True
    return _has_example(spec, node.get("schema")) or _has_example(spec, node.get("items"))


def test_every_appeals_route_is_documented_with_examples() -> None:
    from api import create_app

    spec = create_app(database_url="postgresql://unused", api_token=None).openapi()
    operations = [(path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
                  if path.startswith("/appeals") or path.endswith("/appellants")]
    assert len(operations) >= 14, [(p, m) for p, m, _ in operations]
    for path, method, op in operations:
        bodies = list(op.get("requestBody", {}).get("content", {}).values())
        ok = [media for code, r in op["responses"].items() if code.startswith("2")
              for media in r.get("content", {}).values()]
        assert any(_has_example(spec, m) for m in bodies + ok), (method, path)
        assert {"401", "404", "422"} <= set(op["responses"]), (method, path)
        assert op.get("description") or op.get("summary"), (method, path)
