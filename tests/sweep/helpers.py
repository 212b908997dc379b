"""Small sweep documents and a runner that fails on purpose, importable by worker processes."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from sim.sweep.worker import RunOutcome, RunTask, execute

BASE: dict[str, Any] = {
    "name": "tiny",
    "seed": 1,
    "duration": "5m",
    "warmup": "30s",
    "deployments": [{
        "name": "chat",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "autoscaler": {"policy": "static", "replicas": 2},
        "max_queue": 256,
        "traffic": {
            "arrivals": {"kind": "poisson", "rps": 12},
            "input_tokens": {"kind": "lognormal", "median": 1000, "p90": 3000},
            "output_tokens": {"kind": "lognormal", "median": 150, "p90": 400},
        },
    }],
    "slo": {"ttft_p99": "1s", "tpot_p99": "50ms"},
}


def sweep_doc(**changes: Any) -> dict[str, Any]:
    """The base scenario with ``sweep``/``seeds`` (or other top-level keys) set."""
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def write_sweep(path: Path, **changes: Any) -> Path:
    path.write_text(yaml.safe_dump(sweep_doc(**changes), sort_keys=False))
    return path


FAIL_SEED = 2


def failing_execute(task: RunTask) -> RunOutcome:
    """Like ``execute``, but the run with seed ``FAIL_SEED`` gets a scenario that raises
    inside the worker (a negative duration, which only validation would have caught)."""
    if task.seed == FAIL_SEED:
        broken = dict(task.scenario, duration="-1s")
        task = dataclasses.replace(task, scenario=broken)
    return execute(task)


def dying_execute(task: RunTask) -> RunOutcome:
    """The worker process dies (as if killed) on seed ``FAIL_SEED``."""
    import os

    if task.seed == FAIL_SEED:
        os._exit(3)
    return execute(task)
