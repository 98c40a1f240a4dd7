"""A record that does not compile is set aside where an operator sees it (issue 9)."""

from __future__ import annotations

import time

import psycopg

from tests.conftest import Stack
from tests.e2e.test_fix_to_alert import HOME, fix, publish, register, wait_for


def test_a_zone_that_does_not_compile_is_listed_and_the_fleet_goes_on(stack: Stack) -> None:
    with stack.client() as c:
        register(c, "ok", "dev-ok")
        register(c, "bad", "dev-bad")
        # a record the API would refuse today, as an older release or a hand edit left it
        with psycopg.connect(stack.database_url) as conn:
            conn.execute("UPDATE subjects SET timezone = 'Mars/Olympus' WHERE id = 'bad'")
            conn.execute("NOTIFY nazorat_registry")
        now = int(time.time() * 1000)
        away = (HOME[0], HOME[1] + 0.01)
        publish(stack, "dev-bad", fix(now, *away))
        publish(stack, "dev-ok", fix(now, *away))
        alerts = wait_for(lambda: c.get("/alerts").json(), lambda a: any(x["device_id"] == "dev-ok" for x in a))
        assert all(a["device_id"] != "dev-bad" for a in alerts)
        errors = wait_for(lambda: c.get("/operational-errors").json(), lambda e: len(e) == 2)
        assert sorted(e["entity"] for e in errors) == ["bad-home", "bad-victim"]
        assert all(e["kind"] == "zone_compile" and "Mars/Olympus" in e["reason"] for e in errors)
        metrics = c.get("/metrics").text
        assert "nazorat_zone_compile_errors 2.0" in metrics
        ready = c.get("/readyz")  # a zone compile error does not make the process unready, but it shows
        body = ready.json()
        zones = next(v for k, v in body["parts"].items() if "zone" in k)
        assert ready.status_code == 200 and zones["ok"] is False
        assert sorted(zones["zone_ids"]) == ["bad-home", "bad-victim"]
