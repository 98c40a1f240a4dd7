"""The live feed (SSE): Last-Event-ID replay from the database, scope, lifecycle
events, browser authentication by a short-lived HttpOnly cookie."""

from __future__ import annotations

import httpx

from tests.api.officers import EventStream, admin, app_client, bearer, insert_alert, login, make_account, sign_in


def _world(c: httpx.Client) -> tuple[dict[str, str], int]:
    h = admin(c)
    for sid in ("A", "B"):
        assert c.post("/subjects", headers=h, json={"id": sid, "full_name": sid}).status_code == 201
        assert c.post("/devices", headers=h, json={"id": f"d{sid}", "subject_id": sid}).status_code == 201
    off_id, off = sign_in(c, "off", "officer")
    assert c.put("/subjects/A/assignment", headers=h, json={"officer_id": off_id}).status_code == 200
    return off, off_id


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(database_url: str) -> None:
    with app_client(database_url, {"feed_poll_s": 30.0}) as c:
        off, _ = _world(c)
        stream = EventStream(c, off)
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        first = insert_alert(database_url, "A", "dA")
        ev = stream.next()
        assert ev["event"] == "alert" and ev["data"]["action"] == "raised" and ev["data"]["alert"]["id"] == first
        assert ev["data"]["alert"]["severity"] == "critical"
        seen = int(ev["id"])
        stream.close()  # the client goes away ...
        missed = [insert_alert(database_url, "A", "dA") for _ in range(3)]
        insert_alert(database_url, "B", "dB")  # ... not on this officer's caseload: never shown
        stream = EventStream(c, off, last_event_id=seen)
        replayed = [stream.next() for _ in range(3)]
        assert [e["data"]["alert"]["id"] for e in replayed] == missed
        assert [int(e["id"]) for e in replayed] == sorted(int(e["id"]) for e in replayed)
        assert all(int(e["id"]) > seen for e in replayed)
        # then live: a lifecycle change is an event too, and nothing was sent twice
        assert c.post(f"/alerts/{missed[0]}/acknowledge", headers=off, json={"note": "on it"}).status_code == 200
        live = stream.next()
        assert (live["data"]["action"], live["data"]["alert"]["id"], live["data"]["note"]) == ("acknowledged",
                                                                                              missed[0], "on it")
        assert live["data"]["alert"]["status"] == "acknowledged"
        stream.close()


def test_browser_stream_cookie_and_roles(database_url: str) -> None:
    with app_client(database_url, {"feed_poll_s": 30.0}) as c:
        off, _ = _world(c)
        r = c.post("/auth/stream-token", headers=off)
        assert r.status_code == 204
        cookie = r.headers["set-cookie"]
        assert "nazorat_stream=" in cookie and "HttpOnly" in cookie and "Path=/feed" in cookie
        assert "samesite=strict" in cookie.lower() and "Max-Age=60" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        c.cookies.clear()
        stream = EventStream(c, cookies={"nazorat_stream": value})
        assert stream.response.status_code == 200
        aid = insert_alert(database_url, "A", "dA")
        assert stream.next()["data"]["alert"]["id"] == aid
        stream.close()
        c.cookies.clear()
        # an access token is not a stream token, and a stream token is not an access token
        access = off["Authorization"].split()[1]
        assert c.get("/feed", headers={"Cookie": f"nazorat_stream={access}"}).status_code == 401
        assert c.get("/alerts", headers=bearer(value)).status_code == 401
        assert c.get("/feed").status_code == 401
        make_account(c, "aud", "auditor")
        assert c.get("/feed", headers=bearer(login(c, "aud")["access_token"])).status_code == 403
        assert c.get("/feed", headers={**off, "Last-Event-ID": "x"}).status_code == 422


def test_the_console_signs_in_with_a_password_and_listens_to_the_feed(database_url: str) -> None:
    with app_client(database_url) as c:
        html = c.get("/console/").text
        api_js, feed_js = c.get("/console/js/api.js").text, c.get("/console/js/feed.js").text
    assert 'id="username"' in html and 'autocomplete="current-password"' in html and '"/auth/token"' in api_js
    assert 'fetch("/feed"' in feed_js and '"Last-Event-ID"' in feed_js and "Bearer" in feed_js
    assert "?token=" not in api_js + feed_js and "access_token=" not in api_js + feed_js  # no token in a URL
