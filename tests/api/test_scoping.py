"""Caseload scoping and the role x route matrix: what each role may do (else 403) and
see (else 404, where existence must not leak), and 401 without a credential."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from tests.api.officers import admin, app_client, make_account, sign_in

ROLES = ("anon", "admin", "sup1", "sup2", "off1", "aud", "app")


def _setup(c: httpx.Client, database_url: str) -> dict[str, Any]:
    h = admin(c)
    for unit in ("u1", "u2"):
        assert c.post("/units", headers=h, json={"id": unit, "name": unit}).status_code == 201
    for sid in ("A", "B", "C"):
        assert c.post("/subjects", headers=h, json={"id": sid, "full_name": f"person {sid}"}).status_code == 201
        assert c.post("/devices", headers=h, json={"id": f"d{sid}", "subject_id": sid}).status_code == 201
    heads: dict[str, dict[str, str]] = {"anon": {}, "admin": h}
    ids: dict[str, int] = {}
    for name, role, unit, subject in (("sup1", "supervisor", "u1", None), ("sup2", "supervisor", "u2", None),
                                      ("off1", "officer", "u1", None), ("off2", "officer", "u1", None),
                                      ("aud", "auditor", "hq", None), ("app", "appellant", "hq", "A")):
        ids[name], heads[name] = sign_in(c, name, role, unit=unit, subject=subject)
    for sid, body in (("A", {"officer_id": ids["off1"]}), ("B", {"officer_id": ids["off2"]}), ("C", {"unit_id": "u2"})):
        r = c.put(f"/subjects/{sid}/assignment", headers=h, json=body)
        assert r.status_code == 200, r.text
    ring = [[69.2, 41.3], [69.21, 41.3], [69.21, 41.31], [69.2, 41.31], [69.2, 41.3]]
    for zid, sid in (("zA", "A"), ("zB", "B"), ("gz", None)):
        body = {"id": zid, "name": zid, "kind": "exclusion", "geometry": {"type": "Polygon", "coordinates": [ring]}}
        body |= {"subject_id": sid} if sid else {"category": "all"}
        assert c.post("/zones", headers=h, json=body).status_code == 201
    alerts: dict[str, int] = {}
    with psycopg.connect(database_url) as conn:
        for sid in ("A", "B", "C"):
            conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                         " VALUES (%s, '2026-12-01T08:00Z', %s, 41.3, 69.2, 5, 'gps')", (f"d{sid}", sid))
        for name, sid, status, resolution in (("aA", "A", "resolved", "confirmed"), ("aA2", "A", "open", None),
                                              ("aB", "B", "open", None), ("aC", "C", "open", None)):
            (alerts[name],) = conn.execute(
                "INSERT INTO alerts (kind, subject_id, device_id, fix_time, status, resolution, distance_m, details)"
                " VALUES ('victim_proximity', %s, %s, '2026-12-01T08:00Z', %s, %s, 120, '{\"victim\": \"secret\"}')"
                " RETURNING id", (sid, f"d{sid}", status, resolution)).fetchone()
    return {"heads": heads, "ids": ids, "alerts": alerts}


def _ids(r: httpx.Response, key: str = "id") -> set[Any]:
    assert r.status_code == 200, r.text
    return {row[key] for row in r.json()}


def test_role_route_matrix(database_url: str) -> None:
    with app_client(database_url) as c:
        env = _setup(c, database_url)
        heads, ids, al = env["heads"], env["ids"], env["alerts"]
        a, a2, b, cc = al["aA"], al["aA2"], al["aB"], al["aC"]

        # what each role sees in the lists (403 where the role has no business there)
        lists: dict[str, dict[str, set[Any] | int]] = {
            "/subjects": {"admin": {"A", "B", "C"}, "sup1": {"A", "B"}, "sup2": {"C"}, "off1": {"A"}, "aud": 403,
                          "app": 404},
            "/devices": {"admin": {"dA", "dB", "dC"}, "sup1": {"dA", "dB"}, "sup2": {"dC"}, "off1": {"dA"},
                         "aud": 403, "app": 404},
            "/zones": {"admin": {"zA", "zB", "gz"}, "sup1": {"zA", "zB", "gz"}, "sup2": {"gz"}, "off1": {"zA", "gz"},
                       "aud": 403, "app": 404},
            "/alerts": {"admin": {a, a2, b, cc}, "sup1": {a, a2, b}, "sup2": {cc}, "off1": {a, a2}, "aud": 403,
                        "app": {a}},
            "/map/latest": {"admin": {"dA", "dB", "dC"}, "sup1": {"dA", "dB"}, "sup2": {"dC"}, "off1": {"dA"},
                            "aud": 403, "app": 404},
        }
        for path, expected in lists.items():
            assert c.get(path).status_code == 401, path
            for role, want in expected.items():
                r = c.get(path, headers=heads[role])
                if isinstance(want, int):
                    assert r.status_code == want, (path, role, r.text)
                else:
                    assert _ids(r, "device_id" if path == "/map/latest" else "id") == want, (path, role)

        # single resources: 200, or 404 outside the scope (never 403: existence does not leak)
        single = {
            "/subjects/A": {"admin": 200, "sup1": 200, "sup2": 404, "off1": 200, "aud": 403, "app": 404},
            "/subjects/B": {"admin": 200, "sup1": 200, "sup2": 404, "off1": 404},
            "/subjects/nobody": {"admin": 404, "off1": 404},
            "/subjects/A/positions": {"admin": 200, "sup1": 200, "sup2": 404, "off1": 200, "aud": 403, "app": 404},
            "/subjects/B/positions": {"off1": 404, "sup2": 404},
            "/subjects/A/assignments": {"admin": 200, "sup1": 200, "sup2": 404, "off1": 200, "aud": 403},
            f"/alerts/{a}": {"admin": 200, "sup1": 200, "sup2": 404, "off1": 200, "aud": 403, "app": 200},
            f"/alerts/{a2}": {"off1": 200, "app": 404},  # open: not (yet) contestable
            f"/alerts/{b}": {"sup1": 200, "off1": 404, "app": 404},
            "/accounts": {"admin": 200, "sup1": 403, "off1": 403, "aud": 403, "app": 404},
            "/api-keys": {"admin": 200, "sup1": 403, "off1": 403, "aud": 403, "app": 404},
            "/audit": {"admin": 200, "aud": 200, "sup1": 403, "off1": 403, "app": 404},
            "/audit/verify": {"admin": 200, "aud": 200, "sup1": 403, "off1": 403, "app": 404},
            "/metrics": {"admin": 200, "sup1": 200, "aud": 200, "off1": 403, "app": 404},
            "/dead-letters": {"admin": 200, "sup1": 200, "off1": 200, "aud": 403, "app": 404},
            "/units": {"admin": 200, "sup1": 200, "off1": 200, "aud": 200, "app": 200},
            "/auth/me": {role: 200 for role in ROLES if role != "anon"},
        }
        for path, expected in single.items():
            assert c.get(path).status_code == 401, path
            for role, want in expected.items():
                assert c.get(path, headers=heads[role]).status_code == want, (path, role)

        # an appellant never sees victim-sensitive fields
        shown = c.get(f"/alerts/{a}", headers=heads["app"]).json()
        assert shown["details"] == {} and shown["distance_m"] is None
        assert c.get(f"/alerts/{a}", headers=heads["off1"]).json()["details"] == {"victim": "secret"}

        # writes: the role check first (403; an appellant: 404, nothing else exists for them), then the scope (404)
        writes: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
            ("POST", f"/alerts/{b}/acknowledge", {}, {"off1": 404, "sup2": 404, "aud": 403, "app": 404}),
            ("POST", f"/alerts/{a2}/acknowledge", {}, {"aud": 403, "app": 404, "off1": 200}),
            ("POST", f"/alerts/{a2}/resolve", {"outcome": "false_alarm", "note": "x"}, {"sup2": 404, "off1": 200}),
            ("POST", "/subjects", {"id": "D", "full_name": "x"}, {"off1": 403, "aud": 403, "app": 404, "sup1": 201}),
            ("POST", "/devices", {"id": "dX", "subject_id": "C"}, {"off1": 403, "sup1": 404, "sup2": 201}),
            ("POST", "/subjects/C/absences", {"starts_at": "2026-12-01T09:00:00+05:00", "ends_at": "2026-12-01T10:00:00+05:00",
                                              "reason": "court"}, {"sup1": 404, "off1": 403, "sup2": 201}),
            ("PUT", "/subjects/A/assignment", {"officer_id": ids["off2"]}, {"off1": 403, "sup2": 404, "sup1": 200}),
            ("PUT", "/subjects/D/assignment", {"officer_id": ids["sup2"]}, {"sup1": 404}),  # not in sup1's unit
            ("POST", "/accounts", {"username": "x", "role": "officer", "password": "p" * 12},
             {"sup1": 403, "off1": 403, "aud": 403, "app": 404}),
            ("POST", "/units", {"id": "u3", "name": "x"}, {"sup1": 403, "off1": 403, "aud": 403, "app": 404}),
        ]
        for method, path, body, expected in writes:
            assert c.request(method, path, json=body).status_code == 401, path
            for role, want in expected.items():
                r = c.request(method, path, json=body, headers=heads[role])
                assert r.status_code == want, (method, path, role, r.text)

        # the subject the supervisor created is in the supervisor's unit; reassignment is kept in history
        assert "D" in _ids(c.get("/subjects", headers=heads["sup1"]))
        hist = c.get("/subjects/A/assignments", headers=heads["sup1"]).json()
        assert [h["officer_id"] for h in hist] == [ids["off1"], ids["off2"]]
        assert c.get("/subjects/A", headers=heads["off1"]).status_code == 404  # off the caseload now
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, role, scope, details FROM audit_log WHERE action = 'subject.assign'"
                            " AND actor = 'sup1'").fetchall()
        reads = conn.execute("SELECT actor, scope FROM audit_log WHERE action = 'positions.read' ORDER BY id").fetchall()
    assert rows == [("sup1", "supervisor", "unit:u1", {"before": {"officer_id": ids["off1"], "unit_id": "u1"},
                                                       "after": {"officer_id": ids["off2"], "unit_id": "u1"},
                                                       "reason": None})]
    assert ("off1", f"caseload:{ids['off1']}") in reads and ("admin", "all") in reads


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_scope_is_narrowed_for_api_keys_too(database_url: str, role: str) -> None:
    with app_client(database_url) as c:
        account = make_account(c, "k", role)
        key = c.post("/api-keys", headers=admin(c),
                     json={"account_id": account, "name": "k", "scopes": ["*"]}).json()["key"]
        assert c.post("/subjects", headers=admin(c), json={"id": "S", "full_name": "x"}).status_code == 201
        r = c.get("/subjects", headers={"Authorization": f"Bearer {key}"})
        # a key acts as its account: the officer's caseload is empty, the auditor has no registry access
        assert (r.status_code, r.json() if r.status_code == 200 else None) == ((200, []) if role == "officer"
                                                                               else (403, None))
