"""``sim.run``: a scenario in, a :class:`~sim.results.Result` out.  Pure: no files, no prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim import __version__, catalog
from sim.engine.core import STATUS_NAMES, ClientPolicy, DeploymentPlan, Simulation
from sim.engine.rng import seed_sequence, stream
from sim.fleet.placement import Inventory, initial_datacenter
from sim.metrics.summary import KPI_KEYS, latency_kpis, max_overlap
from sim.perf import Shape, build_shape
from sim.policies import get_policy
from sim.results import Result
from sim.scenario.loader import LoadedScenario, load_scenario
from sim.scenario.schema import Scenario
from sim.workload import Workload, generate

ScenarioLike = LoadedScenario | Scenario | str | Path | Mapping[str, Any]


def _loaded(scenario: ScenarioLike, overrides: Mapping[str, Any] | None) -> LoadedScenario:
    if isinstance(scenario, LoadedScenario):
        if overrides:
            return load_scenario(scenario.resolved(), overrides, base_dir=scenario.base_dir)
        return scenario
    if isinstance(scenario, Scenario):
        return load_scenario(scenario.model_dump(mode="json"), overrides)
    return load_scenario(scenario, overrides)


def run(
    scenario: ScenarioLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Simulate ``scenario`` (a path, a mapping, or a loaded scenario).

    ``progress`` is called now and then with the simulated time reached.
    """
    loaded = _loaded(scenario, overrides)
    spec = loaded.spec
    wall0 = time.perf_counter()
    inventory = Inventory.from_scenario(spec.regions)
    shapes: list[Shape] = []
    workloads: list[Workload] = []
    plans: list[DeploymentPlan] = []
    for dep in spec.deployments:
        shape = build_shape(
            dep.model, dep.shape, max_concurrency=dep.max_concurrency, base_dir=loaded.base_dir
        )
        work = generate(
            dep.traffic,
            spec.duration,
            seed_sequence(spec.seed, "deployment", dep.name, "traffic"),
            base_dir=loaded.base_dir,
        )
        shapes.append(shape)
        workloads.append(work)
        plans.append(
            DeploymentPlan(
                name=dep.name,
                shape=shape,
                arrival_s=work.arrival_s,
                input_tokens=work.input_tokens,
                output_tokens=work.output_tokens,
                replicas=get_policy(dep.autoscaler.policy)(dep.autoscaler).initial_replicas(),
                datacenter=initial_datacenter(inventory, shape.accelerator, dep.region),
                max_queue=dep.max_queue,
                queue_on_cold_start=dep.cold_start_mode == "queue",
            )
        )
    clients = spec.clients
    sim = Simulation(
        plans,
        horizon_s=spec.duration,
        clients=ClientPolicy(
            max_retries=clients.max_retries,
            backoff_base=clients.backoff_base,
            backoff_max=clients.backoff_max,
            jitter=clients.jitter == "full",
        ),
        jitter_rng=stream(spec.seed, "clients", "jitter"),
        timeline_interval_s=spec.timeline_interval,
    )
    sim.run(progress)
    requests = _requests_table(sim)
    timeline = _timeline_table(sim)
    billing = _billing_table(sim, loaded, shapes)
    summary = _summary(sim, loaded, shapes, requests, billing)
    summary["wall_s"] = time.perf_counter() - wall0
    return Result(summary, requests, timeline, billing, loaded.resolved())


def _requests_table(sim: Simulation) -> pd.DataFrame:
    st = sim.state
    dcs = [rec.datacenter for rec in sim.replica_records]
    df = pd.DataFrame(
        {
            "deployment": pd.Categorical.from_codes(st.dep, categories=sim.names),
            "arrival_s": st.arrival,
            "attempt_s": st.attempt_t,
            "start_s": st.start_t,
            "first_token_s": st.first_t,
            "finish_s": st.finish_t,
            "status": pd.Categorical.from_codes(st.status, categories=list(STATUS_NAMES)),
            "attempts": st.attempts,
            "input_tokens": st.inp,
            "output_tokens": st.out,
            "datacenter": pd.Categorical.from_codes(
                _dc_codes(st.replica, dcs), categories=sorted(set(dcs))
            ),
        }
    )
    df["ttft_s"] = df["first_token_s"] - df["attempt_s"]
    out = st.out
    with np.errstate(divide="ignore", invalid="ignore"):
        df["tpot_s"] = np.where(out > 1, (st.finish_t - st.first_t) / (out - 1), np.nan)
    df["e2e_s"] = df["finish_s"] - df["arrival_s"]
    return df


def _dc_codes(replica: np.ndarray, dcs: list[str]) -> np.ndarray:
    """Category codes of each request's datacenter (-1: never served)."""
    if not dcs:
        return np.full(len(replica), -1, dtype=np.int64)
    cats = sorted(set(dcs))
    code_of_replica = np.array([cats.index(d) for d in dcs], dtype=np.int64)
    return np.where(replica >= 0, code_of_replica[np.clip(replica, 0, None)], -1)


def _timeline_table(sim: Simulation) -> pd.DataFrame:
    df = pd.DataFrame([row.__dict__ for row in sim.timeline])
    if df.empty:
        return df
    df.insert(0, "t_start", df["t_end"] - df["interval_s"])
    df["deployment"] = pd.Categorical.from_codes(df["deployment"], categories=sim.names)
    df["arrival_rps"] = df["arrivals"] / df["interval_s"]
    return df


