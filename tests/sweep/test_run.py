"""Running sweeps: the local pool, partitioned output, resuming, failures, the summary table."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import sim
from sim.io import MANIFEST
from sim.metrics.kpis import KPI_KEYS
from sim.sweep import (
    LocalExecutor,
    SerialExecutor,
    load_sweep,
    read_summary,
    read_table,
    run_sweep,
)
from sim.sweep.store import run_dir
from tests.sweep.helpers import FAIL_SEED, dying_execute, failing_execute, sweep_doc

AXIS = "deployments[0].autoscaler.replicas"


@pytest.fixture(scope="module")
def plan():
    return load_sweep(sweep_doc(sweep={AXIS: [1, 2]}, seeds=2))


@pytest.fixture(scope="module")
def pooled(plan, tmp_path_factory):
    out = tmp_path_factory.mktemp("pooled")
    report = run_sweep(plan, out, executor=LocalExecutor(2))
    return out, report


def _without_wall(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_s"}


def test_pool_writes_one_folder_per_run_and_seed(plan, pooled):
    out, report = pooled
    assert report.ok and len(report.ran) == 4 and not report.skipped
    for run in plan.runs:
        folder = run_dir(out, run.run_id, run.seed)
        assert folder.name == f"seed={run.seed}"
        names = {p.name for p in folder.iterdir()}
        # the files of `capsim run` (sim.io.write_run), report included, and the manifest
        assert names >= {"summary.json", "requests.parquet", "timeline.parquet", "billing.csv",
                         "allocation.parquet", "report.html", "timeline.png", MANIFEST}
        assert json.loads((folder / MANIFEST).read_text())["files"] == sorted(names - {MANIFEST})
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["run_id"] == run.run_id and summary["seed"] == run.seed
        assert summary["overrides"] == run.overrides
        assert summary["scenario"] == run.scenario
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["axes"] == {AXIS: [1, 2]} and manifest["seeds"] == [1, 2]
    assert not list(out.rglob(".seed=*"))  # no temporary folders left behind


def test_a_sweep_run_equals_the_same_scenario_run_directly(plan, pooled):
    out, _ = pooled
    run = plan.runs[3]
    direct = sim.run(sweep_doc(), {"seed": run.seed, AXIS: run.overrides[AXIS]})
    stored = json.loads((run_dir(out, run.run_id, run.seed) / "summary.json").read_text())
    expected = json.loads(json.dumps(_without_wall(direct.summary)))
    assert {k: v for k, v in _without_wall(stored).items()
            if k not in ("run_id", "overrides")} == expected
    requests = pd.read_parquet(run_dir(out, run.run_id, run.seed) / "requests.parquet")
    pd.testing.assert_frame_equal(requests, direct.requests, check_exact=True)


def test_summary_table_has_axes_seed_and_every_kpi(plan, pooled):
    out, report = pooled
    table = read_summary(out)
    pd.testing.assert_frame_equal(table, report.table)
    assert list(table["run_id"]) == [r.run_id for r in plan.runs]
    assert list(table["seed"]) == [1, 2, 1, 2]
    assert list(table[AXIS]) == [1, 1, 2, 2]
    assert set(table["status"]) == {"ok"}
    for key in KPI_KEYS:
        assert f"total.{key}" in table and f"deployments.chat.{key}" in table
    csv = pd.read_csv(out / "summary.csv")
    assert list(csv.columns) == list(table.columns) and len(csv) == 4
    # The rows are the runs they say: on the same seed, two replicas use more GPU time.
    one = table[table[AXIS] == 1]["total.gpu_seconds"].to_numpy()
    two = table[table[AXIS] == 2]["total.gpu_seconds"].to_numpy()
    assert (two > 1.5 * one).all()


def test_read_table_concatenates_runs_with_their_keys(plan, pooled):
    out, report = pooled
    requests = read_table(out, "requests")
    assert set(requests.columns[:2]) == {"run_id", "seed"}
    counts = requests.groupby(["run_id", "seed"]).size()
    for _, row in report.table.iterrows():
        assert counts[(row["run_id"], row["seed"])] == row["total.requests"]
    assert set(read_table(out, "billing")["run_id"]) == {r.run_id for r in plan.runs}


def test_rerun_skips_finished_runs_and_redoes_stale_or_broken_ones(plan, pooled, tmp_path):
    out, _ = pooled
    again = run_sweep(plan, out, executor=SerialExecutor())
    assert len(again.skipped) == 4 and not again.ran
    # A folder from another version of the scenario is stale; a half-written one is not done.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    first, second = plan.runs[0], plan.runs[1]
    summary_path = run_dir(copy, first.run_id, first.seed) / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["scenario"]["duration"] = "1h"
    summary_path.write_text(json.dumps(summary))
    (run_dir(copy, second.run_id, second.seed) / "requests.parquet").unlink()
    resumed = run_sweep(plan, copy, executor=SerialExecutor())
    assert {o.key for o in resumed.ran} == {first.key, second.key}
    assert len(resumed.skipped) == 2
    forced = run_sweep(plan, copy, executor=SerialExecutor(), force=True)
    assert len(forced.ran) == 4


def test_summary_only_writes_no_tables(plan, tmp_path):
    report = run_sweep(plan, tmp_path, executor=SerialExecutor(), tables=False)
    assert report.ok
    for run in plan.runs:
        assert sorted(p.name for p in run_dir(tmp_path, run.run_id, run.seed).iterdir()) == [
            MANIFEST, "summary.json"]


def test_a_failing_run_is_reported_and_the_others_finish(plan, tmp_path):
    report = run_sweep(plan, tmp_path, executor=LocalExecutor(2), runner=failing_execute)
    assert {o.seed for o in report.failed} == {FAIL_SEED}
    assert len(report.failed) == 2 and len(report.ran) == 2
    assert all("duration" in o.error for o in report.failed)
    table = read_summary(tmp_path)
    failed = table[table["status"] == "failed"]
    assert list(failed["seed"]) == [FAIL_SEED, FAIL_SEED]
    assert failed["error"].str.contains("duration").all()
    assert failed["total.requests"].isna().all()
    assert (table[table["status"] == "ok"]["total.requests"] > 0).all()
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert {f["seed"] for f in failures} == {FAIL_SEED}
    assert "Traceback" in failures[0]["traceback"]
    for o in report.failed:
        assert not run_dir(tmp_path, o.run_id, o.seed).exists()
    # Fixed, the re-run does only the failed runs, and the failure record goes away.
    again = run_sweep(plan, tmp_path, executor=SerialExecutor())
    assert {o.seed for o in again.ran} == {FAIL_SEED} and len(again.skipped) == 2
    assert not (tmp_path / "failures.json").exists()
    assert set(read_summary(tmp_path)["status"]) == {"ok"}


def test_a_dying_worker_does_not_fail_the_healthy_runs_beside_it(plan, tmp_path):
    """Three runs in flight on three workers; one worker dies.  The pool breaks and
    every future in flight with it, but only the dying run is reported failed."""
    report = run_sweep(plan, tmp_path, executor=LocalExecutor(3), runner=dying_execute)
    assert [o.seed for o in report.failed] == [FAIL_SEED, FAIL_SEED]
    assert all("worker process died" in o.error for o in report.failed)
    assert sorted(o.seed for o in report.ran) == [1, 1]


def test_a_worker_that_dies_fails_its_run_only(plan, tmp_path):
    report = run_sweep(plan, tmp_path, executor=LocalExecutor(1), runner=dying_execute)
    assert {o.seed for o in report.failed} == {FAIL_SEED}
    assert all("worker process died" in o.error for o in report.failed)
    assert {o.seed for o in report.ran} == {1} and len(report.ran) == 2
