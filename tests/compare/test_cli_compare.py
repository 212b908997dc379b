"""``capsim compare`` exit codes and Markdown; ``capsim baseline`` and the committed baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import main
from sim.compare import compare
from sim.sweep import load_sweep, read_manifest
from tests.sweep.helpers import write_sweep

ROOT = Path(__file__).resolve().parents[2]
REGRESSION = ROOT / "scenarios" / "regression"
REPLICAS = "deployments[0].autoscaler.replicas"


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """BASE (2 replicas), WORSE (1 replica, same seeds), AGAIN (2 replicas, other seeds)."""
    tmp = tmp_path_factory.mktemp("cli")
    path = write_sweep(tmp / "sw.yaml", seeds=[1, 2, 3])
    out = {}
    for name, extra in (("base", []), ("worse", ["--set", f"{REPLICAS}=1"]),
                        ("again", ["--set", "seed=21"])):
        out[name] = tmp / name
        assert main(["sweep", str(path), "--out", str(out[name]), "--summary-only",
                     "--workers", "1", "--set", "deployments[0].traffic.arrivals.rps=20",
                     *extra]) == 0
    return out


def test_compare_exits_1_on_a_regression_and_writes_markdown(sweeps, tmp_path, capsys):
    md = tmp_path / "summary.md"
    code = main(["compare", str(sweeps["base"]), str(sweeps["worse"]), "--markdown", str(md)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("### capsim compare")
    assert "| tiny | base | total | e2e_p99_s |" in out and "**REGRESSION**" in out
    assert md.read_text() == out


def test_compare_exits_0_on_a_reseeded_identical_run(sweeps, capsys):
    assert main(["compare", str(sweeps["base"]), str(sweeps["again"])]) == 0
    assert "No regression beyond tolerance — exit 0." in capsys.readouterr().out


def test_compare_tolerance_option(sweeps, capsys):
    args = ["compare", str(sweeps["base"]), str(sweeps["worse"])]
    offs = [f"--tolerance={m}=off" for m in ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s",
                                             "user_ttft_p99_s", "user_e2e_p99_s")]
    assert main([*args, *offs]) == 0
    capsys.readouterr()
    assert main([*args, "--tolerance", "ttft_p99=5%"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("capsim: error: --tolerance: unknown metric 'ttft_p99'")


def test_compare_refuses_different_scenarios_with_exit_2(sweeps, tmp_path, capsys):
    path = write_sweep(tmp_path / "other.yaml", name="other", seeds=[1, 2, 3])
    other = tmp_path / "other"
    assert main(["sweep", str(path), "--out", str(other), "--summary-only",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["compare", str(sweeps["base"]), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "different scenarios ('tiny'" in err
    assert main(["compare", str(sweeps["base"]), str(tmp_path / "nowhere")]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_baseline_writes_a_suite_that_compares_with_itself(tmp_path, capsys):
    files = [write_sweep(tmp_path / "a.yaml", seeds=2),
             write_sweep(tmp_path / "b.yaml", name="bee", sweep={REPLICAS: [1, 2]})]
    out = tmp_path / "baseline"
    assert main(["baseline", *map(str, files), "--out", str(out), "--workers", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".capsim-manifest.json", "a", "b"]
    assert {p.name for p in out.rglob("*.parquet")} == {"summary.parquet"}  # no tables
    assert main(["baseline", *map(str, files), "--out", str(tmp_path / "new"),
                 "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["compare", str(out), str(tmp_path / "new")]) == 0
    text = capsys.readouterr().out
    assert "| tiny | base | total |" in text and "| bee | replicas=1-" in text


def test_the_committed_baseline_matches_the_regression_scenarios():
    """``scenarios/regression/baseline`` holds every regression file's points and seeds.
    If this fails after editing ``scenarios/regression/*.yaml``, run ``capsim baseline``."""
    files = sorted(REGRESSION.glob("*.yaml"))
    baseline = REGRESSION / "baseline"
    assert files and sorted(p.name for p in baseline.iterdir() if p.is_dir()) == [
        f.stem for f in files]
    for file in files:
        plan = load_sweep(file)
        manifest = read_manifest(baseline / file.stem)
        assert manifest["name"] == plan.name and manifest["seeds"] == plan.seeds
        assert [r["run_id"] for r in manifest["runs"]] == [rid for rid, _ in plan.points]
        for run in plan.runs:
            folder = baseline / file.stem / run.run_id / f"seed={run.seed}"
            summary = json.loads((folder / "summary.json").read_text())
            assert summary["seed"] == run.seed and summary["overrides"] == run.overrides
            assert not (folder / "requests.parquet").exists()  # small: summaries only
    assert compare(baseline, baseline).exit_code == 0
