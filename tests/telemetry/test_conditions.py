"""Device conditions from status reports."""

from __future__ import annotations

from telemetry.conditions import DeviceCondition, Profile, assess
from telemetry.model import Status

T = 1_764_151_200_000


def run(reports: list[Status], profile: Profile | None = None) -> list[list[str]]:
    state: DeviceCondition | None = None
    out = []
    for s in reports:
        alerts, state = assess(state, s, profile or Profile(), received_ms=s.time_ms)
        out.append([a for a, _ in alerts])
    return out


def test_changes_alert_once() -> None:
    r = [Status("d", T, battery_pct=50, strap="closed", case_open=False),
         Status("d", T + 1, battery_pct=19, strap="opened", case_open=True),
         Status("d", T + 2, battery_pct=18, strap="opened", case_open=True),
         Status("d", T + 3, battery_pct=4, strap="cut"),
         Status("d", T + 4, battery_pct=3, strap="cut")]
    assert run(r) == [[], ["strap_opened", "case_tamper", "battery_low"], [], ["strap_cut", "battery_critical"], []]


def test_gps_loss_after_the_profile_allowance_and_reset_on_fix() -> None:
    p = Profile(gps_loss_s=60)
    r = [Status("d", T + k * 30_000, gps_fix=False) for k in range(4)] + [Status("d", T + 200_000, gps_fix=True),
                                                                          Status("d", T + 230_000, gps_fix=False)]
    assert run(r, p) == [[], [], ["gps_fix_lost"], [], [], []]


def test_clock_skew_and_last_will() -> None:
    state = None
    alerts, state = assess(state, Status("d", T), Profile(clock_skew_s=60), received_ms=T + 600_000)
    assert [a for a, _ in alerts] == ["device_clock_off"]
    alerts, state = assess(state, Status("d", T + 1, online=False), Profile(), received_ms=T + 600_000)
    assert [a for a, _ in alerts] == ["device_offline"]


def test_a_last_will_is_news_whatever_time_it_carries() -> None:
    from telemetry.conditions import is_news

    state: DeviceCondition | None = None
    connect = T
    for k in range(3):  # reports after connecting
        s = Status("d", connect + 60_000 * (k + 1), battery_pct=80, strap="closed")
        assert is_news(state, s)
        _, state = assess(state, s, Profile(), received_ms=s.time_ms)
    assert state is not None
    will = Status("d", connect, online=False)  # the will carries the connect time
    assert is_news(state, will)
    assert not is_news(state, Status("d", connect + 1000, battery_pct=10))  # an old plain report is not
    assert not is_news(state, Status("d", connect + 180_000, battery_pct=10))  # nor one as old as the last
    assert is_news(state, Status("d", connect + 180_001, battery_pct=10))
    assert is_news(None, Status("d", connect, battery_pct=10))
    alerts, after = assess(state, will, Profile(), received_ms=connect + 240_000)
    assert [a for a, _ in alerts] == ["device_offline"]
    # the last report's time does not move back, and what the device said is kept
    assert after.last.time_ms == connect + 180_000
    assert (after.last.online, after.last.battery_pct, after.last.strap) == (False, 80, "closed")
    # a newer report after the will is still news; one from before it is not
    assert is_news(after, Status("d", connect + 180_001))
    assert not is_news(after, Status("d", connect + 120_000))


def _kinds(alerts: list[tuple[str, dict[str, object]]]) -> list[str]:
    return [a for a, _ in alerts]


def test_clock_off_alerts_once_and_again_after_it_was_right() -> None:
    p = Profile(clock_skew_s=60)
    state: DeviceCondition | None = None
    seen = []
    for k, skew_s in enumerate([0, 61, 90, 300, 10, -61, -61]):
        t = T + k * 60_000
        alerts, state = assess(state, Status("d", t), p, received_ms=t - skew_s * 1000)
        seen.append(_kinds(alerts))
    assert seen == [[], ["device_clock_off"], [], [], [], ["device_clock_off"], []]
    alerts, _ = assess(None, Status("d", T), p, received_ms=T + 60_000)  # exactly at the allowance: fine
    assert alerts == []
    alerts, _ = assess(None, Status("d", T), p, received_ms=T + 61_000)
    assert alerts == [("device_clock_off", {"skew_s": 61.0})]


