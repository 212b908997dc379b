"""A real Dask cluster: a scheduler and two workers on loopback, as separate processes.

The sweep's results through the cluster must equal the local pool's, bit for
bit (every file; in summary.json all but the wall time).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from sim.errors import InputError
from sim.sweep import DaskExecutor, LocalExecutor, load_sweep, run_sweep
from sim.sweep.store import run_dir
from tests.sweep.helpers import sweep_doc

START_TIMEOUT_S = 30.0


def _stop(procs: list[subprocess.Popen]) -> None:
    """Workers first, then the scheduler: SIGTERM, and SIGKILL after 10 s."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, random ports."""
    info = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        log = (logs / f"{name}.log").open("w")
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=tmp_path,
                                      stdout=log, stderr=subprocess.STDOUT))

    try:
        start("scheduler", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
              "--port", "0", "--no-dashboard", "--scheduler-file", str(info))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not info.exists() or not info.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                pytest.fail("dask scheduler did not start:\n"
                            + (logs / "scheduler.log").read_text())
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in (1, 2):
            start(f"worker{i}", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
                  "--nthreads", "1", "--no-nanny", "--no-dashboard",
                  "--local-directory", str(tmp_path / f"w{i}"))
        yield address
    finally:
        _stop(procs)
        assert all(p.poll() is not None for p in procs)


def test_sweep_on_a_dask_cluster_equals_the_local_pool_bit_for_bit(cluster, tmp_path):
    plan = load_sweep(sweep_doc(sweep={"deployments[0].autoscaler.replicas": [1, 2]}, seeds=2))
    local = run_sweep(plan, tmp_path / "local", executor=LocalExecutor(2))
    remote = run_sweep(plan, tmp_path / "dask",
                       executor=DaskExecutor(cluster, workers=2, timeout_s=START_TIMEOUT_S))
    assert local.ok and remote.ok and len(remote.ran) == len(plan.runs) == 4
    for run in plan.runs:
        a = run_dir(tmp_path / "local", run.run_id, run.seed)
        b = run_dir(tmp_path / "dask", run.run_id, run.seed)
        for name in ("requests.parquet", "timeline.parquet", "billing.csv"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
        sa.pop("wall_s"), sb.pop("wall_s")
        assert sa == sb
    cols = [c for c in local.table.columns if c != "wall_s"]
    assert local.table[cols].equals(remote.table[cols])


def test_an_unreachable_scheduler_is_bad_input(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    plan = load_sweep(sweep_doc())
    with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
        run_sweep(plan, tmp_path, executor=DaskExecutor(f"tcp://127.0.0.1:{port}",
                                                        timeout_s=2))


def _sweep_file(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_doc()))
    return path


def _one_line_exit_2(capsys, args: list[str], out: Path) -> str:
    from sim.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("capsim: error: "), err
    assert not out.exists()
    return err


def test_an_unreachable_scheduler_is_one_line_exit_2_and_nothing_written(
        tmp_path, capsys, monkeypatch):
    import socket

    monkeypatch.setattr(DaskExecutor.__init__, "__defaults__", (None, None, 2.0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    err = _one_line_exit_2(capsys, ["sweep", str(_sweep_file(tmp_path)), "--scheduler",
                                    f"tcp://127.0.0.1:{port}", "--out", str(out)], out)
    assert "cannot connect" in err


def test_a_scheduler_without_workers_is_one_line_exit_2_and_nothing_written(
        tmp_path, capsys, monkeypatch):
    info = tmp_path / "scheduler.json"
    log = (tmp_path / "scheduler.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                             "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                             str(info)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not info.exists() or not info.read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, "no scheduler"
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        monkeypatch.setattr(DaskExecutor.__init__, "__defaults__", (None, None, 2.0))
        out = tmp_path / "out"
        err = _one_line_exit_2(capsys, ["sweep", str(_sweep_file(tmp_path)), "--scheduler",
                                        address, "--out", str(out)], out)
        assert "0 of the 1 worker needed" in err
    finally:
        _stop([proc])
