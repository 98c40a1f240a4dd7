"""Property tests of the dwell state machine (``telemetry.rules.step``) and of the rule
engine's zone rule, each against a slow, obvious reference written from the docstring:
"a violation opens after ``open_fixes`` consecutive violating fixes spanning at least
``open_s`` seconds, and closes after ``close_fixes`` compliant fixes spanning ``close_s``;
neutral fixes neither count nor reset; a rule that stops applying closes at once"."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.rules import COMPLIANT, NEUTRAL, RULE_OFF, VIOLATING, Dwell, step
from telemetry.transitions import RuleEngine
from tests.telemetry.registry import fix, snapshot, square

SIGNALS = st.sampled_from([VIOLATING, COMPLIANT, NEUTRAL, RULE_OFF])
DWELLS = st.builds(Dwell, st.integers(1, 4), st.integers(0, 120), st.integers(1, 4), st.integers(0, 120))


def reference(events: list[tuple[int, int]], dwell: Dwell, start_open: bool = False) -> list[str | None]:
    """For each (signal, t_ms): look back over every non-neutral fix since the last
    change of state, and count the run of fixes pointing the other way at its end."""
    is_open = start_open
    since_change: list[tuple[int, int]] = []
    out: list[str | None] = []
    for signal, t_ms in events:
        if signal == NEUTRAL:
            out.append(None)
            continue
        if signal == RULE_OFF:
            out.append("close" if is_open else None)
            is_open, since_change = False, []
            continue
        since_change.append((signal, t_ms))
        other_way = COMPLIANT if is_open else VIOLATING
        run = list(itertools.takewhile(lambda e, w=other_way: e[0] == w, reversed(since_change)))
        fixes, seconds = (dwell.close_fixes, dwell.close_s) if is_open else (dwell.open_fixes, dwell.open_s)
        if run and len(run) >= fixes and (t_ms - run[-1][1]) / 1000 >= seconds:
            out.append("close" if is_open else "open")
            is_open, since_change = not is_open, []
        else:
            out.append(None)
    return out


def machine(events: list[tuple[int, int]], dwell: Dwell, start_open: bool = False) -> list[str | None]:
    is_open, pending, out = start_open, None, []
    for signal, t_ms in events:
        action, pending = step(is_open, pending, signal, t_ms, dwell)
        out.append(action)
        if action is not None:
            is_open = action == "open"
    return out


def _timed(signals: list[int], gaps_s: list[int]) -> list[tuple[int, int]]:
    times = list(itertools.accumulate(gaps_s[: len(signals)], initial=0))
    return [(s, 1_000_000 + t * 1000) for s, t in zip(signals, times, strict=False)]


@settings(max_examples=400, deadline=None)
@given(st.lists(SIGNALS, max_size=40), st.lists(st.integers(0, 90), min_size=40, max_size=40), DWELLS, st.booleans())
def test_the_dwell_machine_matches_its_reference(signals: list[int], gaps_s: list[int], dwell: Dwell,
                                                 start_open: bool) -> None:
    events = _timed(signals, gaps_s)
    assert machine(events, dwell, start_open) == reference(events, dwell, start_open)


@settings(max_examples=200, deadline=None)
@given(st.lists(SIGNALS, max_size=40), st.lists(st.integers(0, 90), min_size=40, max_size=40), DWELLS)
def test_opens_and_closes_alternate(signals: list[int], gaps_s: list[int], dwell: Dwell) -> None:
    actions = [a for a in machine(_timed(signals, gaps_s), dwell) if a is not None]
    assert actions == ["open", "close"] * (len(actions) // 2) + ["open"] * (len(actions) % 2)


# --- the engine's zone rule against the same reference -------------------------------------
ZONE = square("school", "exclusion", 0, 0, 400)  # boundary 200 m from the centre
# where a fix is (east metres, accuracy) -> its signal for an exclusion zone
PLACES = {"inside": (0.0, 10.0, VIOLATING), "outside": (600.0, 10.0, COMPLIANT), "straddling": (200.0, 50.0, NEUTRAL)}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(PLACES)), st.sampled_from(["gps", "gps", "cell", "wifi"])),
                min_size=1, max_size=25),
       st.lists(st.integers(1, 90), min_size=25, max_size=25), DWELLS, st.integers(1, 5))
def test_the_engine_zone_rule_matches_the_reference(fixes: list[tuple[str, str]], gaps_s: list[int], dwell: Dwell,
                                                    batch: int) -> None:
    snap = snapshot([ZONE], dwell={"school": dwell})
    times = list(itertools.accumulate(gaps_s[: len(fixes)], initial=0))
    stream = [fix(t, PLACES[place][0], 0, acc=PLACES[place][1], src=src)
              for (place, src), t in zip(fixes, times, strict=False)]
    expected = reference([(PLACES[place][2] if src == "gps" else NEUTRAL, f.time_ms)
                          for (place, src), f in zip(fixes, stream, strict=True)], dwell)
    engine = RuleEngine({})
    got: dict[int, str] = {}
    n = itertools.count(1)
    for k in range(0, len(stream), batch):  # batches of a few fixes: state carries across them
        plan = engine.plan(snap, stream[k:k + batch])
        engine.apply(plan, {t.key: next(n) for t in plan.transitions if t.action == "open"})
        got.update({t.ref.t_ms: t.action for t in plan.transitions if t.action in ("open", "close")})
    assert [got.get(f.time_ms) for f in stream] == expected
