"""``sim.run``: a scenario in, a :class:`~sim.results.Result` out.  Pure: no files, no prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import simpy

from sim import __version__, catalog
from sim.billing import bill
from sim.billing.ondemand import USAGE_COLUMNS
from sim.billing.serverless import price_tokens
from sim.engine.core import STATUS_NAMES, ClientPolicy, DeploymentPlan, Simulation
from sim.engine.rng import seed_sequence, stream
from sim.fleet.control import ColdStart, ControlPlane, DeploymentControlPlan
from sim.fleet.inventory import Inventory
from sim.fleet.spec import BackgroundSpec, OutageSpec, sampler
from sim.metrics.stream import Finished, RequestStats
from sim.metrics.summary import KPI_KEYS, exact_percentiles, max_overlap
from sim.perf import Shape, build_shape
from sim.policies import get_policy
from sim.results import Result
from sim.scenario.loader import LoadedScenario, load_scenario
from sim.scenario.schema import Scenario
from sim.workload import Workload
from sim.workload.generate import WorkloadStream

ScenarioLike = LoadedScenario | Scenario | str | Path | Mapping[str, Any]

# The engine works through arrivals one window of this many simulated seconds
# at a time, so its request arrays hold about an hour of traffic whatever the
# horizon.  Results do not depend on it (a test compares window lengths).
CHUNK_S = 3600.0


class _Tally:
    """Receives the engine's finished requests: streaming statistics, and the rows if kept."""

    def __init__(self, n_deployments: int, warmup_s: float, slo: dict[str, float | None],
                 keep_requests: bool):
        self.stats = [RequestStats(warmup_s, slo) for _ in range(n_deployments)]
        self.parts: list[Finished] | None = [] if keep_requests else None

    def __call__(self, batch: Finished) -> None:
        for d, stats in enumerate(self.stats):
            stats.add(batch.select(batch.dep == d))
        if self.parts is not None:
            self.parts.append(batch)


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
    keep_requests: bool = True,
    chunk_s: float | None = CHUNK_S,
) -> Result:
    """Simulate ``scenario`` (a path, a mapping, or a loaded scenario).

    ``progress`` is called now and then with the simulated time reached.
    ``keep_requests=False`` drops the per-request table (``Result.requests``
    is then empty): memory stays flat however long the horizon, and the
    summary's latency percentiles come from quantile sketches (within 0.5 %
    relative of an order statistic at the percentile's rank) instead of
    being exact.  ``chunk_s`` is the engine's window of arrivals (``None``:
    all at once); it changes memory use, never results.
    """
    loaded = _loaded(scenario, overrides)
    spec = loaded.spec
    wall0 = time.perf_counter()
    inventory = Inventory.from_scenario(spec.regions)
    shapes: list[Shape] = []
    plans: list[DeploymentPlan] = []
    controls: list[DeploymentControlPlan] = []
    for dep in spec.deployments:
        shape = build_shape(
            dep.model, dep.shape, max_concurrency=dep.max_concurrency, base_dir=loaded.base_dir
        )
        work = WorkloadStream(
            dep.traffic,
            spec.duration,
            seed_sequence(spec.seed, "deployment", dep.name, "traffic"),
            base_dir=loaded.base_dir,
        )
        empty = Workload.empty()
        shapes.append(shape)
        candidates = inventory.candidates(dep.region, shape.accelerator)
        plans.append(
            DeploymentPlan(
                name=dep.name,
                shape=shape,
                arrival_s=empty.arrival_s,
                input_tokens=empty.input_tokens,
                output_tokens=empty.output_tokens,
                source=work,
                replicas=0,
                datacenter="",
                max_queue=dep.max_queue,
                queue_on_cold_start=dep.cold_start_mode == "queue",
                router=dep.router.policy,
                balance_abs=float(dep.router.balance_abs),
                balance_rel=float(dep.router.balance_rel),
                prefix_caching=dep.prefix_caching,
                block_tokens=dep.traffic.hash_block_tokens,
                max_num_batched_tokens=dep.max_num_batched_tokens,
                kv_block_tokens=dep.kv_block_tokens,
                kv_admission=dep.kv_admission,
                context_tokens=shape.model_info.max_context,
            )
        )
        cold = dep.cold_start
        controls.append(
            DeploymentControlPlan(
                name=dep.name,
                accelerator=shape.accelerator,
                gpus=shape.gpus,
                weight_bytes=shape.weight_bytes,
                candidates=candidates,
                pinned=dep.region is None or catalog.is_datacenter(dep.region),
                min_replicas=dep.min_replicas,
                max_replicas=dep.resolved_max_replicas,
                policy=get_policy(dep.autoscaler.policy)(dep.autoscaler),
                cold_start=ColdStart(
                    scheduling=sampler(cold.scheduling),
                    download_rate=sampler(cold.weight_download_rate),
                    initialization=sampler(cold.initialization),
                ),
                initially_ready=dep.warm_start,
                rng=stream(spec.seed, "deployment", dep.name, "cold_start"),
            )
        )
    control = ControlPlane(
        controls,
        inventory,
        replica_mtbf_s=spec.faults.replica_mtbf,
        fault_rng=stream(spec.seed, "faults", "replicas"),
    )
    clients = spec.clients
    tally = _Tally(len(spec.deployments), spec.warmup, spec.slo.model_dump(), keep_requests)
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
        control=control,
        chunk_s=chunk_s,
        on_finished=tally,
        router_rng=stream(spec.seed, "routers"),
        engine=spec.engine,
    )
    _schedule_events(sim, control, spec)
    sim.run(progress)
    finished = Finished.concat(tally.parts) if tally.parts is not None else None
    tally.parts = None
    requests = _requests_table(finished if finished is not None else Finished.concat([]), sim,
                               control)
    timeline = _timeline_table(sim)
    billing = _billing_table(sim, control, loaded, shapes)
    summary = _summary(sim, control, loaded, tally.stats, finished, billing)
    del finished
    summary["wall_s"] = time.perf_counter() - wall0
    allocation = pd.DataFrame([row.__dict__ for row in sim.allocation],
                              columns=["t_end", "datacenter", "accelerator", "holder", "gpus"])
    return Result(summary, requests, timeline, billing, loaded.resolved(), allocation)


