"""The registry (issue 12): identifiers validated at the door, personal fields masked by
role, supervision terms with amendments and tasks, device fitting history, versioned
zones, GeoJSON export/import, photos; every change audited with before and after."""

from __future__ import annotations

from typing import Any

import psycopg

from telemetry.identifiers import luhn_check_digit, pinfl_check_digit
from tests.api.conftest import LiveApi
from tests.api.test_problems import assert_problem
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
IMEI = "490154203237518"  # a published example IMEI (valid Luhn digit)


def pinfl(first: str = "3", ddmmyy: str = "150190", region: str = "123", serial: str = "456") -> str:
    head = first + ddmmyy + region + serial
    return head + str(pinfl_check_digit(head))


def _zone(zid: str, subject: str, side: float = 200, **extra: Any) -> dict[str, Any]:
    return {"id": zid, "name": zid, "kind": "inclusion", "subject_id": subject,
            "geometry": {"type": "Polygon", "coordinates": [rect_ring(*HOME, side, side)]}, **extra}


def _audit(url: str, action: str) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT details FROM audit_log WHERE action = %s ORDER BY id", (action,))]


def test_pinfl_is_validated_with_a_clear_422(live_api: LiveApi) -> None:
    good = pinfl()
    wrong_check = good[:13] + str((int(good[13]) + 1) % 10)
    cases = {
        "3150190123": "exactly 14 digits",
        "7150190123456" + "0": "first digit",
        pinfl(ddmmyy="310290"): "no date",
        pinfl(region="000"): "never 000",
        wrong_check: "check digit is wrong",
    }
    with live_api.client() as c:
        for value, reason in cases.items():
            body = assert_problem(c.post("/subjects", json={"id": "s1", "full_name": "x", "pinfl": value}), 422)
            assert reason in body["detail"], (value, body)
            assert body["errors"][0]["field"].startswith("body"), body
        # consistent with the date of birth and the sex
        r = c.post("/subjects", json={"id": "s1", "full_name": "x", "pinfl": good, "date_of_birth": "1990-01-16"})
        assert "encodes the date of birth 1990-01-15" in assert_problem(r, 422)["detail"]
        r = c.post("/subjects", json={"id": "s1", "full_name": "x", "pinfl": good, "sex": "F"})
        assert "encodes sex M" in assert_problem(r, 422)["detail"]
        r = c.post("/subjects", json={"id": "s1", "full_name": "x", "pinfl": good, "sex": "M",
                                      "date_of_birth": "1990-01-15"})
        assert r.status_code == 201, r.text
        # unique
        assert_problem(c.post("/subjects", json={"id": "s2", "full_name": "y", "pinfl": good}), 409)
        # a change must agree with what is stored
        assert "encodes sex M" in assert_problem(c.patch("/subjects/s1", json={"sex": "F"}), 422)["detail"]
        assert c.patch("/subjects/s1", json={"pinfl": pinfl("4", region="777"), "sex": "F"}).status_code == 200


def test_imei_is_luhn_checked_with_a_clear_422(live_api: LiveApi) -> None:
    bad = IMEI[:14] + str((int(IMEI[14]) + 1) % 10)
    with live_api.client() as c:
        body = assert_problem(c.post("/devices", json={"id": "d1", "imei": bad}), 422)
        assert f"Luhn check digit is wrong (expected {luhn_check_digit(IMEI[:14])})" in body["detail"]
        assert body["errors"][0]["field"] == "body.imei"
        assert "15 digits" in assert_problem(c.post("/devices", json={"id": "d1", "imei": "49015420323751"}),
                                             422)["detail"]
        r = c.post("/devices", json={"id": "d1", "imei": IMEI, "serial": "SN-1", "model": "BT-200", "firmware": "3.1"})
        assert r.status_code == 201 and r.json()["state"] == "in_stock", r.text
        assert_problem(c.post("/devices", json={"id": "d2", "imei": IMEI}), 409)
        assert_problem(c.patch("/devices/d1", json={"imei": bad}), 422)
        assert c.patch("/devices/d1", json={"firmware": "3.2"}).json()["firmware"] == "3.2"
    (change,) = _audit(live_api.database_url, "device.update")
    assert change["before"]["firmware"] == "3.1" and change["after"]["firmware"] == "3.2"


