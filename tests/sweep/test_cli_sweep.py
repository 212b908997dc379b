"""``capsim sweep``, ``capsim validate`` on a sweep file, ``capsim bench --sweep``."""

from __future__ import annotations

import pandas as pd

from sim.cli import main
from sim.sweep.bench import sweep_speedup
from tests.sweep.helpers import write_sweep

AXIS = "deployments[0].autoscaler.replicas"


def test_sweep_command_writes_results_and_resumes(tmp_path, capsys):
    path = write_sweep(tmp_path / "sw.yaml", sweep={AXIS: [1, 2]}, seeds=2)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "4 runs (2 points × 2 seeds): 4 ran, 0 already finished, 0 failed" in captured.out
    assert "means over seeds" in captured.out
    assert "[4/4]" in captured.err  # one line per run when not on a terminal
    table = pd.read_parquet(out / "summary.parquet")
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert "replicas" in (out / "report.html").read_text()  # the sweep's report
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 0
    captured = capsys.readouterr()
    assert "0 ran, 4 already finished" in captured.out
    assert "4 runs already finished, skipped" in captured.err


def test_sweep_summary_only_and_set(tmp_path, capsys):
    path = write_sweep(tmp_path / "sw.yaml", seeds=[5])
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--summary-only", "--no-report",
                 "--set", "duration=2m", "--workers", "1"]) == 0
    assert not (out / "report.html").exists()
    folder = out / "base" / "seed=5"
    assert sorted(p.name for p in folder.iterdir()) == [".capsim-manifest.json", "summary.json"]
    assert pd.read_parquet(out / "summary.parquet")["simulated_s"].iloc[0] >= 120


def test_a_bad_axis_is_one_line_exit_2_and_nothing_runs(tmp_path, capsys):
    path = write_sweep(tmp_path / "sw.yaml", sweep={"deployments[0].shape.precision":
                                                    ["FP8", "FP3"]})
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"capsim: error: {path}: sweep.deployments[0].shape.precision: "
                          "value 'FP3': deployments[0].shape.precision")
    assert not out.exists()


def test_validate_accepts_a_sweep_file_and_checks_every_combination(tmp_path, capsys):
    path = write_sweep(tmp_path / "sw.yaml", sweep={AXIS: [1, 2, 3]}, seeds=4)
    assert main(["validate", str(path)]) == 0
    assert "valid sweep 'tiny': 3 points × 4 seeds = 12 runs" in capsys.readouterr().out
    bad = write_sweep(tmp_path / "bad.yaml", sweep={AXIS: [1, "two"]})
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}: sweep.{AXIS}: value 'two'" in capsys.readouterr().err


def test_failed_runs_make_the_command_exit_1(tmp_path, capsys, monkeypatch):
    # A trace that validates and then disappears before the runs: every run fails,
    # each is reported with its error, and the summary table says so.
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:00:00.0,10,5\n2023-11-16 18:00:01.0,10,5\n")
    path = write_sweep(tmp_path / "sw.yaml", seeds=2)
    import yaml

    doc = yaml.safe_load(path.read_text())
    doc["deployments"][0]["traffic"] = {"arrivals": {"kind": "trace", "path": "t.csv"}}
    path.write_text(yaml.safe_dump(doc))
    import sim.sweep.runner as runner

    real = runner.tasks_for

    def tasks_then_delete(*args, **kwargs):
        tasks = real(*args, **kwargs)
        trace.unlink()
        return tasks

    monkeypatch.setattr(runner, "tasks_for", tasks_then_delete)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("failed:") == 2 and "t.csv" in captured.err
    assert "0 ran, 0 already finished, 2 failed" in captured.out
    assert set(pd.read_parquet(out / "summary.parquet")["status"]) == {"failed"}


def test_bench_sweep_measures_equal_results(tmp_path):
    res = sweep_speedup(runs=4, workers=2, dask=False, duration="5m", repeats=1)
    assert res["runs"] == 4
    labels = [r["executor"] for r in res["rows"]]
    assert labels == ["sequential (one process)", "local process pool"]
    assert all(r["wall_s"] > 0 and r["speedup"] > 0 for r in res["rows"])
    assert 0 < res["capacity"] < 2.5
