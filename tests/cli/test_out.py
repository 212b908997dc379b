"""``--out`` never destroys: a new folder or one capsim wrote; anything else refused."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.io import MANIFEST
from tests.cli.test_cli import small_scenario


@pytest.fixture
def scenario(tmp_path):
    return str(small_scenario(tmp_path, duration="2m", warmup="0s"))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("capsim: error: "), err
    return err[0]


def test_run_refuses_a_folder_of_the_users_and_keeps_it(tmp_path, scenario, capsys):
    out = tmp_path / "mydocs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["run", scenario, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert str(out) in line and "--force" in line
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydocs", "s.yaml"]


def test_run_refuses_to_replace_a_file(tmp_path, scenario, capsys):
    out = tmp_path / "afile"
    out.write_text("mine")
    assert main(["run", scenario, "--out", str(out)]) == 2
    assert "is a file" in _one_error_line(capsys)
    assert out.read_text() == "mine"


def test_run_refuses_the_current_folder_even_with_force(tmp_path, scenario, capsys,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", scenario, "--out", ".", "--force"]) == 2
    assert "current folder" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_run_replaces_its_own_results_and_force_replaces_the_users(tmp_path, scenario,
                                                                   capsys):
    out = tmp_path / "r"
    assert main(["run", scenario, "--out", str(out), "--no-progress"]) == 0
    first = json.loads((out / MANIFEST).read_text())
    assert "summary.json" in first["files"] and "report.html" in first["files"]
    assert main(["run", scenario, "--out", str(out), "--no-progress"]) == 0  # capsim's own
    (out / "notes.txt").write_text("mine")
    assert main(["run", scenario, "--out", str(out), "--no-progress"]) == 2
    assert "notes.txt" in _one_error_line(capsys)
    assert main(["run", scenario, "--out", str(out), "--no-progress", "--force"]) == 0
    assert not (out / "notes.txt").exists() and (out / "summary.json").is_file()


def test_sweep_and_baseline_refuse_a_folder_of_the_users(tmp_path, capsys):
    from tests.sweep.helpers import write_sweep

    sweep = write_sweep(tmp_path / "a.yaml", seeds=[1])
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", str(sweep), "--out", str(out), "--workers", "1"]) == 2
    assert "--force" in _one_error_line(capsys)
    assert main(["baseline", str(sweep), "--out", str(out), "--workers", "1"]) == 2
    assert "--force" in _one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.slow  # a child process (imports, start-up); the in-process case is fast
def test_ctrl_c_mid_run_is_one_line_exit_130_and_leaves_nothing(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    scenario = small_scenario(tmp_path, duration="30d", warmup="0s")  # minutes of work
    out = tmp_path / "r"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "sim.cli", "run", str(scenario), "--out",
                             str(out), "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".r.capsim-*")):  # the run has started writing
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = err.strip().splitlines()  # the trace warns first that it ends early: fine
    assert lines[-1] == "capsim: interrupted" and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]