def test_gps_loss_alerts_again_after_a_fix_reset_it() -> None:
    p = Profile(gps_loss_s=60)
    r = [Status("d", T + k * 30_000, gps_fix=False) for k in range(4)]
    r += [Status("d", T + 150_000, gps_fix=True)]
    r += [Status("d", T + 180_000 + k * 30_000, gps_fix=False) for k in range(4)]
    assert run(r, p) == [[], [], ["gps_fix_lost"], [], [], [], [], ["gps_fix_lost"], []]


def test_gps_loss_is_measured_from_the_first_report_without_a_fix_and_says_since_when() -> None:
    p = Profile(gps_loss_s=60)
    state: DeviceCondition | None = None
    out = []
    for k, gps in enumerate([True, False, None, False, False]):
        s = Status("d", T + k * 30_000, gps_fix=gps)
        alerts, state = assess(state, s, p, received_ms=s.time_ms)
        out.append(alerts)
    # lost at T+30 s; a report saying nothing about GPS keeps the count; at T+90 s: 60 s lost
    assert out == [[], [], [], [("gps_fix_lost", {"since_ms": T + 30_000})], []]


def test_battery_thresholds_are_strict_and_alert_on_the_crossing_only() -> None:
    p = Profile(battery_low=20, battery_critical=5)
    r = [Status("d", T, battery_pct=20), Status("d", T + 1, battery_pct=19.5), Status("d", T + 2, battery_pct=5),
         Status("d", T + 3, battery_pct=4.9), Status("d", T + 4, battery_pct=50), Status("d", T + 5, battery_pct=3)]
    assert run(r, p) == [[], ["battery_low"], [], ["battery_critical"], [], ["battery_critical"]]
    assert run([Status("d", T, battery_pct=10)], p) == [["battery_low"]]  # first report already low
    assert run([Status("d", T, battery_pct=4)], p) == [["battery_critical"]]
    alerts, _ = assess(None, Status("d", T, battery_pct=4), p, received_ms=T)
    assert alerts == [("battery_critical", {"battery_pct": 4})]


def test_strap_and_case_alert_on_the_change_with_details() -> None:
    r = [Status("d", T, strap="opened", case_open=True), Status("d", T + 1, strap="closed", case_open=False),
         Status("d", T + 2, strap="cut", case_open=True), Status("d", T + 3, strap="opened")]
    out = []
    state: DeviceCondition | None = None
    for s in r:
        alerts, state = assess(state, s, Profile(), received_ms=s.time_ms)
        out.append(alerts)
    assert out == [[("strap_opened", {"strap": "opened"}), ("case_tamper", {})], [],
                   [("strap_cut", {"strap": "cut"}), ("case_tamper", {})], [("strap_opened", {"strap": "opened"})]]


def test_a_will_keeps_the_conditions_state_and_a_first_will_stands_alone() -> None:
    p = Profile(gps_loss_s=60, clock_skew_s=60)
    _, state = assess(None, Status("d", T, gps_fix=False), p, received_ms=T + 120_000)
    assert state.clock_off and state.gps_lost_since_ms == T
    alerts, after = assess(state, Status("d", T + 1000, online=False), p, received_ms=T + 120_000)
    assert _kinds(alerts) == ["device_offline"]
    assert (after.gps_lost_since_ms, after.gps_alerted, after.clock_off) == (T, False, True)
    alerts, first = assess(None, Status("d", T, online=False), p, received_ms=T)
    assert _kinds(alerts) == ["device_offline"]
    assert first == DeviceCondition(Status("d", T, online=False))


def test_alert_details_are_exact() -> None:
    alerts, _ = assess(None, Status("d", T, battery_pct=15), Profile(clock_skew_s=60), received_ms=T + 61_250)
    assert alerts == [("battery_low", {"battery_pct": 15}), ("device_clock_off", {"skew_s": 61.2})]


