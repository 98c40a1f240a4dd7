"""The registry as the pipeline sees it (issue 12), against a real PostgreSQL: rules only
inside a term in force, a fix attributed to whoever wore the device at its device time,
alerts carrying the zone version in force, and a device reporting after its term flagged.
Registry changes go through the API's storage functions and reach the running pipeline by
its NOTIFY path (no restart, no explicit refresh)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from telemetry.pipeline import Pipeline
from telemetry.store import devices as device_store
from telemetry.store import registry as registry_store
from telemetry.store import terms as term_store
from tests.geofence.workloads import rect_ring
from tests.telemetry.test_pipeline import AWAY, HOME, T0, msg

_T = TypeVar("_T")
ELSEWHERE = (HOME[0] + 0.05, HOME[1])  # another subject's home, 4 km east
H = 3_600_000


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def call(url: str, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]) -> _T:
    """Run one of the API's storage functions (async) on its own connection, committed."""

    async def run() -> _T:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            out = await work(conn)
            await conn.commit()
            return out

    return asyncio.run(run())


def _subject(url: str, sid: str, device: str, home: tuple[float, float] = HOME) -> None:
    """A subject with an inclusion zone (200 m square) and a device fitted, as the API
    makes them (the subject's first term is open-ended)."""
    call(url, lambda c: registry_store.create_subject(c, {"id": sid, "full_name": sid, "category": None,
                                                         "order_type": "house_arrest", "timezone": "Asia/Tashkent",
                                                         "term_start": None, "term_end": None}))
    call(url, lambda c: registry_store.create_device(c, {"id": device, "kind": "ankle_monitor", "subject_id": sid}))
    call(url, lambda c: registry_store.create_zones(c, [_zone(f"home-{sid}", sid, home)]))


def _zone(zid: str, sid: str, centre: tuple[float, float], side: float = 200) -> dict[str, Any]:
    return {"id": zid, "name": zid, "kind": "inclusion", "subject_id": sid, "category": None, "radius_m": None,
            "buffer_m": 0.0, "geometry": {"type": "Polygon", "coordinates": [rect_ring(*centre, side, side)]}}


def _only_term(url: str, sid: str, **changes: Any) -> None:
    (term,) = call(url, lambda c: term_store.list_terms(c, sid))
    call(url, lambda c: term_store.amend_term(c, sid, term["id"], changes, reason="test", by="test"))


def _rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def test_rules_apply_only_inside_an_active_term(database_url: str) -> None:
    url = database_url
    _subject(url, "s1", "d1")
    _only_term(url, "s1", starts_at=at(T0 + H), ends_at=at(T0 + 2 * H))
    _subject(url, "s2", "d2")
    _only_term(url, "s2", status="suspended")
    p = Pipeline(url)
    before = p.process([msg(T0, *AWAY), msg(T0 + 60_000, *AWAY), msg(T0, *AWAY, device="d2")])
    assert before.alert_ids == []  # s1's term has not started; s2's is suspended
    inside = p.process([msg(T0 + H + 60_000, *AWAY), msg(T0 + 60_000, *AWAY, device="d2")])
    assert len(inside.alert_ids) == 1 and inside.alerts[0]["subject_id"] == "s1"
    after = p.process([msg(T0 + 2 * H + 60_000, *AWAY), msg(T0 + 2 * H + 120_000, *AWAY),
                       msg(T0 + 120_000, *AWAY, device="d2")])
    assert after.alert_ids == []  # s1's term is over (and the open violation closed); s2 still suspended
    assert _rows(url, "SELECT count(*) FROM violations WHERE subject_id = 's1' AND closed_at IS NULL") == [(0,)]
    # resuming s2's term reaches the running pipeline through NOTIFY: the next fix alerts
    _only_term(url, "s2", status="active")
    resumed = p.process([msg(T0 + 180_000, *AWAY, device="d2")])
    assert [a["subject_id"] for a in resumed.alerts] == ["s2"]
    p.close()


