"""Every scenario shipped under scenarios/ runs on the exact engine (a short horizon)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import sim
from sim.sweep.plan import SWEEP_KEYS

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT / "scenarios")))
def test_scenario_runs_on_the_exact_engine(path):
    doc = yaml.safe_load(path.read_text())
    # a sweep's or a plan's base scenario
    doc = {k: v for k, v in doc.items() if k not in (*SWEEP_KEYS, "plan")}
    short = {"engine": "exact", "duration": "6m", "warmup": "1m"}
    loaded = sim.load_scenario(doc, short, base_dir=path.parent)
    res = sim.run(loaded, keep_requests=False)
    total = res.summary["total"]
    assert total["requests"] > 0
    assert total["ok"] + total["failed"] == total["requests"]
    assert 0.0 <= total["utilization"] <= 1.0 + 1e-9
