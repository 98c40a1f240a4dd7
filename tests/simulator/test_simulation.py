"""A small simulated fleet against the real stack: every scenario once, verified
through the API on counts (never on times)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from nazorat.cli import apply_sim_profiles as apply_profiles
from nazorat.cli import main
from simulator.background import BackgroundConfig
from simulator.run import simulate
from simulator.scenarios import SCENARIOS, SimConfig, build
from simulator.truth import read_truth
from tests.conftest import Stack

# 2 simulated hours (40 min of curfew, then a day) replayed 180x faster: ~40 s of traffic
CONFIG = SimConfig(devices=50, seed=7, span_s=7200.0, night_s=2400.0, compression=180.0, prefix="simt")
# beside it, for the same 40 s: 200 compliant devices in real time, a fix every 2 s each
BACKGROUND = BackgroundConfig(devices=200, seed=3, interval_s=2.0, duration_s=40.0, prefix="simt")


def test_plan_is_deterministic_and_covers_every_scenario() -> None:
    a = build(SimConfig(devices=50, seed=3, compression=180.0, start_wall_ms=1_764_000_000_000))
    b = build(SimConfig(devices=50, seed=3, compression=180.0, start_wall_ms=1_764_000_000_000))
    assert [(m.sim_s, m.topic, m.payload, m.status) for m in a.messages] == \
        [(m.sim_s, m.topic, m.payload, m.status) for m in b.messages]
    assert {e.scenario for e in a.events} == set(SCENARIOS)
    assert any(e.late for e in a.events)
    # never ahead of the wall clock in the replay: the fix sent last is the newest possible
    start = 1_764_000_000_000
    for m in a.messages:
        for t in m.fix_times:
            assert t <= start + m.sim_s * 1000 / 180.0


def test_fleet_run_recall_one_and_no_false_alerts(stack: Stack, tmp_path: Path) -> None:
    """The plan's 50 devices and, beside them, a background fleet of 200 compliant devices
    reporting in real time (generated as published, registered through the import
    routes): every injected event reported, no false alert from either, no background
    fix lost."""
    truth = tmp_path / "truth.jsonl"
    result = simulate(CONFIG, api_url=stack.api_url, token=stack.token, mqtt_url=stack.mqtt_url, truth_path=truth,
                      before_publish=lambda plan: apply_profiles(stack.database_url, plan), verify_timeout_s=120.0,
                      background=BACKGROUND, processes=2)
    report = result.report
    assert report is not None
    print(report.text())
    assert result.published.acked == result.published.messages
    assert report.devices == 50 + BACKGROUND.devices
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT device_id) FROM positions WHERE device_id LIKE 'simt-b%'"
                           ).fetchone()
    assert row == (BACKGROUND.expected_fixes, BACKGROUND.devices)
    run, events = read_truth(truth)
    assert run.started_wall_ms is not None and len(events) == len(result.plan.events)
    assert {e.scenario for e in events} == set(SCENARIOS)
    assert report.missed == [], report.text()
    assert report.false_alerts == 0, report.text()
    assert report.late_mismatch == 0, report.text()
    assert report.recall == 1.0
    for name in SCENARIOS:
        assert report.scenarios[name].recall == 1.0, name


def test_simulate_and_verify_commands(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``nazorat simulate --verify`` (a compressed replay without --database-url leaves
    out the two scenarios that need profiles; 20 background devices beside it), then
    ``nazorat verify`` on its truth file."""
    truth, summary, again = tmp_path / "t.jsonl", tmp_path / "s.json", tmp_path / "v.json"
    common = ["--api-url", stack.api_url, "--token", stack.token]
    assert main(["simulate", *common, "--mqtt-url", stack.mqtt_url, "--devices", "16", "--seed", "5", "--prefix",
                 "simc", "--duration", "15", "--truth", str(truth), "--verify", "--report-json", str(summary),
                 "--background", "20", "--background-interval", "3"]) == 0
    err = capsys.readouterr().err  # the live display and the summary table (rich, on stderr)
    assert "achieved rate" in err and "summary" in err and "recall" in err
    first = json.loads(summary.read_text())
    assert first["recall"] == 1.0 and first["false_alerts"] == 0 and first["late_mismatch"] == 0
    assert first["devices"] == 16 + 20
    assert set(first["scenarios"]) == set(SCENARIOS) - {"gps_loss", "communication_loss"}
    assert main(["verify", str(truth), *common, "--json", str(again)]) == 0
    second = json.loads(again.read_text())
    assert (second["expected"], second["detected"], second["false_alerts"]) == \
        (first["expected"], first["detected"], 0)
    assert "recall 1.000" in capsys.readouterr().out
