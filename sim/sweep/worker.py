"""What a worker process does for one run: simulate, then encode the run's files as bytes.

The worker never touches the output directory: it returns the files' bytes
and the process that drives the sweep writes them.  So a Dask cluster needs
no shared file system, and the bytes written are the same whichever executor
ran the run.  Kept small so that worker processes import little beyond
``sim.run``.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from sim.io.run import SUMMARY, TABLE_FILES, json_safe, summary_bytes

__all__ = ["SUMMARY", "TABLE_FILES", "RunOutcome", "RunTask", "execute", "json_safe",
           "summary_bytes", "warm_up"]


@dataclass(frozen=True)
class RunTask:
    """Everything a worker needs: the resolved scenario, and the folder its traces are under."""

    run_id: str
    seed: int
    overrides: dict[str, Any]
    scenario: dict[str, Any]
    base_dir: str
    tables: bool = True
    report: bool = True

    @property
    def key(self) -> tuple[str, int]:
        return (self.run_id, self.seed)


@dataclass
class RunOutcome:
    """A run's files (name -> bytes), or its error; ``wall_s`` of the whole task."""

    run_id: str
    seed: int
    files: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self) -> tuple[str, int]:
        return (self.run_id, self.seed)


def execute(task: RunTask) -> RunOutcome:
    """Run one task; never raises — an exception becomes the outcome's error."""
    t0 = time.perf_counter()
    try:
        import sim
        from sim.io.run import encode_run
        from sim.scenario.loader import load_scenario

        result = sim.run(load_scenario(task.scenario, base_dir=task.base_dir))
        files = encode_run(result, tables=task.tables, report=task.tables and task.report,
                           extra_summary={"run_id": task.run_id, "overrides": task.overrides})
    except Exception as exc:
        return RunOutcome(
            task.run_id,
            task.seed,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            wall_s=time.perf_counter() - t0,
        )
    return RunOutcome(task.run_id, task.seed, files=files, wall_s=time.perf_counter() - t0)


WARM_UP_SCENARIO: dict[str, Any] = {
    "name": "warm-up",
    "duration": "1m",
    "deployments": [{
        "name": "w",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "autoscaler": {"policy": "static", "replicas": 1},
        "traffic": {
            "arrivals": {"kind": "poisson", "rps": 2},
            "input_tokens": {"kind": "fixed", "value": 100},
            "output_tokens": {"kind": "fixed", "value": 10},
        },
    }],
}


def warm_up() -> None:
    """Run a one-minute simulation and encode its tables, so that the engine's compiled
    kernel is loaded and every module a run needs (pyarrow's Parquet writer…) imported."""
    outcome = execute(RunTask("warm-up", 0, {}, WARM_UP_SCENARIO, ".", report=False))
    if not outcome.ok:
        raise RuntimeError(outcome.error)