def _schedule_events(sim: Simulation, control: ControlPlane, spec: Scenario) -> None:
    """Background demand steps and datacenter outages, as SimPy processes."""
    env = sim.env

    def steps(bg: BackgroundSpec) -> simpy.events.ProcessGenerator:
        for step in bg.steps:
            if step.at > 0:
                yield env.timeout(step.at - env.now)
            control.background(bg.datacenter, bg.accelerator, step.gpus)

    # other tenants hold their t = 0 GPUs before any deployment is placed
    for bg in spec.background_demand:
        for step in bg.steps:
            if step.at == 0:
                control.inventory.set_background(bg.datacenter, bg.accelerator, step.gpus)

    def outage(o: OutageSpec) -> simpy.events.ProcessGenerator:
        yield env.timeout(o.start)
        yield from control.outage(o.datacenter, o.duration)

    for bg in spec.background_demand:
        env.process(steps(bg))
    for o in spec.faults.outages:
        env.process(outage(o))


def _requests_table(st: Finished, sim: Simulation, control: ControlPlane) -> pd.DataFrame:
    dcs = sim.kernel_dc
    life_of = np.full(sim.n_replicas + 1, -1, np.int64)  # life_of[-1]: never served
    for life in control.lives:
        if life.kernel >= 0:
            life_of[life.kernel] = life.id
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
            "cached_tokens": st.cached,
            "output_tokens": st.out,
            "replica": life_of[st.replica],
            "datacenter": pd.Categorical.from_codes(
                _dc_codes(st.replica, dcs), categories=sorted(set(dcs))
            ),
        }
    )
    df["ttft_s"], df["tpot_s"], df["e2e_s"] = st.latencies()
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


def _billing_table(
    sim: Simulation, control: ControlPlane, loaded: LoadedScenario, shapes: list[Shape]
) -> pd.DataFrame:
    """Billing lines: one per replica that was billed, one per reservation."""
    spec = loaded.spec.billing
    rows = []
    end = sim.end_s
    for life in control.lives:
        start = life.ready_s if spec.bill_from == "ready" else life.allocated_s
        if np.isnan(start):
            continue  # never accepted a request (or never got GPUs): not billed
        dep = loaded.spec.deployments[life.deployment]
        shape = shapes[life.deployment]
        restricted = dep.region is not None and catalog.is_datacenter(dep.region)
        rows.append({
            "deployment": dep.name, "replica": life.id, "datacenter": life.datacenter,
            "accelerator": shape.accelerator, "gpus": life.gpus, "start_s": start,
            "end_s": life.stopped_s if not np.isnan(life.stopped_s) else end,
            "usd_per_gpu_hour": _price(loaded, shape.accelerator)
            * (spec.region_premium if restricted else 1.0),
        })
    usage = pd.DataFrame(rows, columns=USAGE_COLUMNS)
    reserved_rates = {
        acc: spec.reserved_gpu_hour_usd.get(acc, _price(loaded, acc)) for acc in spec.reserved
    }
    return bill(usage, reserved=dict(spec.reserved), reserved_usd_per_gpu_hour=reserved_rates,
                end_s=end)


def _serverless_cost(loaded: LoadedScenario, model: str, stats: RequestStats,
                     simulated_hit_rate: float | None = None) -> float | None:
    """The deployment's requests priced per token; None when no price is known.

    Cached input is priced at the hit rate simulated on the deployment when
    its traffic carries prefix information (``simulated_hit_rate``), else at
    ``billing.prefix_cache_hit_rate``.
    """
    return price_tokens(loaded.spec.billing, model, float(stats.input_tokens),
                        float(stats.output_tokens), simulated_hit_rate)


