"""The Grafana dashboard (deploy/grafana) uses only metrics the engine exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import telemetry.metrics  # noqa: F401 - registers the metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "nazorat.json"


def test_every_dashboard_series_is_exported() -> None:
    # a labelled metric has no sample until a label is used: take the family names too
    exported = {m.name + suffix for m in REGISTRY.collect() for suffix in ("", "_total", "_bucket", "_sum", "_count")}
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {name for p in panels for t in p["targets"] for name in re.findall(r"nazorat_[a-z_]+", t["expr"])}
    assert used, "no series in the dashboard"
    assert used <= exported, sorted(used - exported)