def test_personal_fields_are_masked_by_role(live_api: LiveApi) -> None:
    body = {"id": "s1", "full_name": "x", "pinfl": pinfl(), "address": "Chilonzor 9", "phone": "+998 90 123 45 67"}
    with live_api.client() as c:
        assert c.post("/subjects", json=body).status_code == 201
        as_admin = c.get("/subjects/s1").json()
        assert as_admin["pinfl"] is None and as_admin["address"] is None and as_admin["phone"] is None
        assert set(as_admin["masked"]) == {"pinfl", "address", "phone"}
        for role in ("supervisor", "officer"):
            with live_api.acting_as(role):
                seen = c.get("/subjects/s1").json()
                assert (seen["pinfl"], seen["address"], seen["masked"]) == (body["pinfl"], "Chilonzor 9", []), role
        with live_api.acting_as("auditor"):
            assert c.get("/subjects/s1").status_code == 403  # no subject data at all


def test_photo_is_type_and_size_limited(live_api: LiveApi) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        assert_problem(c.put("/subjects/s1/photo", content=png, headers={"Content-Type": "image/gif"}), 422)
        assert_problem(c.put("/subjects/s1/photo", content=png, headers={"Content-Type": "image/jpeg"}), 422)
        big = b"\xff\xd8\xff" + b"\x00" * (1024 * 1024)
        assert_problem(c.put("/subjects/s1/photo", content=big, headers={"Content-Type": "image/jpeg"}), 422)
        r = c.put("/subjects/s1/photo", content=png, headers={"Content-Type": "image/png"})
        assert r.status_code == 200 and r.json()["size_bytes"] == len(png), r.text
        assert c.get("/subjects/s1/photo").status_code == 404  # admin: masked
        with live_api.acting_as("supervisor"):
            got = c.get("/subjects/s1/photo")
            assert got.content == png and got.headers["content-type"] == "image/png"
            assert c.get("/subjects/s1").json()["has_photo"] is True


def test_terms_amendments_and_the_remove_device_task(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x", "term_start": "2026-01-01T00:00:00Z"}
                      ).status_code == 201
        assert c.post("/devices", json={"id": "d1", "subject_id": "s1"}).status_code == 201
        (first,) = c.get("/subjects/s1/terms").json()  # the legacy term became a term row
        assert first["status"] == "active" and first["starts_at"].startswith("2026-01-01")
        r = c.post("/subjects/s1/terms", json={"order_type": "probation", "court": "Tashkent City Court",
                                               "order_number": "1-234/2026", "order_date": "2026-11-20",
                                               "starts_at": "2027-01-01T00:00:00+05:00",
                                               "ends_at": "2026-01-01T00:00:00+05:00"})
        assert "ends_at must be after starts_at" in assert_problem(r, 422)["detail"]
        r = c.patch(f"/subjects/s1/terms/{first['id']}", json={"status": "suspended", "reason": "hospital"})
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        assert_problem(c.patch(f"/subjects/s1/terms/{first['id']}", json={"status": "paused", "reason": "x"}), 422)
        assert c.get("/tasks").json() == []
        r = c.patch(f"/subjects/s1/terms/{first['id']}", json={"status": "ended", "reason": "court order"})
        assert r.json()["status"] == "ended" and r.json()["ended_at"] is not None
        legacy = c.get("/subjects/s1").json()  # the old columns follow the terms in force
        assert legacy["term_start"].startswith("2026-01-01") and legacy["term_end"] == r.json()["ended_at"]
        assert_problem(c.patch(f"/subjects/s1/terms/{first['id']}", json={"status": "active", "reason": "x"}), 422)
        history = c.get(f"/subjects/s1/terms/{first['id']}/amendments").json()
        assert [(h["version"], h["change"]) for h in history] == [(1, "create"), (2, "status"), (3, "end")]
        assert history[1]["before"]["status"] == "active" and history[1]["after"]["status"] == "suspended"
        (task,) = c.get("/tasks").json()
        assert (task["kind"], task["device_id"], task["subject_id"]) == ("remove_device", "d1", "s1")
        # removing the device does the task
        r = c.post("/devices/d1/remove", json={"reason": "term ended"})
        assert r.status_code == 200, r.text
        assert c.get("/tasks").json() == []
        done = c.get("/tasks", params={"open": "false"}).json()[0]
        assert done["done_by"] == "admin"
        assert_problem(c.post(f"/tasks/{done['id']}/done"), 409)
    audits = _audit(live_api.database_url, "term.amend")
    assert [a["after"]["status"] for a in audits] == ["suspended", "ended"]
    assert audits[0]["before"]["status"] == "active"


