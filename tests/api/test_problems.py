"""Issue 10 item 3: every input a client can send answers 4xx problem details (RFC 9457),
and an unexpected error is a 500 problem document with a logged, counted correlation id."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from api.routes import registry as registry_routes
from tests.api.conftest import LiveApi
from tests.geofence.workloads import rect_ring

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), body
    assert body["status"] == status and body["type"] == f"urn:nazorat:problem:{body['code']}"
    if code is not None:
        assert body["code"] == code, body
    return body


def _subject(c: httpx.Client, sid: str = "s1", **extra: Any) -> None:
    assert c.post("/subjects", json={"id": sid, "full_name": "x", **extra}).status_code == 201


def test_nul_characters_anywhere_answer_422(live_api: LiveApi) -> None:
    with live_api.client() as c:
        _subject(c)
        body = assert_problem(c.post("/subjects", json={"id": "s2", "full_name": "a\x00b"}), 422, "invalid")
        assert body["errors"][0]["field"] == "body.full_name"
        assert_problem(c.get("/alerts", params={"subject_id": "a\x00b"}), 422)
        assert_problem(c.get("/zones", params={"subject_id": "a\x00b"}), 422)
        assert_problem(c.get("/subjects/a%00b/positions"), 422)
        assert_problem(c.get("/subjects/a%00b"), 422)
        assert_problem(c.post("/subjects/s1/absences", json={
            "starts_at": "2026-12-01T09:00:00+05:00", "ends_at": "2026-12-01T10:00:00+05:00", "reason": "a\x00"}), 422)
        # the API is still fine afterwards
        assert c.get("/subjects/s1").status_code == 200


@pytest.mark.parametrize("query", [{"offset": 2**63}, {"offset": "2.4e22"}, {"offset": -1}])
def test_offsets_beyond_bigint_answer_422(live_api: LiveApi, query: dict[str, Any]) -> None:
    with live_api.client() as c:
        for path in ("/subjects", "/devices", "/zones"):
            assert_problem(c.get(path, params=query), 422)


def test_alert_ids_beyond_bigint_answer_422(live_api: LiveApi) -> None:
    with live_api.client() as c:
        assert_problem(c.get("/alerts", params={"after_id": 2**63}), 422)
        assert_problem(c.get("/alerts", params={"after_id": "2.4e22"}), 422)
        assert_problem(c.get(f"/alerts/{2**63}"), 422)
        assert_problem(c.post(f"/alerts/{2**63}/acknowledge"), 422)
        assert c.get("/alerts", params={"after_id": 2**63 - 1}).json() == []
        assert_problem(c.get(f"/alerts/{2**63 - 1}"), 404, "not_found")


def _post_raw(c: httpx.Client, path: str, body: str) -> httpx.Response:
    return c.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def test_geometry_with_extra_members_is_refused(live_api: LiveApi) -> None:
    ring = json.dumps([rect_ring(69.2, 41.3, 50, 50)])
    prefix = '{"id": "z1", "name": "z", "kind": "exclusion", "subject_id": "s1", "geometry": '
    with live_api.client() as c:
        _subject(c)
        for geometry in (
            '{"type": "Polygon", "coordinates": ' + ring + ', "extra": NaN}',
            '{"type": "Polygon", "coordinates": ' + ring + ', "extra": "a\\u0000b"}',
            '{"type": "Polygon", "coordinates": ' + ring + ', "junk": "' + "x" * 100_000 + '"}',
            '{"type": "Polygon", "coordinates": [[[NaN, 41.3], [69.2, 41.3], [69.2, 41.4], [NaN, 41.3]]]}',
            '{"type": "Polygon", "coordinates": [[[Infinity, 41.3], [69.2, 41.3], [69.2, 41.4], [69.1, 41.3]]]}',
            '{"type": "Polygon", "coordinates": [[[200, 41.3], [69.2, 41.3], [69.2, 41.4], [200, 41.3]]]}',
            '{"type": "Point", "coordinates": [69.2, 95.0]}',
            '{"type": "LineString", "coordinates": [[69.2, 41.3], [69.3, 41.3]]}',
        ):
            body = assert_problem(_post_raw(c, "/zones", prefix + geometry + "}"), 422, "invalid")
            assert any(e["field"].startswith("body.geometry") for e in body["errors"]), body
        assert c.get("/zones").json() == []
        ok = prefix + '{"type": "Polygon", "coordinates": ' + ring + "}}"
        assert _post_raw(c, "/zones", ok).status_code == 201


def test_import_feature_with_list_properties_answers_422(live_api: LiveApi) -> None:
    point = {"type": "Point", "coordinates": [69.24, 41.29]}
    with live_api.client() as c:
        _subject(c)
        fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [1, 2], "geometry": point}]}
        body = assert_problem(c.post("/zones/import", json=fc), 422)
        assert body["errors"][0]["field"].startswith("body.features[0].properties")
        fc = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "ok", "name": "n", "kind": "inclusion", "radius_m": 50,
                                               "subject_id": "s1"}, "geometry": point},
            {"type": "Feature", "properties": {"id": "bad", "name": "n", "kind": "inclusion", "subject_id": "s1"},
             "geometry": {**point, "extra": None}}]}
        body = assert_problem(c.post("/zones/import", json=fc), 422)
        assert body["errors"][0]["field"].startswith("body.features[1].geometry"), body
        fc["features"] = [*fc["features"][:1], "not a feature"]
        assert_problem(c.post("/zones/import", json=fc), 422)
        assert c.get("/zones").json() == []  # all or none


def test_auth_conflict_and_not_found_are_problems(live_api: LiveApi) -> None:
    with httpx.Client(base_url=live_api.url) as anon:
        body = assert_problem(anon.get("/subjects"), 401, "unauthenticated")
        assert body["title"] == "Authentication required"
    with live_api.client() as c:
        _subject(c)
        assert_problem(c.post("/subjects", json={"id": "s1", "full_name": "x"}), 409, "conflict")
        body = assert_problem(c.get("/subjects/nobody"), 404, "not_found")
        assert body["entity"] == "subject" and body["key"] == "nobody"
        assert_problem(c.get("/no-such-route"), 404)
        assert_problem(c.delete("/subjects"), 405, "method_not_allowed")
        assert_problem(_post_raw(c, "/subjects", "{not json"), 422)


def test_unexpected_error_is_a_500_problem_with_a_logged_correlation_id(
    live_api: LiveApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_a: Any, **_k: Any) -> list[dict[str, Any]]:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(registry_routes.registry, "list_subjects", broken)
    before = REGISTRY.get_sample_value("nazorat_api_unhandled_errors_total") or 0.0
    with live_api.client() as c, caplog.at_level(logging.ERROR, logger="nazorat.api"):
        r = c.get("/subjects")
    body = assert_problem(r, 500, "internal_error")
    cid = body["correlation_id"]
    assert r.headers["x-correlation-id"] == cid and "injected fault" not in r.text
    (record,) = [rec for rec in caplog.records if cid in rec.getMessage()]
    assert record.exc_info is not None and "injected fault" in str(record.exc_info[1])
    assert REGISTRY.get_sample_value("nazorat_api_unhandled_errors_total") == before + 1


def test_an_oversized_body_is_413_before_it_is_parsed(live_api: LiveApi) -> None:
    from api.errors import MAX_BODY_BYTES

    big = b'{"id": "s1", "full_name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with live_api.client() as c:
        assert_problem(c.post("/subjects", content=big, headers={"Content-Type": "application/json"}), 413)

        def chunks() -> Any:
            yield big[: len(big) // 2]
            yield big[len(big) // 2:]

        assert_problem(c.post("/subjects", content=chunks(), headers={"Content-Type": "application/json"}), 413)
        assert c.get("/subjects").json() == []
