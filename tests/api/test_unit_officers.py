"""``GET /units/{id}/officers``: the unit's officers (id and name) a supervisor may read
to choose one; their own unit only (403 for another, 404 for none); officers, auditors
and appellants are refused as on the other account routes."""

from __future__ import annotations

from tests.api.officers import admin, app_client, make_account, sign_in


def test_supervisor_reads_only_their_units_officers(database_url: str) -> None:
    with app_client(database_url) as c:
        h = admin(c)
        for unit in ("u1", "u2"):
            assert c.post("/units", headers=h, json={"id": unit, "name": unit}).status_code == 201
        sup1, sup1_h = sign_in(c, "sup1", "supervisor", unit="u1")
        off1, off1_h = sign_in(c, "off1", "officer", unit="u1")
        off_b = make_account(c, "abdullaev", "officer", unit="u1")
        gone = make_account(c, "gone", "officer", unit="u1")
        assert c.patch(f"/accounts/{gone}", headers=h, json={"disabled": True}).status_code == 200
        make_account(c, "off2", "officer", unit="u2")
        c.post("/subjects", headers=h, json={"id": "A", "full_name": "person A"})
        _, app_h = sign_in(c, "app", "appellant", subject="A")
        _, aud_h = sign_in(c, "aud", "auditor")

        r = c.get("/units/u1/officers", headers=sup1_h)
        assert r.status_code == 200, r.text
        assert r.json() == [{"id": off_b, "username": "abdullaev", "role": "officer"},
                            {"id": off1, "username": "off1", "role": "officer"},
                            {"id": sup1, "username": "sup1", "role": "supervisor"}]
        assert c.get("/units/u2/officers", headers=sup1_h).status_code == 403
        assert c.get("/units/nowhere/officers", headers=sup1_h).status_code == 403
        assert c.get("/units/nowhere/officers", headers=h).status_code == 404
        assert [o["username"] for o in c.get("/units/u2/officers", headers=h).json()] == ["off2"]
        assert c.get("/units/u1/officers", headers=off1_h).status_code == 403
        assert c.get("/units/u1/officers", headers=aud_h).status_code == 403
        assert c.get("/units/u1/officers", headers=app_h).status_code == 404
        assert c.get("/units/u1/officers").status_code == 401
