"""``GET /alerts`` pages by keyset: forward past a full page of new alerts (the poller's
old bug: ``after_id`` returned the newest 1,000 and skipped what lay between), back
through history with ``before_id``, and with the console's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from tests.api.conftest import LiveApi

N = 1_005


def _seed(live_api: LiveApi) -> list[int]:
    with live_api.client() as c:
        assert c.post("/subjects", json={"id": "s-page", "full_name": "Paged Person"}).status_code == 201
        assert c.post("/devices", json={"id": "d-page", "subject_id": "s-page"}).status_code == 201
    with psycopg.connect(live_api.database_url) as conn:
        conn.execute("INSERT INTO device_status (device_id, device_time, strap) VALUES ('d-page', '2026-01-01T10:00Z',"
                     " 'cut')")
        rows = conn.execute(
            "INSERT INTO alerts (kind, subject_id, device_id, status_time, created_at)"
            " SELECT CASE WHEN i %% 5 = 0 THEN 'strap_cut' ELSE 'battery_low' END, 's-page', 'd-page',"
            " '2026-01-01T10:00Z', '2026-01-01T00:00Z'::timestamptz + i * interval '1 minute'"
            " FROM generate_series(1, %s) i RETURNING id", (N,)).fetchall()
    return sorted(r[0] for r in rows)


def test_forward_paging_misses_none_past_a_full_page(live_api: LiveApi) -> None:
    ids = _seed(live_api)
    seen: list[int] = []
    with live_api.client() as c:
        after = 0
        while True:
            page = c.get("/alerts", params={"after_id": after, "limit": 1000}).json()
            assert [a["id"] for a in page] == sorted((a["id"] for a in page), reverse=True)  # newest first
            seen += [a["id"] for a in page]
            if len(page) < 1000:
                break
            after = max(a["id"] for a in page)
        assert sorted(seen) == ids  # every one, once

        back: list[int] = []
        before = None
        while True:
            params: dict[str, int] = {"limit": 400} | ({"before_id": before} if before else {})
            page = c.get("/alerts", params=params).json()
            back += [a["id"] for a in page]
            if len(page) < 400:
                break
            before = min(a["id"] for a in page)
        assert back == ids[::-1]


def test_filters_by_kind_severity_and_time(live_api: LiveApi) -> None:
    ids = _seed(live_api)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with live_api.client() as c:
        crit = c.get("/alerts", params={"severity": "critical", "limit": 1000}).json()
        assert len(crit) == N // 5 and {a["kind"] for a in crit} == {"strap_cut"}
        assert len(c.get("/alerts", params={"kind": "battery_low", "limit": 1000}).json()) == N - N // 5
        window = {"since": (t0 + timedelta(minutes=10)).isoformat(), "until": (t0 + timedelta(minutes=20)).isoformat()}
        assert [a["id"] for a in c.get("/alerts", params=window).json()] == ids[9:19][::-1]
        assert c.get("/alerts", params={"since": window["until"], "until": window["since"]}).status_code == 422
        assert c.get("/alerts", params={"severity": "bogus"}).status_code == 422
