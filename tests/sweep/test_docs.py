"""The sweep and CI docs are executable: their snippets run, and their tables match the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sim.compare import DEFAULT_TOLERANCES, DIRECTION
from sim.sweep import SerialExecutor, load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = (ROOT / "docs" / "sweeps.md").read_text()
CI = (ROOT / "docs" / "ci.md").read_text()


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_the_sweep_file_example_is_the_shipped_one_and_valid():
    doc = yaml.safe_load(_blocks(SWEEPS, "yaml")[0])
    plan = load_sweep(doc)
    assert (len(plan.points), len(plan.seeds), len(plan.runs)) == (6, 3, 18)
    shipped = yaml.safe_load((ROOT / "scenarios" / "sweeps" / "replicas.yaml").read_text())
    assert doc["sweep"] == shipped["sweep"] and doc["seeds"] == shipped["seeds"]
    readme = (ROOT / "README.md").read_text()
    assert yaml.safe_load(_blocks(readme, "yaml")[-1])["sweep"] == shipped["sweep"]


def test_the_python_snippet_runs(tmp_path, monkeypatch):
    doc = yaml.safe_load(_blocks(SWEEPS, "yaml")[0])
    monkeypatch.chdir(tmp_path)
    plan = load_sweep(doc, {"duration": "2m"})
    assert run_sweep(plan, "results/replicas-sweep", executor=SerialExecutor()).ok
    namespace: dict = {}
    exec(_blocks(SWEEPS, "python")[0], namespace)
    assert len(namespace["df"]) == 18
    assert set(namespace["requests"]["run_id"]) == {rid for rid, _ in plan.points}


def test_the_default_tolerance_table_is_the_code():
    rows = re.findall(r"^\| `(\w+)` \| ([\d.]+%?) \|", CI, flags=re.M)
    assert {m: v for m, v in rows} == {m: str(t) for m, t in DEFAULT_TOLERANCES.items()}
    for metric in DIRECTION:
        assert f"`{metric}`" in CI  # every KPI's direction is stated


def test_the_example_workflow_is_valid_yaml():
    workflow = yaml.safe_load(_blocks(CI, "yaml")[0])
    steps = workflow["jobs"]["gate"]["steps"]
    commands = " ".join(s.get("run", "") for s in steps)
    assert "capsim baseline --out results/new" in commands
    assert "capsim compare scenarios/regression/baseline results/new" in commands
