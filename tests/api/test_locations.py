"""Issue 12: the location query ("who was within R metres of P between t1 and t2"), a
subject's track as GeoJSON and the subject data export, through the API on a real
database: answers agree with the pyproj/shapely reference, every call is audited, and
each role sees what it may (supervisors their unit, officers no query, auditors no
coordinates, victims' phones only for roles that may see victims)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.api.officers import admin, app_client, sign_in
from tests.telemetry.reach_reference import Fix, reference_class, shapely_check, workload

P_LAT, P_LON, R = 41.3111, 69.2797, 150.0
T0 = datetime(2026, 11, 20, 20, tzinfo=UTC)
SUBJECTS = [f"s{i:02d}" for i in range(12)]
WITHIN = {"lat": P_LAT, "lon": P_LON, "radius_m": R, "since": "2026-11-20T20:00:00Z",
          "until": "2026-11-20T23:00:00Z", "fixes_limit": 1000}


def _seed(database_url: str) -> tuple[list[Fix], dict[str, str | None], set[str]]:
    """Subjects s00..s11 (even: unit u1, odd: u2), one ankle monitor each, a victim's phone
    linked to s00, a device worn by nobody; a seeded workload around P. Returns the
    fixes, each device's subject and the flagged fixes' keys."""
    # the victim's phone is registered under the subject it protects against: only the
    # victim rule, not the scope, keeps it from a supervisor of that subject's unit
    wearer: dict[str, str | None] = {f"d{s}": s for s in SUBJECTS} | {"victim-1": "s00", "spare-1": None}
    fixes = workload(12, P_LAT, P_LON, R, n=1500, devices=sorted(wearer))
    flagged = {f"{f.device_id}@{f.device_time.isoformat()}" for i, f in enumerate(fixes) if i % 23 == 0}
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO units (id, name) VALUES ('u1', 'u1'), ('u2', 'u2')")
        for i, s in enumerate(SUBJECTS):
            conn.execute("INSERT INTO subjects (id, full_name, unit_id) VALUES (%s, %s, %s)",
                         (s, f"person {s}", "u1" if i % 2 == 0 else "u2"))
            conn.execute("INSERT INTO devices (id, subject_id) VALUES (%s, %s)", (f"d{s}", s))
        conn.execute("INSERT INTO devices (id, kind, subject_id) VALUES ('victim-1', 'victim_phone', 's00'),"
                     " ('spare-1', 'ankle_monitor', NULL)")
        conn.execute("INSERT INTO victim_links (victim_device_id, subject_id, radius_m) VALUES ('victim-1', 's00', 500)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source, flags)"
                " VALUES (%s, %s, %s, %s, %s, %s, 'gps', %s)",
                [(f.device_id, f.device_time, wearer[f.device_id], f.lat, f.lon, f.accuracy_m,
                  ["implausible_speed"] if f"{f.device_id}@{f.device_time.isoformat()}" in flagged else [])
                 for f in fixes])
            # right at P, but outside [since, until): never part of the answer
            for t in (T0 - timedelta(seconds=1), T0 + timedelta(hours=3)):
                cur.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source)"
                            " VALUES ('ds01', %s, 's01', %s, %s, 1, 'gps')", (t, P_LAT, P_LON))
    return fixes, wearer, flagged


def _expected(fixes: list[Fix], wearer: dict[str, str | None], flagged: set[str], *, units: set[str] | None,
              victims: bool, max_accuracy_m: float = 1000.0) -> dict[tuple[str | None, str], dict[str, str]]:
    """(subject, device) -> {device time: class}, from the reference over every fix."""
    out: dict[tuple[str | None, str], dict[str, str]] = defaultdict(dict)
    for f in fixes:
        subject = wearer[f.device_id]
        if f.accuracy_m > max_accuracy_m or f"{f.device_id}@{f.device_time.isoformat()}" in flagged:
            continue
        if f.device_id == "victim-1" and not victims:
            continue
        if units is not None and (subject is None or ("u1" if int(subject[1:]) % 2 == 0 else "u2") not in units):
            continue
        cls = reference_class(f, P_LAT, P_LON, R)
        if cls is not None:
            out[(subject, f.device_id)][f.device_time.isoformat()] = cls
    return dict(out)


def _answer(body: dict[str, Any]) -> dict[tuple[str | None, str], dict[str, str]]:
    out: dict[tuple[str | None, str], dict[str, str]] = {}
    for s in body["subjects"]:
        strongest = "possible"
        for d in s["devices"]:
            fixes = {datetime.fromisoformat(f["device_time"]).isoformat(): f["class"] for f in d["fixes"]}
            assert len(fixes) == d["certain_fixes"] + d["possible_fixes"] and not d["fixes_truncated"]
            assert d["class"] == ("certain" if d["certain_fixes"] else "possible")
            strongest = "certain" if d["class"] == "certain" else strongest
            out[(s["subject_id"], d["device_id"])] = fixes
        assert s["class"] == strongest
    return out


@pytest.fixture
def env(database_url: str) -> Any:
    fixes, wearer, flagged = _seed(database_url)
    with app_client(database_url) as c:
        heads = {"admin": admin(c)}
        for name, role, unit, subject in (("sup1", "supervisor", "u1", None), ("sup2", "supervisor", "u2", None),
                                          ("off1", "officer", "u1", None), ("aud", "auditor", "hq", None),
                                          ("app", "appellant", "hq", "s00")):
            _, heads[name] = sign_in(c, name, role, unit=unit, subject=subject)
        yield c, heads, fixes, wearer, flagged


def test_within_agrees_with_the_reference(env: Any, database_url: str) -> None:
    c, heads, fixes, wearer, flagged = env
    assert shapely_check(fixes, P_LAT, P_LON, R) > 300
    r = c.get("/locations/within", params=WITHIN, headers=heads["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    want = _expected(fixes, wearer, flagged, units=None, victims=True)
    assert _answer(body) == want
    assert body["victim_phones"] == "included" and ("s00", "victim-1") in want
    classes = [cls for per in want.values() for cls in per.values()]
    assert classes.count("certain") > 100 and classes.count("possible") > 100
    assert body["counts"]["fixes"] == len(classes)
    certain_first = [s["class"] for s in body["subjects"]]
    assert certain_first == sorted(certain_first, key=lambda k: k != "certain")

    # a supervisor: the unit's subjects only, and no victim's phone (the answer says so)
    r = c.get("/locations/within", params=WITHIN, headers=heads["sup1"])
    assert r.status_code == 200, r.text
    assert r.json()["victim_phones"] == "excluded"
    assert _answer(r.json()) == _expected(fixes, wearer, flagged, units={"u1"}, victims=False)

    # flagged fixes on request; a tighter accuracy limit
    r = c.get("/locations/within", params={**WITHIN, "include_flagged": "true", "max_accuracy_m": 200},
              headers=heads["admin"])
    assert _answer(r.json()) == _expected(fixes, wearer, set(), units=None, victims=True, max_accuracy_m=200)


def test_each_query_writes_an_audit_record(env: Any, database_url: str) -> None:
    c, heads, *_ = env
    for who in ("admin", "sup1", "sup1"):
        assert c.get("/locations/within", params=WITHIN, headers=heads[who]).status_code == 200
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT actor, role, scope, details FROM audit_log WHERE action = 'locations.within'"
                            " ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["admin", "sup1", "sup1"]
    assert rows[1][1] == "supervisor" and rows[1][2] == "unit:u1"
    details = rows[1][3]
    assert {k: details[k] for k in ("lat", "lon", "radius_m", "max_accuracy_m", "include_flagged")} == {
        "lat": P_LAT, "lon": P_LON, "radius_m": R, "max_accuracy_m": 1000.0, "include_flagged": False}
    assert datetime.fromisoformat(details["since"]) == T0
    assert details["results"]["subjects"] == len(details["subjects"]) > 0
    assert details["rows"] == details["results"]["fixes"] > 0 and details["victim_phones"] == "excluded"
    assert all(int(s[1:]) % 2 == 0 for s in details["subjects"])


def test_who_may_ask_and_what_they_see(env: Any) -> None:
    c, heads, *_ = env
    # (an appellant is told nothing exists beyond their own appeals: 404, as everywhere)
    for who, code in (("off1", 403), ("aud", 403), ("app", 404)):
        assert c.get("/locations/within", params=WITHIN, headers=heads[who]).status_code == code, who
    assert c.get("/locations/within", params=WITHIN).status_code == 401
    track = {"since": "2026-11-20T20:00:00Z", "until": "2026-11-20T23:00:00Z"}
    for who, path, code in (("aud", "/subjects/s00/track", 403), ("app", "/subjects/s00/track", 404),
                            ("sup2", "/subjects/s00/track", 404), ("sup1", "/subjects/s01/track", 404),
                            ("sup1", "/subjects/s00/track", 200), ("aud", "/subjects/s00/export", 403),
                            ("off1", "/subjects/s00/export", 403), ("app", "/subjects/s00/export", 404),
                            ("sup2", "/subjects/s00/export", 404), ("sup1", "/subjects/nobody/export", 404),
                            ("sup1", "/subjects/s00/export", 200)):
        r = c.get(path, params=track if path.endswith("track") else None, headers=heads[who])
        assert r.status_code == code, (who, path, r.text)
        if code != 200:
            assert "lat" not in r.text and "coordinates" not in r.text
    assert c.get("/subjects/s00/export", params={"include_victim_sensitive": "true"},
                 headers=heads["sup1"]).status_code == 403


@pytest.mark.parametrize(("params", "field"), [
    ({"radius_m": 0}, "query.radius_m"), ({"radius_m": 10_001}, "query.radius_m"), ({"lat": 91}, "query.lat"),
    ({"lon": "nan"}, "query.lon"), ({"until": "2026-11-20T19:00:00Z"}, "until"),
    ({"until": "2026-11-28T00:00:00Z"}, "until"), ({"since": "2026-11-20 20:00"}, "query.since"),
    ({"max_accuracy_m": -1}, "query.max_accuracy_m"),
])
def test_limits_are_clear_422s(env: Any, params: dict[str, Any], field: str) -> None:
    c, heads, *_ = env
    r = c.get("/locations/within", params={**WITHIN, **params}, headers=heads["admin"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()


def test_too_many_candidates_is_a_422(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    c, heads, *_ = env
    from api.routes import locations

    monkeypatch.setattr(locations, "MAX_CANDIDATES", 10)
    r = c.get("/locations/within", params=WITHIN, headers=heads["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "radius_m", r.text
    assert "narrow" in r.json()["errors"][0]["reason"]


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    row: tuple[Any, ...] | None = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row


def _fix(conn: psycopg.Connection[Any], device: str, subject: str, t: datetime, lon: float,
         flags: list[str] | None = None) -> None:
    conn.execute("INSERT INTO positions (device_id, device_time, subject_id, lat, lon, accuracy_m, source, flags)"
                 " VALUES (%s, %s, %s, 41.3, %s, 7, 'gps', %s)", (device, t, subject, lon, flags or []))


def test_track_geojson_marks_gaps(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('t1', 'track person')")
        conn.execute("INSERT INTO device_profiles (name, report_interval_s) VALUES ('minute', 60)")
        conn.execute("INSERT INTO devices (id, subject_id, profile) VALUES ('dt1', 't1', 'minute')")
        conn.execute("INSERT INTO devices (id, subject_id) VALUES ('dt2', 't1')")  # default profile: 300 s
        for s in (0, 60, 120, 600, 660, 720):
            _fix(conn, "dt1", "t1", T0 + timedelta(seconds=s), 69.2 + s * 1e-5)
        _fix(conn, "dt1", "t1", T0 + timedelta(seconds=700), 70.5, ["implausible_speed"])
        for s in (0, 800, 1600):  # 800 s apart: within 3 x 300 s, one stretch
            _fix(conn, "dt2", "t1", T0 + timedelta(seconds=s), 69.3)
        _fix(conn, "dt1", "t1", T0 + timedelta(hours=2), 69.2)  # outside the range asked
    with app_client(database_url) as c:
        r = c.get("/subjects/t1/track", headers=admin(c),
                  params={"since": "2026-11-20T20:00:00Z", "until": "2026-11-20T21:00:00Z"})
        assert r.status_code == 200, r.text
        fc = r.json()
        assert fc["type"] == "FeatureCollection" and not fc["truncated"]
        kinds: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for f in fc["features"]:
            assert f["type"] == "Feature"
            kinds[(f["properties"]["device_id"], f["properties"]["kind"])].append(f)
        assert len(kinds[("dt1", "fix")]) == 7 and len(kinds[("dt2", "fix")]) == 3
        point = kinds[("dt1", "fix")][0]
        assert point["geometry"] == {"type": "Point", "coordinates": [69.2, 41.3]}
        assert point["properties"]["accuracy_m"] == 7 and point["properties"]["source"] == "gps"
        stretches = kinds[("dt1", "stretch")]
        assert [len(s["geometry"]["coordinates"]) for s in stretches] == [3, 3]  # the flagged fix is no part of it
        assert all(len(s["geometry"]["coordinates"]) < 4 for s in stretches)
        (gap,) = kinds[("dt1", "gap")]
        assert gap["properties"]["duration_s"] == 480 and gap["properties"]["threshold_s"] == 180
        assert datetime.fromisoformat(gap["properties"]["start"]) == T0 + timedelta(seconds=120)
        assert len(kinds[("dt2", "stretch")]) == 1 and not kinds[("dt2", "gap")]
        assert {d["device_id"]: d["gap_threshold_s"] for d in fc["devices"]} == {"dt1": 180, "dt2": 900}
        r = c.get("/subjects/t1/track", headers=admin(c), params={"since": "2026-11-20T20:00:00Z",
                                                                   "until": "2026-11-20T21:00:00Z", "gap_factor": 10})
        assert not [f for f in r.json()["features"] if f["properties"]["kind"] == "gap"]
        r = c.get("/subjects/t1/track", headers=admin(c), params={"since": "2026-11-20T20:00:00Z",
                                                                   "until": "2026-12-31T21:00:00Z"})
        assert r.status_code == 422
    with psycopg.connect(database_url) as conn:
        (n, rows) = _one(conn, "SELECT count(*), max((details->>'rows')::int) FROM audit_log"
                                " WHERE action = 'track.read' AND subject_id = 't1'")
    assert n == 2 and rows == 10


def test_export_holds_everything_about_the_subject(env: Any, database_url: str) -> None:
    c, heads, *_ = env
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry, radius_m, victim_sensitive) VALUES"
                     " ('zv', 'victim home', 'exclusion', 's00', '{\"type\": \"Point\", \"coordinates\": [69.1, 41.2]}',"
                     " 100, true), ('zh', 'home', 'inclusion', 's00', '{\"type\": \"Point\", \"coordinates\":"
                     " [69.2, 41.3]}', 100, false)")
        conn.execute("INSERT INTO absences (subject_id, starts_at, ends_at, reason, created_by)"
                     " VALUES ('s00', '2026-11-21T08:00Z', '2026-11-21T10:00Z', 'hospital', 'sup1')")
        (t,) = _one(conn, "SELECT min(device_time) FROM positions WHERE device_id = 'ds00'")
        conn.execute("INSERT INTO device_status (device_id, device_time, battery_pct) VALUES ('ds00', %s, 50),"
                     " ('ds02', %s, 40)", (t, t))
        (vid,) = _one(conn, "INSERT INTO violations (subject_id, device_id, zone_id, opened_at, open_fix_time)"
                            " VALUES ('s00', 'ds00', 'zh', %s, %s) RETURNING id", (t, t))
        conn.execute("INSERT INTO alerts (kind, subject_id, device_id, zone_id, violation_id, fix_time, details)"
                     " VALUES ('exclusion_zone_entered', 's00', 'ds00', 'zv', %s, %s, '{\"lat\": 41.2}')", (vid, t))
        conn.execute("INSERT INTO alerts (kind, subject_id, device_id, fix_time) VALUES ('zone_exit', 's02', 'ds02',"
                     " (SELECT min(device_time) FROM positions WHERE device_id = 'ds02'))")
    assert c.get("/locations/within", params=WITHIN, headers=heads["sup1"]).status_code == 200
    r = c.get("/subjects/s00/export", headers=heads["sup1"])
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="subject-s00-export.json"'
    archive = r.json()
    assert archive["format"] == "nazorat.subject-export.v1" and archive["generated_by"] == "sup1"
    assert archive["victim_sensitive"] == "redacted" and archive["skipped"] == []
    sec = archive["sections"]
    assert sec["subject"]["id"] == "s00" and sec["subject"]["unit_id"] == "u1"
    assert {d["id"] for d in sec["devices"]} == {"ds00"}  # not the victim's phone
    assert {z["id"]: z["geometry"] for z in sec["zones"]}["zv"] is None
    assert {z["id"]: z["geometry"] for z in sec["zones"]}["zh"]["type"] == "Point"
    assert len(sec["absences"]) == 1 and sec["victim_links"][0]["victim_device_id"] == "victim-1"
    assert {"terms", "term_amendments", "device_assignments", "registry_tasks", "photo"} <= set(sec)
    # zone versions (written by trigger): the victim's zone masked in every version
    assert {(v["zone_id"], v["geometry"] is None) for v in sec["zone_versions"]} == {("zv", True), ("zh", False)}
    with psycopg.connect(database_url) as conn:
        (n,) = _one(conn, "SELECT count(*) FROM positions WHERE subject_id = 's00' AND device_id = 'ds00'")
        (nv,) = _one(conn, "SELECT count(*) FROM positions WHERE device_id = 'victim-1'")
    assert len(sec["positions"]) == n > 0 and {p["device_id"] for p in sec["positions"]} == {"ds00"}
    assert [s["battery_pct"] for s in sec["device_status"]] == [50]
    assert len(sec["violations"]) == 1 and len(sec["alerts"]) == 1
    assert sec["alerts"][0]["masked"] is True and "lat" not in sec["alerts"][0]["details"]
    assert [h["action"] for h in sec["alert_history"]] == ["raised"]
    assert len(sec["evidence_positions"]) == 1 and sec["evidence_status"] == []
    assert sec["appellant_accounts"][0]["username"] == "app" and "password_hash" not in sec["appellant_accounts"][0]
    actions = [a["action"] for a in sec["audit"]]
    assert "locations.within" in actions  # the query whose answer held s00 ...
    assert all("subjects" not in a["details"] for a in sec["audit"])  # ... without the others it found
    assert archive["counts"]["positions"] == n
    with psycopg.connect(database_url) as conn:
        (details,) = _one(conn, "SELECT details FROM audit_log WHERE action = 'subject.export'"
                                " AND subject_id = 's00'")
        assert details["counts"]["positions"] == n and details["victim_sensitive"] == "redacted"
        # the subject's appeals join the archive (general ones here: a contest needs more set-up)
        (app_id,) = _one(conn, "SELECT id FROM accounts WHERE username = 'app'")
        for sid, body in (("s00", "mine"), ("s02", "not mine")):
            (aid,) = _one(conn, "INSERT INTO appeals (track, kind, subject_id, appellant_id, body, submitted_at,"
                                " due_on, due_at) VALUES ('general', 'complaint', %s, %s, %s, now(), current_date + 15,"
                                " now() + interval '15 days') RETURNING id", (sid, app_id, body))
            conn.execute("INSERT INTO appeal_notices (appeal_id, at, kind, reason)"
                         " VALUES (%s, now(), 'extension', 'x')", (aid,))
    archive = c.get("/subjects/s00/export", params={"include_victim_sensitive": "true"}, headers=heads["admin"]).json()
    assert archive["skipped"] == [] and [a["body"] for a in archive["sections"]["appeals"]] == ["mine"]
    assert len(archive["sections"]["appeal_notices"]) == 1
    assert archive["victim_sensitive"] == "included" and nv > 0
    assert len(archive["sections"]["positions"]) == n + nv
    assert {z["id"]: z["geometry"] for z in archive["sections"]["zones"]}["zv"]["type"] == "Point"
    assert archive["sections"]["alerts"][0]["details"] == {"lat": 41.2}


def test_openapi_has_examples_for_the_new_routes(env: Any) -> None:
    c, *_ = env
    spec = c.get("/openapi.json").json()
    for path in ("/locations/within", "/subjects/{subject_id}/track", "/subjects/{subject_id}/export"):
        op = spec["paths"][path]["get"]
        assert "200" in op["responses"], path
        assert any("examples" in p for p in op["parameters"]) or path.endswith("export"), path
    schemas = spec["components"]["schemas"]
    for name in ("LocationQueryPublic", "TrackPublic", "SubjectExportPublic"):
        assert schemas[name]["examples"], name
    assert spec["paths"]["/subjects/{subject_id}/export"]["get"]["responses"]["200"]["content"][
        "application/json"]["example"]["format"] == "nazorat.subject-export.v1"

