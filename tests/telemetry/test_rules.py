"""The dwell state machine."""

from __future__ import annotations

from telemetry.rules import COMPLIANT, NEUTRAL, RULE_OFF, VIOLATING, Dwell, Pending, step


def run(signals: list[int], dwell: Dwell, start_open: bool = False) -> list[str | None]:
    is_open, pending, out = start_open, None, []
    for i, s in enumerate(signals):
        action, pending = step(is_open, pending, s, i * 10_000, dwell)
        out.append(action)
        if action is not None:
            is_open = action == "open"
    return out


def test_defaults_open_at_once_and_close_after_two() -> None:
    d = Dwell()
    assert run([VIOLATING, COMPLIANT, VIOLATING, COMPLIANT, COMPLIANT], d) == ["open", None, None, None, "close"]


def test_dwell_by_count_and_time_and_neutral_fixes_do_not_reset() -> None:
    d = Dwell(open_fixes=3, open_s=25)
    assert run([VIOLATING, NEUTRAL, VIOLATING, VIOLATING], d) == [None, None, None, "open"]
    assert run([VIOLATING, COMPLIANT, VIOLATING, VIOLATING, VIOLATING, VIOLATING], d) == [None] * 5 + ["open"]


def test_rule_off_closes_at_once() -> None:
    assert run([RULE_OFF], Dwell(), start_open=True) == ["close"]
    assert step(False, Pending(1, 0), RULE_OFF, 5, Dwell()) == (None, None)
