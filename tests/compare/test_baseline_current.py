"""The committed regression baseline is current: made from today's regression scenarios, on
today's traffic, with KPIs within the gate's tolerances of what the code gives now.

This is the test that tells a developer to regenerate the baseline.  It fails when

* a regression scenario changed but the baseline was not regenerated (the resolved
  scenario stored in a baseline summary is not the one the file gives now);
* the code now generates different requests for the same seed (the traffic
  fingerprints differ), so the gate's paired tests would pair unlike runs;
* a KPI moved beyond its gate tolerance *in either direction* — a worse one is
  a regression the gate would also flag, a better one is an improvement the
  baseline should lock in, or the next regression hides behind it.

Fix: ``capsim baseline`` (it rewrites ``scenarios/regression/baseline``), and
commit the result with the change that moved the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.compare import compare
from sim.errors import InputError
from sim.sweep import SerialExecutor, load_sweep, run_sweep
from sim.sweep.store import _normal, read_run_summary

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = ROOT / "scenarios" / "regression"
BASELINE = REGRESSION / "baseline"
FIX = "the committed baseline is stale: run `capsim baseline` and commit it with your change"
CURRENT = {"ok", "—", "n/a"}  # verdicts of a KPI within its tolerance (or not gated)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh")
    for path in sorted(REGRESSION.glob("*.yaml")):
        report = run_sweep(load_sweep(path), out / path.stem, executor=SerialExecutor(),
                           tables=False, force=True)
        assert report.ok, [o.error for o in report.failed]
    return out


def test_the_baseline_covers_every_regression_scenario():
    stems = sorted(p.stem for p in REGRESSION.glob("*.yaml"))
    assert stems and sorted(p.name for p in BASELINE.iterdir() if p.is_dir()) == stems, FIX


def test_the_baseline_was_made_from_todays_scenario_files():
    for path in sorted(REGRESSION.glob("*.yaml")):
        plan = load_sweep(path)
        manifest = json.loads((BASELINE / path.stem / "sweep.json").read_text())
        assert manifest["seeds"] == list(plan.seeds), f"{path.name}: seeds changed; {FIX}"
        for run in plan.runs:
            summary = read_run_summary(BASELINE / path.stem, run.run_id, run.seed)
            assert summary is not None, f"{path.name}: {run.run_id} seed={run.seed}: {FIX}"
            assert summary["scenario"] == _normal(run.scenario), (
                f"{path.name}: {run.run_id} seed={run.seed} was made from another scenario; "
                f"{FIX}")


def test_the_baseline_simulated_todays_traffic(fresh):
    for stem in sorted(p.name for p in fresh.iterdir() if p.is_dir()):
        for summary_path in sorted((fresh / stem).glob("*/seed=*/summary.json")):
            now = json.loads(summary_path.read_text())
            then = json.loads((BASELINE / summary_path.relative_to(fresh)).read_text())
            assert then.get("traffic_fingerprint") == now["traffic_fingerprint"], (
                f"{summary_path.relative_to(fresh)}: traffic changed; {FIX}")


def test_the_baseline_kpis_are_todays_within_tolerance(fresh):
    try:
        result = compare(BASELINE, fresh)
    except InputError as err:  # not comparable at all: certainly stale
        pytest.fail(f"{err}; {FIX}")
    moved = [f"{r.scenario} {r.run_id} {r.scope} {r.metric}: {r.verdict}"
             for r in result.rows if r.verdict not in CURRENT]
    assert not moved, f"{FIX}:\n" + "\n".join(moved)