def test_fitting_history_and_the_female_fitter_rule(live_api: LiveApi) -> None:
    with live_api.client() as c:
        for sid, sex in (("a", "M"), ("b", "F")):
            assert c.post("/subjects", json={"id": sid, "full_name": sid, "sex": sex}).status_code == 201
        assert c.post("/devices", json={"id": "d1", "subject_id": "a"}).status_code == 201
        for name, sex in (("ivan", "M"), ("nodira", "F")):
            assert c.post("/accounts", json={"username": name, "role": "officer", "password": "x" * 12}
                          ).status_code == 201
            with psycopg.connect(live_api.database_url) as conn:
                conn.execute("UPDATE accounts SET sex = %s WHERE username = %s", (sex, name))
        ids = {a["username"]: a["id"] for a in c.get("/accounts").json()}
        r = c.post("/devices/d1/fit", json={"subject_id": "b", "at": "2026-12-01T10:00:00+05:00",
                                            "fitted_by_account_id": ids["ivan"]})
        assert "fitted by a female officer" in assert_problem(r, 409)["detail"]
        r = c.post("/devices/d1/fit", json={"subject_id": "b", "at": "2026-12-01T10:00:00+05:00",
                                            "fitted_by_account_id": ids["nodira"]})
        assert r.status_code == 201, r.text
        assert_problem(c.post("/devices/d1/fit", json={"subject_id": "a", "at": "2026-11-01T00:00:00Z"}), 409)
        history = c.get("/devices/d1/assignments").json()
        assert [(h["subject_id"], h["fitted_at"] is None, h["removed_at"] is not None) for h in history] == [
            ("a", True, True), ("b", False, False)]
        assert history[1]["fitter_account_id"] == ids["nodira"] and history[0]["removed_at"] == history[1]["fitted_at"]
        device = c.get("/devices/d1").json()
        assert (device["subject_id"], device["state"]) == ("b", "fitted")
        assert_problem(c.patch("/devices/d1", json={"state": "lost"}), 422)
        assert c.post("/devices/d1/remove", json={"state": "lost"}).status_code == 200
        assert_problem(c.post("/devices/d1/fit", json={"subject_id": "a"}), 409)  # lost
    (fit,) = _audit(live_api.database_url, "device.fit")
    assert fit["before"]["subject_id"] == "a" and fit["after"]["subject_id"] == "b"


