"""General appeals (E-murojaat, ZRU-445) through the API with an injected clock: 15 days,
one month when further study is needed (a proposal: one month), one extension by at
most a month with its reason and a notice the appellant reads, overdue on the
supervisor's list, decided as answered; every step in the audit chain."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from telemetry.store import audit
from tests.api.officers import admin, app_client
from tests.api.test_appeals import T0, Clock, appellant, world


def test_general_appeal_through_every_state(database_url: str) -> None:
    clock = Clock()
    with app_client(database_url, app_options={"clock": clock}) as c:
        w = world(c, database_url)
        heads, ids = w["heads"], w["ids"]
        app = appellant(c, w, "A", "relative.a", by="off")
        body = {"kind": "complaint", "text": "The strap hurts my ankle; I ask for a smaller one.", "language": "en"}
        assert c.post("/appeals/general", headers=heads["sup"], json=body).status_code == 403
        assert c.post("/appeals/general", headers=app, json={**body, "alert_id": 1}).status_code == 422
        assert c.post("/appeals/general", headers=app, json={**body, "kind": "contest"}).status_code == 422
        r = c.post("/appeals/general", headers=app, params={"lang": "en"}, json=body)
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        assert r.json()["track"] == "general" and r.json()["due_on"] == "2026-12-16"
        assert r.json()["events"][0]["text"] == "Complaint submitted."
        proposal = c.post("/appeals/general", headers=app, json={**body, "kind": "proposal"}).json()
        assert proposal["due_on"] == "2027-01-01"

        # further study: one month from receipt; then the one extension, with a notice
        assert c.post(f"/appeals/{gid}/study", headers=heads["rev"]).status_code == 404  # not its reviewer yet
        assert c.post(f"/appeals/{gid}/assign", headers=heads["sup"], json={"reviewer_id": ids["rev"]}).status_code == 200
        clock.now = T0 + timedelta(days=2)
        r = c.post(f"/appeals/{gid}/study", headers=heads["rev"])
        assert r.status_code == 200 and r.json()["needs_study"] and r.json()["due_on"] == "2027-01-01"
        assert c.post(f"/appeals/{gid}/extend", headers=heads["rev"], json={"reason": "x"}).status_code == 403
        assert c.post(f"/appeals/{gid}/extend", headers=heads["sup"], json={"reason": ""}).status_code == 422
        assert c.post(f"/appeals/{gid}/extend", headers=heads["sup"],
                      json={"reason": "x", "until": "2027-02-02"}).status_code == 422  # over a month
        assert c.post(f"/appeals/{gid}/extend", headers=heads["sup2"], json={"reason": "x"}).status_code == 404
        reason = "The device maker's report on the strap is awaited."
        clock.now = T0 + timedelta(days=20)
        r = c.post(f"/appeals/{gid}/extend", headers=heads["sup"], json={"reason": reason})
        assert r.status_code == 200 and r.json()["due_on"] == "2027-02-01" and r.json()["extension_reason"] == reason
        assert c.post(f"/appeals/{gid}/extend", headers=heads["sup"], json={"reason": "again"}).status_code == 409
        assert c.post(f"/appeals/{gid}/study", headers=heads["sup"]).status_code == 409
        mine = c.get(f"/appeals/{gid}", headers=app, params={"lang": "en"}).json()
        (notice,) = mine["notices"]
        assert notice["kind"] == "extension" and notice["due_on"] == "2027-02-01"
        assert notice["read_at"] == "2026-12-21T06:00:00Z"  # read now, by this very request
        assert notice["text"] == ("Dear appellant, the time to decide your appeal has been extended to 2027-02-01."
                                  f" Reason: {reason}")
        uz = c.get(f"/appeals/{gid}", headers={**app, "Accept-Language": "uz"}).json()
        assert uz["notices"][0]["text"].startswith("Hurmatli murojaatchi! Murojaatingizni ko'rib chiqish muddati")
        assert uz["notices"][0]["read_at"] == "2026-12-21T06:00:00Z"  # the first reading stays
        assert uz["events"][-1]["text"] == f"Ko'rib chiqish muddati 2027-02-01 gacha uzaytirildi. Sababi: {reason}"

        # past the extended term: overdue for the unit's supervisor and in the appellant's text
        due_at = datetime.fromisoformat(mine["due_at"])
        clock.now = due_at
        assert [a["id"] for a in c.get("/appeals/overdue", headers=heads["sup"]).json()] == [proposal["id"], gid]
        assert c.get("/appeals/overdue", headers=heads["sup2"]).json() == []
        assert c.get(f"/appeals/{gid}", headers=app, params={"lang": "en"}).json()["overdue"]

        # the reviewer's answer ends it
        assert c.post(f"/appeals/{gid}/decide", headers=heads["rev"],
                      json={"decision": "answered", "reason": ""}).status_code == 422
        r = c.post(f"/appeals/{gid}/decide", headers=heads["rev"],
                   json={"decision": "answered", "reason": "A smaller strap will be fitted on 5 February."})
        assert r.status_code == 200 and r.json()["state"] == "answered" and r.json()["decided_late"]
        assert [a["id"] for a in c.get("/appeals/overdue", headers=heads["sup"]).json()] == [proposal["id"]]
        mine = c.get(f"/appeals/{gid}", headers=app, params={"lang": "en"}).json()
        assert mine["status_text"] == "Your appeal has been answered: A smaller strap will be fitted on 5 February."
        assert [n["kind"] for n in mine["notices"]] == ["extension", "decision"]
        assert [e["action"] for e in mine["events"]] == ["submitted", "assigned", "study", "extended", "decided"]
        assert [a["state"] for a in c.get("/appeals", headers=app, params={"track": "general"}).json()] == [
            "submitted", "answered"]

        with psycopg.connect(database_url, autocommit=True) as conn:
            steps = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE target = %s ORDER BY id",
                                                (f"appeal:{gid}",))]
            assert audit.verify(conn).ok
        for step in ("appeal.submit", "appeal.assign", "appeal.study", "appeal.extend", "appeal.decide"):
            assert step in steps, (step, steps)
        assert c.get("/audit/verify", headers=admin(c)).json()["ok"] is True
