"""``GET /devices/{id}`` carries the device's latest status report (battery, charging,
strap, case, its device time) for the officers of a wearer's caseload; an appellant, an
officer elsewhere, get 404; a device that reported nothing has ``last_status`` null."""

from __future__ import annotations

import psycopg

from tests.api.officers import admin, app_client, sign_in


def test_device_read_has_its_last_status(database_url: str) -> None:
    with app_client(database_url) as c:
        h = admin(c)
        assert c.post("/units", headers=h, json={"id": "u2", "name": "u2"}).status_code == 201
        assert c.post("/subjects", headers=h, json={"id": "A", "full_name": "person A"}).status_code == 201
        for dev in ("dA", "dQuiet"):
            assert c.post("/devices", headers=h, json={"id": dev, "subject_id": "A"}).status_code == 201
        off, off_h = sign_in(c, "off1", "officer")
        _, other_h = sign_in(c, "off2", "officer", unit="u2")
        _, app_h = sign_in(c, "app", "appellant", subject="A")
        assert c.put("/subjects/A/assignment", headers=h, json={"officer_id": off}).status_code == 200
        with psycopg.connect(database_url) as conn:
            for when, pct, strap in (("2026-12-01T08:00Z", 80, "closed"), ("2026-12-01T09:00Z", 41.5, "opened")):
                conn.execute("INSERT INTO device_status (device_id, device_time, battery_pct, charging, strap,"
                             " case_open, online) VALUES ('dA', %s, %s, false, %s, false, true)", (when, pct, strap))
        r = c.get("/devices/dA", headers=off_h)
        assert r.status_code == 200, r.text
        assert r.json()["last_status"] == {"device_time": "2026-12-01T09:00:00Z", "battery_pct": 41.5,
                                           "charging": False, "strap": "opened", "case_open": False, "online": True}
        assert c.get("/devices/dQuiet", headers=off_h).json()["last_status"] is None
        assert c.get("/devices/dA", headers=app_h).status_code == 404
        assert c.get("/devices/dA", headers=other_h).status_code == 404
