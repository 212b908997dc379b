"""The command line: exit codes, one-line errors, files written atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.metrics.kpis import KPI_KEYS

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "scenarios" / "traces" / "AzureLLMInferenceTrace_conv.csv"


def small_scenario(tmp_path: Path, **changes) -> Path:
    doc = {
        "name": "small",
        "seed": 2,
        "duration": "10m",
        "warmup": "1m",
        "deployments": [{
            "name": "chat",
            "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "trace", "path": str(TRACE)}},
        }],
    }
    doc.update(changes)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_run_writes_every_result_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(small_scenario(tmp_path)), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "requests.parquet", "timeline.parquet", "billing.csv",
            "report.html"} <= names
    summary = json.loads((out / "summary.json").read_text())
    for key in ("seed", "simulated_s", "wall_s", "capsim_version", "scenario"):
        assert key in summary
    for block in (summary["total"], summary["deployments"]["chat"]):
        assert set(KPI_KEYS) <= set(block)
    requests = pd.read_parquet(out / "requests.parquet")
    assert len(requests) == summary["total"]["requests"] > 0
    assert "results written to" in capsys.readouterr().out


def test_set_overrides_a_key(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(small_scenario(tmp_path)), "--out", str(out), "--set", "seed=9"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 9


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        ({"durationn": "1h"}, "durationn", "unknown key"),
        ({"duration": "10 parsecs"}, "duration", "unknown duration unit"),
        ({"duration": 600}, "duration", "needs a unit"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, change, where, reason):
    path = small_scenario(tmp_path, **change)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"capsim: error: {path}: {where}: ")
    assert reason in err
    assert not out.exists()


def test_bad_nested_key_names_the_path(tmp_path, capsys):
    path = small_scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["deployments"][0]["shape"]["accelerator"] = "H100"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "deployments[0].shape" in err and "unknown accelerator 'H100'" in err


def test_negative_rate_is_refused(tmp_path, capsys):
    path = small_scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["deployments"][0]["traffic"] = {
        "arrivals": {"kind": "poisson", "rps": -2},
        "input_tokens": {"kind": "fixed", "value": 10},
        "output_tokens": {"kind": "fixed", "value": 10},
    }
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    assert "deployments[0].traffic.arrivals.rps" in capsys.readouterr().err


def test_missing_trace_file_names_it(tmp_path, capsys):
    path = small_scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["deployments"][0]["traffic"]["arrivals"]["path"] = "nowhere.csv"
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    assert "nowhere.csv" in capsys.readouterr().err


def test_malformed_trace_row_names_the_line(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:00:00.0,10,5\n2023-11-16 17:00:00.0,10,5\n")
    assert main(["validate", str(trace)]) == 2
    err = capsys.readouterr().err
    assert f"{trace}: line 3:" in err


def test_shape_that_does_not_fit_says_by_how_much(tmp_path, capsys):
    path = small_scenario(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["deployments"][0]["model"] = "llama-v3p1-70b-instruct"
    doc["deployments"][0]["shape"] = {"accelerator": "H100_80GB", "count": 1, "precision": "BF16"}
    path.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "deployments[0].shape" in err and "short by" in err


def test_validate_accepts_the_quickstart(capsys):
    assert main(["validate", str(ROOT / "scenarios" / "quickstart.yaml")]) == 0
    assert "valid scenario" in capsys.readouterr().out


@pytest.mark.parametrize("what", ["accelerators", "shapes", "regions", "prices"])
def test_catalog_prints_tables(capsys, what):
    assert main(["catalog", what]) == 0
    assert capsys.readouterr().out.strip()


def test_console_script_has_no_traceback_on_bad_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration: [\n")
    proc = subprocess.run([sys.executable, "-m", "sim.cli", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"capsim: error: {bad}: line ")
