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
