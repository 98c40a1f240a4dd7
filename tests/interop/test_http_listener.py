"""The HTTP ingest listener over real HTTP: every OsmAnd / Traccar Client shape and OwnTracks
HTTP mode, each fix stored once, evaluated and alerting as a native fix does; wrong
secrets, unbound identities and malformed bodies give a clear 4xx and a dead letter, and
the listener stays up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from nazorat.services import free_port
from telemetry.model import InboundMessage
from telemetry.wire import encode_fix, encode_payload, fixes_topic
from tests.conftest import start_stack, stop_stack
from tests.interop.harness import CENTRE, OT_PASSWORD, SECRET, Listener, count, serve_listener, setup_registry

DATA = Path(__file__).parent / "data"
T0_MS = 1_764_151_200_000
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def listener(database_url: str) -> Iterator[Listener]:
    setup_registry(database_url)
    with serve_listener(database_url) as lst:
        yield lst


def _text(name: str) -> str:
    return (DATA / name).read_text()


def test_every_osmand_shape_is_stored_once_and_alerts_like_a_native_fix(listener: Listener,
                                                                          database_url: str) -> None:
    base = f"{listener.url}/t/{SECRET}"
    with httpx.Client(timeout=10) as http:
        requests = [
            lambda: http.get(f"{base}?{_text('osmand-query-seconds.txt')}"),
            lambda: http.post(base, content=_text("osmand-form-milliseconds.txt"), headers=FORM),
            lambda: http.post(f"{listener.url}/?{_text('osmand-location-iso.txt')}&secret={SECRET}"),
            lambda: http.post(f"{base}?{_text('osmand-datetime.txt')}"),
            lambda: http.post(base, content=_text("traccar-client-object.json"), headers=JSON),
            lambda: http.post(base, content=_text("traccar-client-batch.json"), headers=JSON),
        ]
        for send in requests:
            r = send()
            assert r.status_code == 200, r.text
        # the app's retry queue resends: nothing new
        again = http.post(base, content=_text("traccar-client-batch.json"), headers=JSON)
        assert again.status_code == 200 and again.json()["stored"] == 0 and again.json()["duplicates"] == 2
    assert count(database_url, "SELECT count(*) FROM positions WHERE device_id = 'd1'") == 7
    assert count(database_url, "SELECT count(DISTINCT device_time) FROM positions WHERE device_id = 'd1'") == 7
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 0
    assert count(database_url, "SELECT count(*) FROM device_status WHERE device_id = 'd1'") == 5  # the five with a battery
    speed = count(database_url, "SELECT round(speed_mps * 1000) FROM positions WHERE device_id = 'd1'"
                                " AND device_time = to_timestamp(1764151200)")
    assert speed == round(10.5 * 1852 / 3600 * 1000)  # knots -> m/s
    assert count(database_url, "SELECT count(*) FROM position_attributes WHERE device_id = 'd1'") >= 5
    # the same fix sent natively by d2 raises the same alert
    listener.pipeline.process([InboundMessage(fixes_topic("d2"), encode_payload(
        [encode_fix(t_ms=T0_MS, lat=CENTRE[1], lon=CENTRE[0], acc=5.0)]))])
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT device_id, kind, zone_id, fix_time, round(distance_m::numeric, 3)"
                            " FROM alerts WHERE kind LIKE %s ORDER BY device_id", ("%zone%",)).fetchall()
    assert [(r[0], r[1]) for r in rows] == [("d1", "exclusion_zone_entered"), ("d2", "exclusion_zone_entered")]
    assert rows[0][3] == rows[1][3] and rows[0][4] == rows[1][4]


@pytest.mark.parametrize(("path", "body", "headers", "status", "reason"), [
    ("/t/wrong-secret", "osmand-query-seconds.txt", FORM, 401, "wrong device secret (or unknown device)"),
    ("/", "osmand-query-seconds.txt", FORM, 401, "missing device secret"),
    (f"/t/{SECRET}", None, FORM, 400, "missing 'timestamp'"),
    (f"/t/{SECRET}", "{not json", JSON, 400, "not valid JSON"),
])
def test_refusals_give_a_clear_error_and_a_dead_letter(listener: Listener, database_url: str, path: str,
                                                        body: str | None, headers: dict[str, str], status: int,
                                                        reason: str) -> None:
    content = _text(body) if body and body.endswith(".txt") else (body or "id=d1&lat=41.3&lon=69.2")
    with httpx.Client(timeout=10) as http:
        r = http.post(listener.url + path, content=content, headers=headers)
        assert r.status_code == status and reason.split(" (", maxsplit=1)[0] in r.json()["error"]
        # still up, and a good request right after is stored
        ok = http.post(f"{listener.url}/t/{SECRET}", content=_text("osmand-datetime.txt"), headers=FORM)
        assert ok.status_code == 200
    assert count(database_url, "SELECT count(*) FROM positions") == 1
    with psycopg.connect(database_url) as conn:
        (dl_reason, payload) = conn.execute("SELECT reason, payload FROM dead_letters").fetchone()
    assert reason in dl_reason
    assert SECRET.encode() not in bytes(payload) and b"wrong-secret" not in bytes(payload)


def test_a_secret_of_another_device_does_not_let_it_report_for_d1(listener: Listener, database_url: str) -> None:
    with httpx.Client(timeout=10) as http:
        r = http.get(f"{listener.url}/t/{SECRET}?id=d2&timestamp=1764151200&lat=41.3&lon=69.2&accuracy=5")
    assert r.status_code == 401
    assert count(database_url, "SELECT count(*) FROM positions") == 0
    assert count(database_url, "SELECT count(*) FROM dead_letters") == 1


def test_owntracks_http_mode(listener: Listener, database_url: str) -> None:
    url = f"{listener.url}/owntracks"
    ident = {"X-Limit-U": "aziza", "X-Limit-D": "phone", **JSON}
    with httpx.Client(timeout=10) as http:
        r = http.post(url, content=_text("owntracks-location.json"), headers=ident, auth=("aziza", OT_PASSWORD))
        assert r.status_code == 200, r.text
        (cmd,) = r.json()  # the zones this phone may show, once
        assert cmd["action"] == "setWaypoints"
        assert [w["rid"] for w in cmd["waypoints"]["waypoints"]] == ["market-s3"]
        # identity as ?u=&d= too; the same location again is a no-op and no cmd is resent
        r2 = http.post(f"{url}?u=aziza&d=phone", content=_text("owntracks-location.json"), headers=JSON,
                       auth=("aziza", OT_PASSWORD))
        assert r2.status_code == 200 and r2.json() == []
        assert http.post(url, content=b"", headers=ident, auth=("aziza", OT_PASSWORD)).json() == []
        lwt = http.post(url, content=_text("owntracks-lwt-android.json"), headers=ident, auth=("aziza", OT_PASSWORD))
        assert lwt.status_code == 200
        bad_pw = http.post(url, content=_text("owntracks-location.json"), headers=ident, auth=("aziza", "nope"))
        assert bad_pw.status_code == 401
        unbound = http.post(url, content=_text("owntracks-location.json"),
                            headers={**ident, "X-Limit-U": "stranger"}, auth=("stranger", "x"))
        assert unbound.status_code == 401 and "unbound" in unbound.json()["error"]
        garbage = http.post(url, content=b"{", headers=ident, auth=("aziza", OT_PASSWORD))
        assert garbage.status_code == 400
    assert count(database_url, "SELECT count(*) FROM positions WHERE device_id = 'd3'") == 1
    assert count(database_url, "SELECT count(*) FROM alerts WHERE device_id = 'd3' AND kind = 'exclusion_zone_entered'") == 1
    assert count(database_url, "SELECT count(*) FROM interop_events WHERE kind = 'lwt' AND device_time IS NULL") == 1
    assert count(database_url, "SELECT count(*) FROM alerts WHERE kind = 'communication_loss'") == 0
    with psycopg.connect(database_url) as conn:
        reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM dead_letters"))
    assert reasons[0] == "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    assert reasons[1:] == ["unbound OwnTracks identity", "wrong OwnTracks password"]
    assert json.loads(_text("owntracks-location.json"))["SSID"] == "HomeNet"
    assert count(database_url, "SELECT count(*) FROM position_attributes WHERE attributes ? 'SSID'") == 0


@pytest.mark.slow
def test_the_engine_serves_the_listener_beside_mqtt(database_url: str, mqtt_url: str, tmp_path: Path) -> None:
    """``nazorat serve --http-port``: the listener is a supervised task of the engine process."""
    setup_registry(database_url)
    port = free_port()
    log = tmp_path / "engine.log"
    stack = start_stack(database_url, mqtt_url, log, api=False, extra_env={"NAZORAT_HTTP_PORT": str(port)})
    try:
        assert f"HTTP in:   http://127.0.0.1:{port}" in log.read_text()
        with httpx.Client(timeout=10) as http:
            r = http.get(f"http://127.0.0.1:{port}/t/{SECRET}?{_text('osmand-query-seconds.txt')}")
            assert r.status_code == 200 and r.json()["stored"] == 1
            assert http.get(f"http://127.0.0.1:{port}/t/nope?{_text('osmand-query-seconds.txt')}").status_code == 401
    finally:
        stop_stack(stack, log)
    assert count(database_url, "SELECT count(*) FROM alerts WHERE kind = 'exclusion_zone_entered'") == 1


def test_nasty_input_is_a_4xx_or_stored_never_a_5xx(listener: Listener, database_url: str) -> None:
    """NUL characters, 1e400 and NaN in what jsonb would refuse, the secret as the only query
    parameter of a JSON upload: none of it makes the transaction fail (a 503 the app would
    retry for ever, or an MQTT batch the worker would)."""
    doc = json.loads(_text("traccar-client-object.json"))
    doc["location"]["extras"] = {"note\u0000": "a\u0000b", "big": 1e400}
    doc["location"]["event"] = "x\u0000"
    body = json.dumps(doc).replace("Infinity", "1e400")
    with httpx.Client(timeout=10) as http:
        r = http.post(f"{listener.url}/?secret={SECRET}", content=body, headers=JSON)
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
        assert http.post(f"{listener.url}/t/{SECRET}", content=b'{"device_id": "d1", "x": NaN}',
                         headers=JSON).status_code == 400
        assert http.get(f"{listener.url}/t/{SECRET}?id=d%001&timestamp=1764151200&lat=41&lon=69").status_code == 400
        assert http.get(f"{listener.url}/t/{SECRET}?id=d1&timestamp=1764151500&lat=41.2995&lon=69.2401&accuracy=5"
                        "&note=a%00b").status_code == 200
        assert http.post(f"{listener.url}/owntracks?u=a%00&d=b", content=b"{}").status_code == 400
    listener.pipeline.process([InboundMessage("owntracks/aziza/phone/event", json.dumps(
        {"_type": "transition", "desc": "m\u0000", "tst": 1764151330, "acc": 1e400}).encode().replace(
        b"Infinity", b"1e400"))])
    assert count(database_url, "SELECT count(*) FROM positions") == 2
    assert count(database_url, "SELECT count(*) FROM interop_events WHERE kind = 'transition'") == 1