def _price(loaded: LoadedScenario, accelerator: str) -> float:
    override = loaded.spec.billing.gpu_hour_usd.get(accelerator)
    if override is not None:
        return override
    return catalog.get_accelerator(accelerator).usd_per_gpu_hour


def _billing_table(sim: Simulation, loaded: LoadedScenario, shapes: list[Shape]) -> pd.DataFrame:
    rows = []
    for rec in sim.replica_records:
        dep = loaded.spec.deployments[rec.deployment]
        shape = shapes[rec.deployment]
        premium = (
            loaded.spec.billing.region_premium
            if dep.region is not None and catalog.is_datacenter(dep.region)
            else 1.0
        )
        rate = _price(loaded, shape.accelerator) * premium
        seconds = max(rec.stopped_s - rec.ready_s, 0.0)
        rows.append(
            {
                "deployment": dep.name,
                "datacenter": rec.datacenter,
                "accelerator": shape.accelerator,
                "gpus": rec.gpus,
                "start_s": rec.ready_s,
                "end_s": rec.stopped_s,
                "seconds": seconds,
                "usd_per_gpu_hour": rate,
                "cost_usd": seconds * rec.gpus * rate / 3600.0,
            }
        )
    columns = ["deployment", "datacenter", "accelerator", "gpus", "start_s", "end_s",
               "seconds", "usd_per_gpu_hour", "cost_usd"]
    return pd.DataFrame(rows, columns=columns)


def _serverless_cost(loaded: LoadedScenario, model: str, requests: pd.DataFrame) -> float | None:
    price = loaded.spec.billing.serverless.get(model)
    if price is None:
        listed = catalog.get_model(model).serverless
        if listed is None:
            return None
        input_usd, output_usd = listed.input, listed.output
    else:
        input_usd, output_usd = price.input, price.output
    ok = requests[requests["status"] == "ok"]
    return float(
        (ok["input_tokens"].sum() * input_usd + ok["output_tokens"].sum() * output_usd) / 1e6
    )


def _summary(
    sim: Simulation,
    loaded: LoadedScenario,
    shapes: list[Shape],
    requests: pd.DataFrame,
    billing: pd.DataFrame,
) -> dict[str, Any]:
    spec = loaded.spec
    slo = spec.slo.model_dump()
    end = sim.end_s
    per: dict[str, dict[str, Any]] = {}
    st = sim.state
    for d, dep_spec in enumerate(spec.deployments):
        name = dep_spec.name
        reqs = requests[requests["deployment"] == name]
        bill = billing[billing["deployment"] == name]
        kpis = latency_kpis(reqs, spec.warmup, slo)
        ready_area = float(sim.ready_area[d])
        busy = sim.busy_time(d, end)
        cost = float(bill["cost_usd"].sum())
        ok = reqs[reqs["status"] == "ok"]
        tokens = float(ok["input_tokens"].sum() + ok["output_tokens"].sum())
        kpis.update(
            {
                "http_503": int(st.d_http_503[d]),
                "http_429": int(st.d_http_429[d]),
                "gpu_seconds": float((bill["seconds"] * bill["gpus"]).sum()),
                "cost_usd": cost,
                "serverless_cost_usd": _serverless_cost(loaded, dep_spec.model, reqs),
                "cost_per_million_tokens_usd": cost / tokens * 1e6 if tokens else None,
                "cold_starts": 0,
                "mean_ready_replicas": ready_area / end if end > 0 else 0.0,
                "max_ready_replicas": int(sim.max_ready[d]),
                "pending_replica_seconds": 0.0,
                "utilization": busy / ready_area if ready_area > 0 else 0.0,
            }
        )
        per[name] = {key: kpis[key] for key in KPI_KEYS}
    total = latency_kpis(requests, spec.warmup, slo)
    sums = ("http_503", "http_429", "gpu_seconds", "cost_usd", "cold_starts",
            "mean_ready_replicas", "pending_replica_seconds")
    for key in sums:
        total[key] = sum(p[key] for p in per.values())
    serverless = [p["serverless_cost_usd"] for p in per.values()]
    total["serverless_cost_usd"] = (
        None if None in serverless else float(sum(s for s in serverless if s is not None))
    )
    ok = requests[requests["status"] == "ok"]
    tokens = float(ok["input_tokens"].sum() + ok["output_tokens"].sum())
    total["cost_per_million_tokens_usd"] = total["cost_usd"] / tokens * 1e6 if tokens else None
    total["max_ready_replicas"] = max_overlap(
        billing["start_s"].to_numpy(), billing["end_s"].to_numpy()
    )
    ready_total = float(sim.ready_area.sum())
    busy_total = sum(sim.busy_time(d, end) for d in range(len(spec.deployments)))
    total["utilization"] = busy_total / ready_total if ready_total > 0 else 0.0
    return {
        "name": spec.name,
        "seed": spec.seed,
        "simulated_s": end,
        "wall_s": 0.0,
        "capsim_version": __version__,
        "total": {key: total[key] for key in KPI_KEYS},
        "deployments": per,
        "scenario": loaded.resolved(),
    }