def _cost_of(billing: pd.DataFrame, kind: str) -> float:
    return float(billing.loc[billing["kind"] == kind, "cost_usd"].sum())


def _reserved_share(loaded: LoadedScenario, lines: pd.DataFrame) -> float:
    """What the GPU-seconds a reservation covered for these lines cost at its price."""
    billing = loaded.spec.billing
    share = 0.0
    for acc, seconds in lines.groupby("accelerator")["reserved_gpu_seconds"].sum().items():
        rate = billing.reserved_gpu_hour_usd.get(str(acc), _price(loaded, str(acc)))
        share += float(seconds) * rate / 3600.0
    return share


def _summary(
    sim: Simulation,
    control: ControlPlane,
    loaded: LoadedScenario,
    stats: list[RequestStats],
    finished: Finished | None,
    billing: pd.DataFrame,
) -> dict[str, Any]:
    """The summary; latency percentiles exact when ``finished`` (every request) is given."""
    spec = loaded.spec
    end = sim.end_s
    per: dict[str, dict[str, Any]] = {}
    for d, dep_spec in enumerate(spec.deployments):
        name = dep_spec.name
        bill_lines = billing[billing["deployment"] == name]
        kpis = stats[d].kpis()
        if finished is not None:
            kpis.update(exact_percentiles(finished.select(finished.dep == d), spec.warmup))
        ready_area = float(sim.ready_area[d])
        busy = sim.busy_time(d, end)
        cost = float(bill_lines["cost_usd"].sum()) + _reserved_share(loaded, bill_lines)
        tokens = float(stats[d].ok_input_tokens + stats[d].ok_output_tokens)
        counts = sim.counters(d)
        kpis.update(
            {
                "http_503": counts["http_503"],
                "http_429": counts["http_429"],
                "gpu_seconds": float(bill_lines["gpu_seconds"].sum()),
                "cost_usd": cost,
                "serverless_cost_usd": _serverless_cost(
                    loaded, dep_spec.model, stats[d],
                    sim.hit_rate(d) if sim.has_prefixes[d] and dep_spec.prefix_caching
                    else None),
                "cost_per_million_tokens_usd": cost / tokens * 1e6 if tokens else None,
                "cold_starts": control.deps[d].cold_starts,
                "mean_ready_replicas": ready_area / end if end > 0 else 0.0,
                "max_ready_replicas": int(sim.max_ready[d]),
                "pending_replica_seconds": control.deps[d].pending_area,
                "utilization": busy / ready_area if ready_area > 0 else 0.0,
            }
        )
        per[name] = {key: kpis[key] for key in KPI_KEYS}
        ctl = control.deps[d]
        per[name].update(
            http_400=counts["http_400"], resends=counts["resends"],
            preemptions=counts["preemptions"], replica_crashes=ctl.crashes,
            final_state=ctl.state, final_label=control.label(ctl),
            prefix_cache_hit_rate=sim.hit_rate(d),
        )
    all_stats = RequestStats(spec.warmup, spec.slo.model_dump())
    for one in stats:
        all_stats.merge(one)
    total = all_stats.kpis()
    if finished is not None:
        total.update(exact_percentiles(finished, spec.warmup))
    sums = ("http_503", "http_429", "gpu_seconds", "cold_starts", "mean_ready_replicas",
            "pending_replica_seconds")
    for key in sums:
        total[key] = sum(p[key] for p in per.values())
    # the total pays for the whole reservation, idle GPUs included
    total["cost_usd"] = float(billing["cost_usd"].sum())
    serverless = [p["serverless_cost_usd"] for p in per.values()]
    total["serverless_cost_usd"] = (
        None if None in serverless else float(sum(s for s in serverless if s is not None))
    )
    tokens = float(all_stats.ok_input_tokens + all_stats.ok_output_tokens)
    total["cost_per_million_tokens_usd"] = total["cost_usd"] / tokens * 1e6 if tokens else None
    ready = [(life.ready_s, life.stopped_s if not np.isnan(life.stopped_s) else end)
             for life in control.lives if not np.isnan(life.ready_s)]
    total["max_ready_replicas"] = max_overlap(
        np.array([a for a, _ in ready]), np.array([b for _, b in ready])
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
        "latency_percentiles": "exact" if finished is not None else "sketch",
        "total": {key: total[key] for key in KPI_KEYS}
        | {
            "replica_crashes": sum(c.crashes for c in control.deps),
            "prefix_cache_hit_rate": sim.hit_rate(None),
            **{key: sum(p[key] for p in per.values())
               for key in ("http_400", "resends", "preemptions")},
            "on_demand_cost_usd": _cost_of(billing, "on_demand"),
            "reserved_cost_usd": _cost_of(billing, "reserved"),
        },
        "deployments": per,
        "scenario": loaded.resolved(),
    }