def test_zone_versions_stay_readable_and_geojson_round_trips(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s1", "full_name": "x"}).status_code == 201
        assert c.post("/zones", json=_zone("home", "s1", 200)).json()["version"] == 1
        r = c.put("/zones/home", json=_zone("home", "s1", 400, name="home (bigger)"))
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        assert_problem(c.put("/zones/home", json=_zone("other", "s1")), 422)
        versions = c.get("/zones/home/versions").json()
        assert [(v["version"], v["name"], v["change"]) for v in versions] == [
            (1, "home", "create"), (2, "home (bigger)", "update")]
        assert versions[0]["valid_until"] == versions[1]["valid_from"] and versions[1]["valid_until"] is None
        old = c.get("/zones/home/versions/1").json()
        assert old["geometry"]["coordinates"] == [[list(p) for p in rect_ring(*HOME, 200, 200)]]
        assert_problem(c.get("/zones/home/versions/3"), 404)
        exported = c.get("/subjects/s1/zones/export").json()
        assert [f["id"] for f in exported["features"]] == ["home"]
        # import: the existing zone gets a new version, a new one is created
        exported["features"].append({"type": "Feature", "geometry": _zone("work", "s1")["geometry"],
                                     "properties": {"id": "work", "name": "work", "kind": "exclusion"}})
        r = c.post("/subjects/s1/zones/import", json=exported)
        assert r.json() == {"created": ["work"], "updated": [], "unchanged": ["home"]}, r.text  # unchanged home: no new version
        assert len(c.get("/zones/home/versions").json()) == 2
        exported["features"][0]["properties"]["buffer_m"] = 25
        assert c.post("/subjects/s1/zones/import", json=exported).json() == {"created": [], "updated": ["home"],
                                                                             "unchanged": ["work"]}
        assert [v["buffer_m"] for v in c.get("/zones/home/versions").json()] == [0, 0, 25]
        assert c.delete("/zones/work").json()["active"] is False
        assert c.get("/zones/work/versions").json()[-1]["change"] == "retire"
    (update,) = _audit(live_api.database_url, "zone.update")
    assert update["before"]["version"] == 1 and update["after"]["version"] == 2


def test_subjects_and_devices_import_all_or_none(live_api: LiveApi) -> None:
    """``POST /subjects/import`` and ``POST /devices/import`` (a fleet moving onto the
    system, the simulator's registry at national scale): each item checked as by the
    single routes, all or none, one audit record per import."""
    people = [{"id": f"si{i}", "full_name": f"Imported {i}", "order_type": "house_arrest",
               "term_start": "2026-12-01T00:00:00+05:00"} for i in range(3)]
    with live_api.client() as c:
        bad = [*people[:1], {**people[1], "pinfl": "3150190123"}, people[2]]
        body = assert_problem(c.post("/subjects/import", json={"subjects": bad}), 422)
        assert body["errors"][0]["field"].startswith("body.subjects[1].pinfl"), body
        twice = [*people, {**people[0], "full_name": "again"}]
        assert "si0" in assert_problem(c.post("/subjects/import", json={"subjects": twice}), 409)["detail"]
        assert c.get("/subjects/si1").status_code == 404  # nothing of either import was stored
        assert_problem(c.post("/subjects/import", json={"subjects": []}), 422)
        assert_problem(c.post("/subjects/import", json={"subjects": [people[0]] * 5001}), 422)
        r = c.post("/subjects/import", json={"subjects": people})
        assert r.status_code == 201 and [s["id"] for s in r.json()] == ["si0", "si1", "si2"], r.text
        (term,) = c.get("/subjects/si2/terms").json()
        assert term["status"] == "active" and term["order_type"] == "house_arrest"
        assert_problem(c.post("/subjects/import", json={"subjects": people[:1]}), 409)  # exists now
        assert c.post("/subjects", json={"id": "sp", "full_name": "p", "pinfl": pinfl()}).status_code == 201
        same = [{"id": "sq", "full_name": "q", "pinfl": pinfl()}]
        assert "another subject has this PINFL" in assert_problem(
            c.post("/subjects/import", json={"subjects": same}), 409)["detail"]
        assert "same PINFL" in assert_problem(c.post("/subjects/import", json={"subjects": [
            {"id": "sr", "full_name": "r", "pinfl": pinfl(serial="457")},
            {"id": "ss", "full_name": "s", "pinfl": pinfl(serial="457")}]}), 409)["detail"]
        devices = [{"id": f"di{i}", "subject_id": f"si{i}"} for i in range(3)]
        body = assert_problem(c.post("/devices/import", json={"devices": [*devices, {"id": "dx", "imei": "1"}]}), 422)
        assert body["errors"][0]["field"].startswith("body.devices[3].imei"), body
        assert "no-such" in assert_problem(c.post("/devices/import", json={
            "devices": [*devices, {"id": "dy", "subject_id": "no-such"}]}), 404)["detail"]
        assert c.get("/devices", params={"limit": 100}).json() == []  # neither import stored anything
        r = c.post("/devices/import", json={"devices": devices})
        assert r.status_code == 201 and {d["state"] for d in r.json()} == {"fitted"}, r.text
        assert c.post("/devices", json={"id": "dm", "imei": IMEI}).status_code == 201
        assert "another device has this serial or IMEI" in assert_problem(
            c.post("/devices/import", json={"devices": [{"id": "dn", "imei": IMEI}]}), 409)["detail"]
        (history,) = c.get("/devices/di1/assignments").json()
        assert history["subject_id"] == "si1"
    (subjects,) = _audit(live_api.database_url, "subject.import")
    assert subjects["count"] == 3 and [a["id"] for a in subjects["after"]] == ["si0", "si1", "si2"]
    (devs,) = _audit(live_api.database_url, "device.import")
    assert devs["count"] == 3
