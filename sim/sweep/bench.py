"""``capsim bench --sweep``: the speed-up of a sweep on the local pool (and on a local Dask
cluster) over the same sweep run sequentially in one process.

All three write the same results (checked: the summary tables are equal but
for wall times), through the same code path as ``capsim sweep`` — planning,
running, encoding Parquet, writing run folders atomically.  The sequential
baseline runs after a warm-up run, so it pays no kernel compilation; the
pools pay their start-up, as a user does.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from sim.sweep.executors import (
    Executor,
    LocalExecutor,
    SerialExecutor,
    default_workers,
    make_executor,
)
from sim.sweep.plan import SweepPlan, load_sweep
from sim.sweep.runner import run_sweep


def bench_plan(runs: int, duration: str = "2h") -> SweepPlan:
    """A sweep of ``runs`` runs: 70B at 20 req/s on 5 or 6 replicas × seeds (no trace files)."""
    points = 2
    seeds = max(1, -(-runs // points))
    doc: dict[str, Any] = {
        "name": "bench-sweep",
        "seed": 1,
        "duration": duration,
        "warmup": "1m",
        "deployments": [{
            "name": "chat",
            "model": "llama-v3p1-70b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 4, "precision": "FP8"},
            "region": "US",
            "autoscaler": {"policy": "static", "replicas": 5},
            "traffic": {
                "arrivals": {"kind": "poisson", "rps": 20},
                "input_tokens": {"kind": "lognormal", "median": 1000, "p90": 3000},
                "output_tokens": {"kind": "lognormal", "median": 150, "p90": 400},
            },
        }],
        "slo": {"ttft_p99": "2s", "tpot_p99": "100ms"},
        "sweep": {"deployments[0].autoscaler.replicas": [5, 6]},
        "seeds": seeds,
    }
    return load_sweep(doc)


def _burn(n: int) -> float:
    """A pure-Python busy loop; returns its own wall time."""
    t0 = time.perf_counter()
    acc = 0
    for i in range(n):
        acc += i * i
    return time.perf_counter() - t0 + 0.0 * acc


def parallel_capacity(workers: int, n: int = 3_000_000) -> float:
    """How many cores this process can have right now: ``workers`` busy loops one after
    the other against the same loops on ``workers`` processes at once (≈ ``workers`` on
    an idle machine, less when other programs are busy).  Process start-up is excluded."""
    t0 = time.perf_counter()
    for _ in range(workers):
        _burn(n)
    sequential = time.perf_counter() - t0
    with LocalExecutor(workers)._pool() as pool:  # the sweep pool's own kind of workers
        list(pool.map(_burn, [1] * workers))  # start the processes
        t0 = time.perf_counter()
        list(pool.map(_burn, [n] * workers))
        parallel = time.perf_counter() - t0
    return sequential / parallel


def _timed(plan: SweepPlan, executor: Executor, out: Path) -> tuple[float, pd.DataFrame]:
    t0 = time.perf_counter()
    report = run_sweep(plan, out, executor=executor, force=True)
    wall = time.perf_counter() - t0
    if report.failed:
        raise RuntimeError(f"bench run failed: {report.failed[0].error}")
    return wall, report.table


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["wall_s"]).reset_index(drop=True)


def sweep_speedup(runs: int = 16, workers: int | None = None, dask: bool = True,
                  duration: str = "2h", repeats: int = 3) -> dict[str, Any]:
    """Wall time of the same sweep: sequential, local pool, local Dask cluster.

    Each is timed ``repeats`` times, interleaved, and the best time is kept (the
    machine's other load only ever adds time); the first time is reported too,
    since the first local pool of a process also starts its forkserver.
    """
    from sim.sweep.runner import tasks_for
    from sim.sweep.worker import execute

    plan = bench_plan(runs, duration)
    workers = workers or default_workers()
    execute(tasks_for(plan, plan.runs[:1])[0])  # warm-up: compile or load the kernel
    capacity_before = parallel_capacity(workers)
    kinds: list[tuple[str, str, int]] = [("serial", "sequential (one process)", 1),
                                         ("local", "local process pool", workers)]
    if dask:
        kinds.append(("dask", "Dask LocalCluster", workers))
    walls: dict[str, list[float]] = {kind: [] for kind, _, _ in kinds}
    reference: pd.DataFrame | None = None
    with tempfile.TemporaryDirectory(prefix="capsim-bench-") as tmp:
        for _ in range(max(1, repeats)):
            for kind, _, n in kinds:
                executor = SerialExecutor() if kind == "serial" else make_executor(
                    kind, workers=n)
                wall, table = _timed(plan, executor, Path(tmp) / kind)
                if reference is None:
                    reference = table
                pd.testing.assert_frame_equal(_comparable(table), _comparable(reference))
                walls[kind].append(wall)
    assert reference is not None
    capacity = min(capacity_before, parallel_capacity(workers))
    serial_best = min(walls["serial"])
    rows = []
    for kind, label, n in kinds:
        best = min(walls[kind])
        rows.append({"executor": label, "workers": n, "wall_s": best, "first_s": walls[kind][0],
                     "runs_per_s": len(plan.runs) / best, "speedup": serial_best / best})
    return {
        "runs": len(plan.runs),
        "repeats": max(1, repeats),
        "requests_per_run": int(reference["total.requests"].mean()),
        "cores": os.cpu_count(),
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"Python {platform.python_version()}",
        "rows": rows,
        "capacity": capacity,
    }


def main(runs: int = 16, workers: int | None = None, dask: bool = True,
         repeats: int = 3) -> int:
    from rich.console import Console
    from rich.table import Table

    res = sweep_speedup(runs=runs, workers=workers, dask=dask, repeats=repeats)
    table = Table(title=f"sweep of {res['runs']} runs × ~{res['requests_per_run']:,} requests, "
                        f"best of {res['repeats']} ({res['cores']} cores, {res['machine']})")
    for col in ("executor", "workers", "wall (s)", "first (s)", "runs / s", "speed-up"):
        table.add_column(col, justify="right")
    for row in res["rows"]:
        table.add_row(row["executor"], str(row["workers"]), f"{row['wall_s']:.2f}",
                      f"{row['first_s']:.2f}", f"{row['runs_per_s']:.2f}",
                      f"{row['speedup']:.2f}×")
    console = Console()
    console.print(table)
    local = next(r for r in res["rows"] if r["executor"] == "local process pool")
    console.print(f"sweep speed-up of the local pool over a sequential run: "
                  f"[bold]{local['speedup']:.2f}×[/bold] on {local['workers']} workers "
                  "(identical results)")
    console.print(f"parallel capacity of this machine during the bench: "
                  f"{res['capacity']:.2f}× of {local['workers']} (a busy loop on "
                  f"{local['workers']} processes against one; lower means other programs "
                  "were using the cores)")
    return 0