def test_a_will_newer_than_the_last_report_moves_time_on_and_keeps_the_gps_alert_state() -> None:
    p = Profile(gps_loss_s=60)
    state: DeviceCondition | None = None
    for k in range(4):
        _, state = assess(state, Status("d", T + k * 30_000, gps_fix=False), p, received_ms=T + k * 30_000)
    assert state is not None and state.gps_alerted
    alerts, after = assess(state, Status("d", T + 200_000, online=False), p, received_ms=T + 200_000)
    assert _kinds(alerts) == ["device_offline"]
    assert after.last.time_ms == T + 200_000
    assert (after.gps_lost_since_ms, after.gps_alerted) == (T, True)
    # so the loss is not reported again by the next report without a fix
    alerts, _ = assess(after, Status("d", T + 230_000, gps_fix=False), p, received_ms=T + 230_000)
    assert alerts == []


def test_clock_behind_a_report_taken_from_a_backlog_is_undecided() -> None:
    """A report that may have waited in the broker's queue (``live`` false) is late by the
    queueing: a device time behind its arrival then decides nothing; ahead of it, it is
    always a skewed clock (queueing only delays). The next live report decides."""
    p = Profile(clock_skew_s=120)
    alerts, state = assess(None, Status("d", T), p, received_ms=T + 300_000, live=False)
    assert alerts == [] and not state.clock_off
    alerts, state = assess(state, Status("d", T + 1000), p, received_ms=T + 1000 + 600_000, live=False)
    assert alerts == [] and not state.clock_off
    alerts, state = assess(state, Status("d", T + 2000), p, received_ms=T + 2000 - 300_000, live=False)
    assert _kinds(alerts) == ["device_clock_off"]  # ahead of its arrival: skewed, backlog or not
    # an earlier "off" is kept while undecided, and cleared by a live report that is right
    alerts, state = assess(state, Status("d", T + 3000), p, received_ms=T + 3000 + 300_000, live=False)
    assert alerts == [] and state.clock_off
    alerts, state = assess(state, Status("d", T + 4000), p, received_ms=T + 4000, live=True)
    assert alerts == [] and not state.clock_off
    alerts, state = assess(state, Status("d", T + 5000), p, received_ms=T + 5000 + 300_000, live=True)
    assert _kinds(alerts) == ["device_clock_off"]


def test_a_late_report_excused_by_the_batchs_estimated_wait_leaves_a_clock_off_as_it_was() -> None:
    """A batch from a backlog whose fixes lag an hour (store-and-forward uploads, or a
    compressed replay's simulated times) excuses a report 15 minutes late; that must not
    clear a clock already found 15 minutes behind, or the next live report alerts it again
    (the 10,000-device e2e run: 118 repeated device_clock_off)."""
    p = Profile(clock_skew_s=120)
    alerts, state = assess(None, Status("d", T), p, received_ms=T + 900_000)
    assert [k for k, _ in alerts] == ["device_clock_off"]
    alerts, state = assess(state, Status("d", T + 1000), p, received_ms=T + 1000 + 900_000, waited_ms=3_600_000)
    assert alerts == [] and state.clock_off  # excused: undecided, still off
    alerts, state = assess(state, Status("d", T + 2000), p, received_ms=T + 2000 + 900_000)
    assert alerts == [] and state.clock_off  # the same episode
    # late beyond the estimated wait: off (and alerted when it was not yet)
    alerts, fresh = assess(None, Status("d", T), p, received_ms=T + 900_000, waited_ms=600_000)
    assert [(k, d["skew_s"]) for k, d in alerts] == [("device_clock_off", 300.0)]
    # excused with nothing known before: undecided means not off
    alerts, fresh = assess(None, Status("d", T), p, received_ms=T + 900_000, waited_ms=3_600_000)
    assert alerts == [] and not fresh.clock_off
    # on time: fine again, whatever the estimate
    alerts, state = assess(state, Status("d", T + 3000), p, received_ms=T + 3000, waited_ms=3_600_000)
    assert alerts == [] and not state.clock_off
