"""What a worker does for one candidate run: simulate, keep what the planner judges on.

Runs on the sweep's executors (``sim.sweep.executors``): a task in, an outcome
whose one file, ``eval.json``, holds the sized deployment's KPIs, the tokens it
served and their serverless price, and whether the run was cut off at the
drain limit.  ``task.overrides`` carries ``{"deployment": name}``.
"""

from __future__ import annotations

import json
import time
import traceback
from typing import TYPE_CHECKING, Any

from sim.sweep.worker import RunOutcome, RunTask, json_safe

if TYPE_CHECKING:
    from sim.results import Result
    from sim.scenario.loader import LoadedScenario

EVAL = "eval.json"


def drain_cut(simulated_s: float, duration_s: float) -> bool:
    """Whether a run stopped at the engine's drain limit (max(duration, 1 h) past the
    horizon) rather than when its last request finished."""
    return simulated_s >= duration_s + max(duration_s, 3600.0) - 1e-6


def eval_doc(result: Result, loaded: LoadedScenario, name: str) -> dict[str, Any]:
    """What the planner judges of deployment ``name`` in a finished run."""
    from sim.billing.serverless import price_tokens

    reqs = result.requests
    ok = reqs[(reqs["deployment"] == name) & (reqs["status"] == "ok")]
    served_in = float(ok["input_tokens"].sum())
    served_out = float(ok["output_tokens"].sum())
    cached = float(ok["cached_tokens"].sum()) if "cached_tokens" in ok else 0.0
    # simulated prefix-cache hits price cached input; without any, the fixed rate
    hit_rate = cached / served_in if cached > 0 and served_in > 0 else None
    dep = next(d for d in loaded.spec.deployments if d.name == name)
    return {
        "kpis": result.summary["deployments"][name],
        "simulated_s": result.summary["simulated_s"],
        "duration_s": loaded.spec.duration,
        "served_input_tokens": served_in,
        "served_output_tokens": served_out,
        "serverless_usd": price_tokens(loaded.spec.billing, dep.model, served_in, served_out,
                                       hit_rate),
        "cut_off": drain_cut(result.summary["simulated_s"], loaded.spec.duration),
    }


def evaluate(task: RunTask) -> RunOutcome:
    """Run one candidate; never raises — an exception becomes the outcome's error."""
    t0 = time.perf_counter()
    try:
        import sim
        from sim.scenario.loader import load_scenario

        name = task.overrides["deployment"]
        loaded = load_scenario(task.scenario, base_dir=task.base_dir)
        doc = eval_doc(sim.run(loaded), loaded, name)
        files = {EVAL: (json.dumps(json_safe(doc)) + "\n").encode()}
    except Exception as exc:
        return RunOutcome(task.run_id, task.seed, error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(), wall_s=time.perf_counter() - t0)
    return RunOutcome(task.run_id, task.seed, files=files, wall_s=time.perf_counter() - t0)


def read_eval(outcome: RunOutcome) -> dict[str, Any]:
    return dict(json.loads(outcome.files[EVAL]))