def test_a_late_upload_after_a_reassignment_goes_to_the_earlier_wearer(database_url: str) -> None:
    url = database_url
    _subject(url, "a", "d1")
    call(url, lambda c: registry_store.create_subject(c, {"id": "b", "full_name": "b", "category": None,
                                                         "order_type": "house_arrest", "timezone": "Asia/Tashkent",
                                                         "term_start": None, "term_end": None}))
    call(url, lambda c: registry_store.create_zones(c, [_zone("home-b", "b", ELSEWHERE)]))
    p = Pipeline(url)
    assert p.process([msg(T0, *HOME)]).alert_ids == []
    t1 = T0 + 600_000  # the device is taken off a and fitted on b at t1 (device time)
    call(url, lambda c: device_store.fit(c, "d1", "b", at=at(t1), by="officer-1", fitter_account_id=None, reason=None))
    live = p.process([msg(t1, *ELSEWHERE), msg(t1 + 60_000, *ELSEWHERE)])
    assert live.alert_ids == []  # at b's home: compliant for b (and a's zone is not b's rule)
    # store-and-forward: fixes a's device took before t1, uploaded after the reassignment,
    # away from a's home
    late = p.process([msg(T0 + 120_000, *AWAY), msg(T0 + 180_000, *AWAY)])
    assert late.late == 2
    assert [(x["subject_id"], x["zone_id"], x["late"]) for x in late.alerts] == [("a", "home-a", True)]
    owners = dict(_rows(url, "SELECT (extract(epoch FROM device_time) * 1000)::bigint, subject_id FROM positions"
                             " WHERE device_id = 'd1'"))
    assert owners == {T0: "a", T0 + 120_000: "a", T0 + 180_000: "a", t1: "b", t1 + 60_000: "b"}
    p.close()


def test_alerts_carry_the_zone_version_in_force(database_url: str) -> None:
    url = database_url
    _subject(url, "s1", "d1")
    p = Pipeline(url)
    first = p.process([msg(T0, *HOME), msg(T0 + 60_000, *AWAY)])
    assert [a["zone_revision"] for a in first.alerts] == [1]
    assert p.process([msg(T0 + 120_000, *HOME), msg(T0 + 180_000, *HOME)]).alert_ids == []  # closed
    # the zone moves (version 2): HOME is now outside it; the running pipeline sees it
    call(url, lambda c: registry_store.update_zone(c, "home-s1", _zone("home-s1", "s1", ELSEWHERE), by="supervisor-1"))
    second = p.process([msg(T0 + 240_000, *HOME)])
    assert [(a["zone_id"], a["zone_revision"]) for a in second.alerts] == [("home-s1", 2)]
    assert _rows(url, "SELECT zone_revision FROM alerts ORDER BY id") == [(1,), (2,)]
    assert _rows(url, "SELECT zone_revision FROM violations ORDER BY id") == [(1,), (2,)]
    v1, v2 = call(url, lambda c: registry_store.zone_versions(c, "home-s1"))
    assert v1["geometry"]["coordinates"] == [[list(q) for q in rect_ring(*HOME, 200, 200)]]
    assert (v2["changed_by"], v2["valid_from"]) == ("supervisor-1", v1["valid_until"])
    p.close()


def test_a_device_reporting_after_its_term_is_flagged(database_url: str) -> None:
    url = database_url
    _subject(url, "s1", "d1")
    _only_term(url, "s1", starts_at=at(T0 - H), ends_at=at(T0 + H))
    _only_term(url, "s1", status="ended")  # ended now: in force until its end, T0 + 1 h
    (task,) = call(url, lambda c: term_store.list_tasks(c, open_only=True, limit=10, offset=0))
    assert (task["device_id"], task["still_reporting"]) == ("d1", False)
    p = Pipeline(url)
    assert len(p.process([msg(T0, *AWAY)]).alert_ids) == 1  # inside the term: judged
    out = p.process([msg(T0 + 2 * H, *AWAY), msg(T0 + 3 * H, *AWAY)])
    assert out.alert_ids == []
    (task,) = call(url, lambda c: term_store.list_tasks(c, open_only=True, limit=10, offset=0))
    assert task["still_reporting"] and task["last_fix_at"] == at(T0 + 3 * H)
    p.close()


def test_a_term_past_its_end_is_ended_with_a_remove_device_task(database_url: str) -> None:
    url = database_url
    _subject(url, "s1", "d1")
    _only_term(url, "s1", starts_at=at(T0 - H), ends_at=at(T0))  # T0 is in the past
    p = Pipeline(url)
    p.check_silence()
    (term,) = call(url, lambda c: term_store.list_terms(c, "s1"))
    assert (term["status"], term["ended_at"]) == ("ended", at(T0))
    changes = [a["change"] for a in call(url, lambda c: term_store.amendments(c, "s1", term["id"]))]
    assert changes == ["create", "amend", "end"]
    tasks = call(url, lambda c: term_store.list_tasks(c, open_only=True, limit=10, offset=0))
    assert [(t["kind"], t["device_id"], t["term_id"]) for t in tasks] == [("remove_device", "d1", term["id"])]
    p.close()
