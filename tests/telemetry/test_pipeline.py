"""The pipeline against a real PostgreSQL: idempotent, ordered, no alert without a fix."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from telemetry.errors import StorageError
from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.store import ingest as store
from telemetry.wire import fixes_topic
from tests.geofence.workloads import rect_ring

HOME = (69.2401, 41.2995)
T0 = 1_764_151_200_000


def _setup(url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s1', 'P')")
        conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d1', 's1')")
        conn.execute(
            "INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('home', 'home', 'inclusion', 's1', %s)",
            (json.dumps({"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]}),),
        )


def msg(t_ms: int, lon: float, lat: float, device: str = "d1", **extra: Any) -> InboundMessage:
    body = {"t": t_ms, "lat": lat, "lon": lon, "acc": 5.0, **extra}
    return InboundMessage(fixes_topic(device), json.dumps(body).encode())


AWAY = (HOME[0], HOME[1] + 0.01)


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])


def test_replay_is_a_no_op(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    batch = [msg(T0, *HOME), msg(T0 + 60_000, *AWAY), msg(T0 + 60_000, *AWAY)]
    first = p.process(batch)
    assert (first.stored, first.duplicates, len(first.alert_ids)) == (2, 0, 1)
    again = p.process(batch)
    assert (again.stored, again.duplicates, len(again.alert_ids)) == (0, 2, 0)
    # a fresh worker (restart) replaying the same messages invents nothing either
    p2 = Pipeline(database_url)
    assert p2.process(batch).alert_ids == []
    assert _count(database_url, "SELECT count(*) FROM positions") == 2
    assert _count(database_url, "SELECT count(*) FROM alerts") == 1
    p.close()
    p2.close()


def test_out_of_order_batch_is_evaluated_in_device_time_order(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    out = p.process([msg(T0 + 180_000, *HOME), msg(T0 + 120_000, *HOME), msg(T0 + 60_000, *AWAY), msg(T0, *HOME)])
    # away (t+1) opens, home (t+2, t+3: the default close dwell of two fixes) closes
    assert len(out.alert_ids) == 1
    assert _count(database_url, "SELECT count(*) FROM violations WHERE closed_at IS NOT NULL") == 1
    p.close()


def test_late_fix_is_stored_but_never_flips_state(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0 + 10_000, *HOME)])
    out = p.process([msg(T0, *AWAY)])  # older than what we already evaluated
    assert (out.stored, out.late) == (1, 1)
    # the violation it proves is reported as a past one, closed at once; nothing is open now
    (alert,) = out.alerts
    assert (alert["kind"], alert["late"], alert["fix_time_ms"]) == ("inclusion_zone_left", True, T0)
    assert _count(database_url, "SELECT count(*) FROM positions WHERE late") == 1
    assert _count(database_url, "SELECT count(*) FROM violations WHERE late AND closed_at IS NOT NULL") == 1
    assert _count(database_url, "SELECT count(*) FROM violations WHERE closed_at IS NULL") == 0
    assert p.process([msg(T0 + 20_000, *HOME)]).alert_ids == []  # the current state is still compliant
    p.close()


def test_cell_fix_never_opens_a_violation_alone(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    assert p.process([msg(T0, *AWAY, src="cell")]).alert_ids == []
    assert len(p.process([msg(T0 + 1000, *AWAY, src="gps")]).alert_ids) == 1
    p.close()


def test_unknown_device_and_bad_payloads_go_to_dead_letters(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    out = p.process([msg(T0, *HOME, device="ghost"), InboundMessage(fixes_topic("d1"), b"{nope"),
                     msg(T0, *HOME)])
    assert (out.stored, out.dead_letters) == (1, 2)
    with psycopg.connect(database_url) as conn:
        reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM dead_letters"))
    assert reasons[1] == "unknown device" and reasons[0].startswith("not valid JSON")
    p.close()


def test_database_failure_commits_nothing_and_the_retry_succeeds(database_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    batch = [msg(T0, *AWAY)]
    def boom(*_a: Any, **_k: Any) -> None:  # fault injection after positions and alerts were written
        raise psycopg.OperationalError("connection lost (injected)")

    monkeypatch.setattr(store, "insert_dead_letters", boom)
    with pytest.raises(StorageError):
        p.process(batch)
    assert _count(database_url, "SELECT count(*) FROM positions") == 0
    assert _count(database_url, "SELECT count(*) FROM alerts") == 0
    monkeypatch.undo()
    out = p.process(batch)
    assert (out.stored, len(out.alert_ids)) == (1, 1)
    p.close()


def test_zone_added_while_running_reaches_the_worker_by_notify(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO subjects (id, full_name) VALUES ('s1', 'P')")
        conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d1', 's1')")
    p = Pipeline(database_url)
    assert p.process([msg(T0, *AWAY)]).alert_ids == []  # no zones yet
    with psycopg.connect(database_url) as conn:  # what the API does: insert and NOTIFY in one transaction
        conn.execute(
            "INSERT INTO zones (id, name, kind, subject_id, geometry) VALUES ('home', 'home', 'inclusion', 's1', %s)",
            (json.dumps({"type": "Polygon", "coordinates": [rect_ring(*HOME, 200, 200)]}),),
        )
        conn.execute("NOTIFY nazorat_registry")
    assert len(p.process([msg(T0 + 1000, *AWAY)]).alert_ids) == 1
    p.close()


def _zone(url: str, zone_id: str, kind: str, geometry: dict[str, Any], **extra: Any) -> None:
    cols = ["id", "name", "kind", "subject_id", "geometry", *extra]
    with psycopg.connect(url) as conn:
        conn.execute(
            f"INSERT INTO zones ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",  # type: ignore[arg-type]
            (zone_id, zone_id, kind, "s1", json.dumps(geometry), *extra.values()),
        )


VICTIM_HOME = (HOME[0] + 0.02, HOME[1])  # ~1.7 km east


def test_drive_through_an_exclusion_zone_between_sparse_fixes_is_caught(database_url: str) -> None:
    _setup(database_url)
    _zone(database_url, "victim-street", "exclusion", {"type": "Point", "coordinates": list(VICTIM_HOME)}, radius_m=150)
    p = Pipeline(database_url)
    west = (VICTIM_HOME[0] - 0.01, VICTIM_HOME[1])  # ~840 m either side, outside everything but home
    east = (VICTIM_HOME[0] + 0.01, VICTIM_HOME[1])
    p.process([msg(T0, *west)])
    out = p.process([msg(T0 + 60_000, *east)])  # 1.7 km in 60 s: 28 m/s, plausible
    kinds = [a["kind"] for a in out.alerts]
    assert "exclusion_zone_crossed" in kinds
    crossed = next(a for a in out.alerts if a["kind"] == "exclusion_zone_crossed")
    assert crossed["zone_id"] == "victim-street" and crossed["from_time_ms"] == T0
    # implausible speed (a GPS jump): no crossing
    out = p.process([msg(T0 + 61_000, *west)])
    assert "exclusion_zone_crossed" not in [a["kind"] for a in out.alerts]
    assert _count(database_url, "SELECT count(*) FROM violations WHERE rule = 'crossing' AND closed_at IS NOT NULL") == 1
    p.close()


def test_dwell_configured_per_zone(database_url: str) -> None:
    _setup(database_url)
    _zone(database_url, "school", "exclusion", {"type": "Point", "coordinates": list(VICTIM_HOME)}, radius_m=300,
          dwell_open_fixes=3, dwell_open_s=20)
    p = Pipeline(database_url)
    inside = [msg(T0 + k * 10_000, *VICTIM_HOME) for k in range(4)]
    opened = [[a["kind"] for a in p.process([m]).alerts if a["zone_id"] == "school"] for m in inside]
    assert opened == [[], [], ["exclusion_zone_entered"], []]  # third fix: 3 fixes over 20 s
    p.close()


def test_authorised_absence_turns_the_rule_off(database_url: str) -> None:
    _setup(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO absences (subject_id, zone_id, starts_at, ends_at, reason, created_by) VALUES"
                     " ('s1', 'home', to_timestamp(%s), to_timestamp(%s), 'hospital', 'officer')",
                     (T0 / 1000, T0 / 1000 + 3600))
    p = Pipeline(database_url)
    assert p.process([msg(T0 + 1000, *AWAY)]).alert_ids == []  # away from home, but authorised
    assert len(p.process([msg(T0 + 3_601_000, *AWAY)]).alert_ids) == 1  # the absence is over
    p.close()


def test_victim_proximity_with_distance_and_closing_speed(database_url: str) -> None:
    _setup(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO devices (id, kind) VALUES ('v1', 'victim_phone')")
        conn.execute("INSERT INTO victim_links (victim_device_id, subject_id, radius_m) VALUES ('v1', 's1', 500)")
    p = Pipeline(database_url)
    p.process([msg(T0, *HOME)])  # the person at home
    far = (HOME[0] + 0.012, HOME[1])  # ~1 km east
    assert p.process([msg(T0 + 1000, *far, device="v1")]).alert_ids == []
    near = (HOME[0] + 0.004, HOME[1])  # the victim walks to ~330 m from the person
    out = p.process([msg(T0 + 61_000, *near, device="v1")])
    (alert,) = out.alerts
    assert alert["kind"] == "victim_proximity" and alert["device_id"] == "d1"
    assert 300 < alert["distance_m"] < 360
    assert alert["closing_speed_mps"] > 0  # the gap shrank by ~670 m in 60 s
    assert alert["fix_time_ms"] == T0  # refers to the person's stored fix
    p.close()


def test_implausible_fixes_are_stored_with_flags_but_never_drive_state(database_url: str) -> None:
    import time as _time

    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0, *HOME)])
    future = int(_time.time() * 1000) + 3_600_000
    out = p.process([
        msg(T0 + 1000, HOME[0] + 1.0, HOME[1]),  # 84 km in a second: teleport
        msg(T0 + 2000, 0.0, 0.0),  # zero island
        InboundMessage(fixes_topic("d1"), json.dumps({"t": T0 + 3000, "lat": AWAY[1], "lon": AWAY[0],
                                                      "acc": 900.0}).encode()),  # poor accuracy
        msg(future, *AWAY),  # an hour ahead of the server clock
    ])
    assert (out.stored, out.implausible, out.alert_ids) == (4, 4, [])
    with psycopg.connect(database_url) as conn:
        flags = [r[0] for r in conn.execute("SELECT flags FROM positions WHERE flags <> '{}' ORDER BY device_time")]
    assert flags == [["teleport"], ["zero_island"], ["poor_accuracy"], ["future_time"]]
    # the next plausible fix away from home is judged against the last plausible one
    assert len(p.process([msg(T0 + 600_000, *AWAY)]).alert_ids) == 1
    p.close()


def test_status_reports_raise_device_alerts_and_silence_raises_communication_loss(database_url: str) -> None:
    from telemetry.wire import status_topic

    _setup(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE device_profiles SET report_interval_s = 1, grace_s = 0")
    p = Pipeline(database_url)

    def status(t: int, **body: Any) -> InboundMessage:
        return InboundMessage(status_topic("d1"), json.dumps({"t": t, **body}).encode())

    import time as _time

    now = int(_time.time() * 1000)
    out = p.process([status(now, bat=80, strap="closed", case="closed", gps=True),
                     status(now + 1000, bat=15, strap="opened", case="closed", gps=True)])
    assert sorted(a["kind"] for a in out.alerts) == ["battery_low", "strap_opened"]
    assert p.process([status(now + 1000, bat=15, strap="opened")]).alert_ids == []  # replay
    p2 = Pipeline(database_url)  # a restart remembers the last report: no second strap alert
    assert p2.process([status(now + 2000, bat=14, strap="opened", gps=True)]).alert_ids == []
    bad = p2.process([InboundMessage(status_topic("d1"), b'{"t": 1, "strap": "melted"}')])
    assert bad.dead_letters == 1
    _time.sleep(1.2)
    ids = p2.check_silence()
    assert len(ids) == 1 and p2.check_silence() == []  # one open communication-loss alert per device
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT kind, status_time IS NOT NULL FROM alerts WHERE id = %s", (ids[0],)).fetchone()
    assert row == ("communication_loss", True)
    p.close()
    p2.close()


def test_device_clock_is_judged_against_arrival_not_processing(database_url: str) -> None:
    """A backlog is not a skewed clock: reports read by the client 10 minutes before the
    batch is processed (``received_ms``) raise no ``device_clock_off``; a report whose
    time is 10 minutes behind its own arrival does."""
    from telemetry.wire import status_topic

    _setup(database_url)
    p = Pipeline(database_url)
    import time as _time

    arrived = int(_time.time() * 1000) - 600_000  # read 10 minutes ago, processed now

    def status(device_t: int, received: int) -> InboundMessage:
        return InboundMessage(status_topic("d1"), json.dumps({"t": device_t, "bat": 80}).encode(), received)

    out = p.process([status(arrived, arrived), status(arrived + 1000, arrived + 1000)])
    assert [a["kind"] for a in out.alerts] == []
    out = p.process([status(arrived + 2000 - 600_000, arrived + 2000)])
    assert out.alerts == []  # an older report than the last one assessed: stored, changes nothing
    out = p.process([status(arrived + 5000, arrived + 5000 + 600_000)])
    assert [a["kind"] for a in out.alerts] == ["device_clock_off"]
    # taken from a backlog (not live): behind its arrival decides nothing
    p.close()
    _setup_clean = Pipeline(database_url)
    out = _setup_clean.process([status(arrived + 9000, arrived + 9000 + 600_000)], live=False)
    assert out.alerts == []
    _setup_clean.close()


def test_device_clock_in_a_backlog_is_judged_against_the_batchs_delay(database_url: str) -> None:
    """A batch taken from a backlog (``live`` false) whose fix messages all arrived about
    10 minutes after their device time: that is its delivery delay. A status report as late
    as the rest is fine; one 15 minutes further behind is a skewed clock."""
    from telemetry.wire import status_topic

    _setup(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO devices (id, subject_id) VALUES ('d2', 's1')")
    p = Pipeline(database_url)
    import time as _time

    now = int(_time.time() * 1000)
    sent = now - 600_000  # sent 10 minutes ago, read now

    def fix(k: int) -> InboundMessage:
        body = {"t": sent + k, "lat": HOME[1], "lon": HOME[0], "acc": 5.0}
        return InboundMessage(fixes_topic("d1"), json.dumps(body).encode(), now + k)

    def status(device: str, device_t: int) -> InboundMessage:
        return InboundMessage(status_topic(device), json.dumps({"t": device_t, "bat": 80}).encode(), now + 50)

    out = p.process([*(fix(k) for k in range(30)), status("d1", sent + 40), status("d2", sent + 40 - 900_000)],
                    live=False)
    assert [(a["kind"], a["device_id"]) for a in out.alerts] == [("device_clock_off", "d2")]
    # fixes that lag more than the reports (a replay's simulated times, say) overestimate
    # the wait: that excuses lateness only, and a report on time never looks ahead
    old = [InboundMessage(fixes_topic("d1"), json.dumps({"t": sent - 3_600_000 + k, "lat": HOME[1], "lon": HOME[0],
                                                          "acc": 5.0}).encode(), now + 100 + k) for k in range(30)]
    out = p.process([*old, status("d1", now + 60)], live=False)
    assert out.alerts == []
    p.close()


def test_binary_payload_takes_the_same_path(database_url: str) -> None:
    from telemetry.wire import encode_fix, encode_payload, msgpack_topic

    _setup(database_url)
    p = Pipeline(database_url)
    payload = encode_payload([encode_fix(t_ms=T0 + k * 1000, lat=HOME[1], lon=HOME[0], acc=5.0, seq=k)
                              for k in range(3)], binary=True)
    out = p.process([InboundMessage(msgpack_topic("d1"), payload)])
    assert out.stored == 3
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT lat, lon, accuracy_m, seq FROM positions ORDER BY device_time LIMIT 1").fetchone()
    assert row == (HOME[1], HOME[0], 5.0, 0)
    p.close()


def test_global_zone_violation_closes_when_the_fix_is_far_enough_not_to_be_listed(database_url: str) -> None:
    _setup(database_url)
    with psycopg.connect(database_url) as conn:  # a school every subject must avoid (no category: all)
        conn.execute("INSERT INTO zones (id, name, kind, geometry, radius_m) VALUES ('school', 'school', 'exclusion',"
                     " %s, 200)", (json.dumps({"type": "Point", "coordinates": list(VICTIM_HOME)}),))
    p = Pipeline(database_url)
    out = p.process([msg(T0, *VICTIM_HOME)])
    assert [a["zone_id"] for a in out.alerts if a["kind"] == "exclusion_zone_entered"] == ["school"]
    p.process([msg(T0 + 120_000, *HOME), msg(T0 + 240_000, *HOME)])  # 1.7 km away: two compliant fixes
    assert _count(database_url, "SELECT count(*) FROM violations WHERE zone_id = 'school' AND closed_at IS NOT NULL") == 1
    p.close()
