"""What a worker knows after a restart: the last position of each device is reloaded from
stored fixes that were plausible and in order, and a flagged fix never becomes the
plausibility reference for the next one (before or after a restart). Against a real
PostgreSQL, through ``Pipeline(database_url).process(messages)``."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from telemetry.model import InboundMessage
from telemetry.pipeline import Pipeline
from telemetry.wire import fixes_topic
from tests.telemetry.test_pipeline import HOME, T0, _setup

FAR = (HOME[0] + 1.2, HOME[1])  # about 100 km east: no one gets there in minutes


def msg(t_ms: int, lon: float, lat: float, **extra: Any) -> InboundMessage:
    return InboundMessage(fixes_topic("d1"), json.dumps({"t": t_ms, "lat": lat, "lon": lon, "acc": 5.0, **extra}).encode())


def stored(url: str) -> dict[int, tuple[bool, list[str]]]:
    """device time -> (late, flags) of every stored fix."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT (extract(epoch FROM device_time) * 1000)::bigint, late, flags FROM positions"
                            " ORDER BY device_time").fetchall()
    return {int(t): (late, list(flags)) for t, late, flags in rows}


def test_a_flagged_fix_is_never_the_reference_for_the_next_one_in_one_batch(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0, *HOME), msg(T0 + 60_000, *FAR), msg(T0 + 120_000, *HOME)])
    assert stored(database_url) == {T0: (False, []), T0 + 60_000: (False, ["teleport"]), T0 + 120_000: (False, [])}
    p.close()


def test_a_flagged_fix_is_never_the_reference_across_batches(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0, *HOME)])
    p.process([msg(T0 + 60_000, *FAR)])
    p.process([msg(T0 + 120_000, *HOME)])
    assert stored(database_url)[T0 + 120_000] == (False, [])
    p.close()


def test_after_a_restart_the_reference_is_the_last_plausible_fix_not_a_flagged_newer_one(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0, *HOME)])
    p.process([msg(T0 + 60_000, *FAR)])  # flagged teleport: stored, never evaluated
    p.close()
    restarted = Pipeline(database_url)
    out = restarted.process([msg(T0 + 120_000, *HOME)])
    assert (out.stored, out.late, out.implausible, out.alert_ids) == (1, 0, 0, [])
    assert stored(database_url)[T0 + 120_000] == (False, [])
    # a fix between the plausible one and the flagged one is in order, not late
    out = restarted.process([msg(T0 + 90_000, *HOME)])
    assert (out.stored, out.late) == (1, 1)  # older than T0+120 s, evaluated just now: late
    restarted.close()


def test_after_a_restart_a_fix_older_than_the_last_evaluated_one_is_late(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    p.process([msg(T0 + 600_000, *HOME)])
    assert p.process([msg(T0 + 300_000, *FAR)]).late == 1  # late, far away: stored as late, unflagged
    p.close()
    restarted = Pipeline(database_url)
    out = restarted.process([msg(T0 + 400_000, *HOME), msg(T0 + 660_000, *HOME)])
    # the reference reloaded is the in-order fix at T0+600 s: T0+400 s is late, T0+660 s plausible
    assert (out.stored, out.late, out.implausible, out.alert_ids) == (2, 1, 0, [])
    assert stored(database_url)[T0 + 660_000] == (False, [])
    restarted.close()


def test_after_a_restart_an_open_violation_is_not_opened_again(database_url: str) -> None:
    _setup(database_url)
    p = Pipeline(database_url)
    assert len(p.process([msg(T0, *HOME), msg(T0 + 60_000, HOME[0], HOME[1] + 0.01)]).alert_ids) == 1
    p.close()
    restarted = Pipeline(database_url)
    assert restarted.process([msg(T0 + 120_000, HOME[0], HOME[1] + 0.01)]).alert_ids == []
    restarted.close()


def test_after_a_restart_a_clock_still_off_and_gps_still_lost_are_not_alerted_again(database_url: str) -> None:
    """The part of a device's condition its reports do not carry (clock judged off, no GPS
    since when, alerted) is resumed after a restart: in a 10,000-device run every device
    with a skewed clock raised ``device_clock_off`` once more after each reconnect."""
    import time

    from telemetry.wire import status_topic

    _setup(database_url)
    now = int(time.time() * 1000)

    def status(t_ms: int, **body: Any) -> InboundMessage:  # read at t + 15 min: a clock 15 minutes behind
        return InboundMessage(status_topic("d1"), json.dumps({"t": t_ms, **body}).encode(), t_ms + 900_000)

    p = Pipeline(database_url)
    first = p.process([status(now - 3_000_000, gps=False)])
    assert [a["kind"] for a in first.alerts] == ["device_clock_off"]
    late = p.process([status(now - 3_000_000 + 700_000, gps=False)])  # no fix for 700 s > 600 s allowed
    assert [a["kind"] for a in late.alerts] == ["gps_fix_lost"]
    p.close()
    restarted = Pipeline(database_url)
    again = restarted.process([status(now - 3_000_000 + 760_000, gps=False)])
    assert again.alerts == []  # the same episodes: nothing new to say
    fixed = restarted.process([InboundMessage(status_topic("d1"), json.dumps({"t": now, "gps": True}).encode(), now)])
    assert fixed.alerts == []  # clock and GPS fine again: the episodes end
    restarted.close()
    anew = Pipeline(database_url)
    out = anew.process([status(now + 1000, gps=False)])
    assert [a["kind"] for a in out.alerts] == ["device_clock_off"]  # a new episode is alerted
    anew.close()
