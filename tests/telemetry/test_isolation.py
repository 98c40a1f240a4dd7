"""Poison isolation and restart-safe state (issue 9): one bad record never stops the
fleet, and a restart in the middle of a dwell changes nothing."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from telemetry import transitions
from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.wire import fixes_topic
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
AWAY = (HOME[0], HOME[1] + 0.01)
T0 = 1_764_151_200_000


def msg(t_ms: int, lon: float, lat: float, device: str = "d1", **extra: Any) -> InboundMessage:
    return InboundMessage(fixes_topic(device), json.dumps({"t": t_ms, "lat": lat, "lon": lon, "acc": 5.0,
                                                           **extra}).encode())


def _fleet(url: str, n: int = 3, *, timezone: dict[int, str] | None = None) -> None:
    """n subjects s0..s(n-1), each with device d<i> and a home zone h<i>."""
    with psycopg.connect(url) as conn:
        for i in range(n):
            conn.execute("INSERT INTO subjects (id, full_name, timezone) VALUES (%s, 'P', %s)",
                         (f"s{i}", (timezone or {}).get(i, "Asia/Tashkent")))
            conn.execute("INSERT INTO devices (id, subject_id) VALUES (%s, %s)", (f"d{i}", f"s{i}"))
            conn.execute(
                "INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES (%s, 'home', 'inclusion', %s, %s)",
                (f"h{i}", f"s{i}", json.dumps({"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]})))


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _gauge(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None
    return value


def test_a_subject_with_an_unknown_time_zone_leaves_the_rest_of_the_fleet_evaluated(database_url: str) -> None:
    # written directly, as a record that predates the API's validation would be
    _fleet(database_url, 3, timezone={1: "Mars/Olympus"})
    p = Pipeline(database_url)
    out = p.process([msg(T0, *AWAY, device=f"d{i}") for i in range(3)])
    assert sorted(a["device_id"] for a in out.alerts) == ["d0", "d2"]  # d1's zone is not evaluated
    assert out.stored == 3  # but d1's fix is stored
    assert p.compile_errors == {"h1": "subject s1: unknown time zone 'Mars/Olympus' (ZoneInfoNotFoundError)"}
    assert _gauge("nazorat_zone_compile_errors") == 1
    assert _rows(database_url, "SELECT kind, entity, resolved_at IS NULL FROM operational_errors") == [
        ("zone_compile", "h1", True)]
    # fixed in the registry: the zone is evaluated again and the record is resolved
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE subjects SET timezone = 'Asia/Tashkent' WHERE id = 's1'")
        conn.execute("NOTIFY nazorat_registry")
    out = p.process([msg(T0 + 1000, *AWAY, device="d1")])
    assert [a["device_id"] for a in out.alerts] == ["d1"]
    assert p.compile_errors == {}
    assert _rows(database_url, "SELECT resolved_at IS NOT NULL FROM operational_errors") == [(True,)]
    p.close()


def test_a_zone_that_fails_to_compile_is_left_out_and_recorded(database_url: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import geofence
    from telemetry import snapshot

    _fleet(database_url, 3)
    real = geofence.compile_zones

    def compile_zones(zones: Any, subjects: Any, **kw: Any) -> Any:  # fault injection: zone h2 breaks the compiler
        if any(z.zone_id == "h2" for z in zones):
            raise RuntimeError("injected compiler failure")
        return real(zones, subjects, **kw)

    monkeypatch.setattr(snapshot, "compile_zones", compile_zones)
    p = Pipeline(database_url)
    out = p.process([msg(T0, *AWAY, device=f"d{i}") for i in range(3)])
    assert sorted(a["device_id"] for a in out.alerts) == ["d0", "d1"]
    assert p.compile_errors == {"h2": "RuntimeError: injected compiler failure"}
    assert _rows(database_url, "SELECT entity, reason FROM operational_errors WHERE resolved_at IS NULL") == [
        ("h2", "RuntimeError: injected compiler failure")]
    p.close()


def test_a_fix_that_makes_a_rule_raise_is_stored_recorded_and_the_batch_goes_on(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _fleet(database_url, 3)
    real = transitions.RuleEngine.plan

    def plan(self: transitions.RuleEngine, snap: Any, fresh: list[Any]) -> Any:  # fault injection: d1 is poison
        if any(f.device_id == "d1" for f in fresh):
            raise ValueError("injected rule failure")
        return real(self, snap, fresh)

    monkeypatch.setattr(transitions.RuleEngine, "plan", plan)
    p = Pipeline(database_url)
    before = REGISTRY.get_sample_value("nazorat_rule_errors_total") or 0.0
    out = p.process([msg(T0, *AWAY, device=f"d{i}") for i in range(3)])
    assert sorted(a["device_id"] for a in out.alerts) == ["d0", "d2"]
    assert (out.stored, out.rule_errors) == (3, 1)
    assert _gauge("nazorat_rule_errors_total") == before + 1
    assert _rows(database_url, "SELECT kind, entity, reason FROM operational_errors") == [
        ("rule_error", "d1", "ValueError: injected rule failure")]
    monkeypatch.undo()
    # the next fix of d1 is evaluated as usual
    assert [a["device_id"] for a in p.process([msg(T0 + 1000, *AWAY, device="d1")]).alerts] == ["d1"]
    p.close()


def test_a_restart_in_the_middle_of_a_dwell_opens_after_exactly_n_fixes(database_url: str) -> None:
    _fleet(database_url, 1)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE zones SET dwell_open_fixes = 3, dwell_close_fixes = 3")
    minute = 60_000  # 1.1 km between home and away: a plausible walk in a minute, not a teleport
    p = Pipeline(database_url)
    assert p.process([msg(T0, *AWAY, device="d0")]).alert_ids == []
    assert p.process([msg(T0 + minute, *AWAY, device="d0")]).alert_ids == []
    p.close()
    p = Pipeline(database_url)  # restart: the two counted fixes are remembered
    assert len(p.process([msg(T0 + 2 * minute, *AWAY, device="d0")]).alert_ids) == 1
    # and the close dwell too: two compliant fixes, a restart, the third closes
    p.process([msg(T0 + 3 * minute, *HOME, device="d0"), msg(T0 + 4 * minute, *HOME, device="d0")])
    assert _rows(database_url, "SELECT pending_count FROM rule_state") == [(2,)]
    p.close()
    p = Pipeline(database_url)
    p.process([msg(T0 + 5 * minute, *HOME, device="d0")])
    assert _rows(database_url, "SELECT closed_at IS NOT NULL, (extract(epoch FROM close_fix_time) * 1000)::bigint"
                               " FROM violations") == [(True, T0 + 5 * minute)]
    assert _rows(database_url, "SELECT count(*) FROM rule_state") == [(0,)]
    p.close()


def test_dead_letter_labels_come_from_a_closed_set(database_url: str) -> None:
    from telemetry.dead_letters import REASON_CODES

    _fleet(database_url, 1)
    p = Pipeline(database_url)
    out = p.process([InboundMessage(fixes_topic("d0"), json.dumps(
        {"t": T0 + k, "lat": HOME[1], "lon": HOME[0], "acc": 5.0, f"key{k}": 1}).encode()) for k in range(50)])
    assert out.dead_letters == 50
    labels = {s.labels["reason"] for m in REGISTRY.collect() if m.name == "nazorat_dead_letters"
              for s in m.samples}
    assert labels <= set(REASON_CODES) and "unknown_key" in labels
    p.close()


EXCLUSION_CENTRE = (HOME[0] + 0.02, HOME[1])  # ~1.7 km east of home


def test_a_late_upload_proving_a_past_exclusion_entry_raises_one_late_alert(database_url: str) -> None:
    """Store-and-forward after a coverage gap: a live fix at T, then buffered fixes from
    T-10 min to T-1 min, five of them 55-70 m inside an exclusion zone."""
    _fleet(database_url, 1)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO zones (id, name, kind, subject_id, geometry, radius_m) VALUES"
                     " ('victim', 'victim', 'exclusion', 's0', %s, 200)",
                     (json.dumps({"type": "Point", "coordinates": list(EXCLUSION_CENTRE)}),))
    t = T0 + 3_600_000
    p = Pipeline(database_url)
    assert p.process([msg(t, *HOME, device="d0")]).alert_ids == []  # live, at home
    lon_per_m = 1 / (111_320 * 0.7518)  # cos(41.3 deg)
    buffered = [msg(t - k * 60_000, EXCLUSION_CENTRE[0] + (130 + 3 * k) * lon_per_m, EXCLUSION_CENTRE[1],
                    device="d0", acc=8.0) for k in range(10, 5, -1)]  # 130-142 m from the centre: 58-70 m inside
    buffered += [msg(t - k * 60_000, *HOME, device="d0") for k in range(5, 0, -1)]  # then home again
    out = p.process(buffered)
    assert out.late == 10
    entered = [a for a in out.alerts if a["kind"] == "exclusion_zone_entered"]
    assert len(entered) == 1
    (alert,) = entered
    assert alert["late"] is True and alert["fix_time_ms"] == t - 600_000 and alert["delay_s"] > 0
    assert _rows(database_url, "SELECT late, closed_at IS NOT NULL FROM violations WHERE zone_id = 'victim'") == [
        (True, True)]
    # the current state did not flip: nothing open, the next live fix at home raises nothing
    assert _rows(database_url, "SELECT count(*) FROM violations WHERE closed_at IS NULL") == [(0,)]
    assert p.process([msg(t + 60_000, *HOME, device="d0")]).alert_ids == []
    # the same upload again (a resend) reports nothing twice
    assert p.process(buffered).alert_ids == []
    p.close()


def test_a_last_will_after_later_status_reports_raises_device_offline(database_url: str) -> None:
    import time

    from telemetry.wire import status_topic

    _fleet(database_url, 1)
    p = Pipeline(database_url)
    connected = int(time.time() * 1000) - 60_000

    def status(body: dict[str, Any]) -> InboundMessage:
        return InboundMessage(status_topic("d0"), json.dumps(body).encode())

    p.process([status({"t": connected + 1000, "bat": 80, "strap": "closed"})])
    p.process([status({"t": connected + 30_000, "bat": 79, "strap": "closed"})])
    # the will, as docs/wire-format.md has it: the connect time, online false
    out = p.process([status({"t": connected, "online": False})])
    assert [a["kind"] for a in out.alerts] == ["device_offline"]
    assert p.process([status({"t": connected, "online": False})]).alert_ids == []  # redelivered: once
    # a will carrying the time of a stored report (connect time = first report) is news too
    p.process([status({"t": connected + 40_000, "bat": 78, "strap": "closed"})])
    out = p.process([status({"t": connected + 1000, "online": False})])
    assert [a["kind"] for a in out.alerts] == ["device_offline"]
    assert p.process([status({"t": connected + 1000, "online": False})]).alert_ids == []
    p.close()
