"""``sim.run``: a scenario in, a :class:`~sim.results.Result` out.  Pure: no files, no prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import simpy

from sim import __version__, catalog
from sim.billing.rules import billing_table
from sim.engine.core import STATUS_NAMES, ClientPolicy, DeploymentPlan, Simulation
from sim.engine.rng import seed_sequence, stream
from sim.estimate import estimate
from sim.fleet.control import ColdStart, ControlPlane, DeploymentControlPlan, ReplicaLife
from sim.fleet.inventory import Inventory
from sim.fleet.spec import BackgroundSpec, OutageSpec, sampler
from sim.metrics.stream import Finished, RequestStats
from sim.metrics.summary import Measured, summarize
from sim.metrics.timeline import TimelineTally, add_columns
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
                 keep_requests: bool, interval_s: float, sink: RequestSink | None = None):
        self.stats = [RequestStats(warmup_s, slo) for _ in range(n_deployments)]
        self.timeline = TimelineTally(n_deployments, interval_s)
        self.parts: list[Finished] | None = [] if keep_requests else None
        self.sink = sink
        self.sim: Simulation | None = None
        self.control: ControlPlane | None = None

    def __call__(self, batch: Finished) -> None:
        for d, stats in enumerate(self.stats):
            mine = batch.dep == d
            stats.add(batch if mine.all() else batch.select(mine))
        self.timeline.add(batch)
        if self.parts is not None:
            self.parts.append(batch)
        if self.sink is not None and self.sim is not None and self.control is not None:
            ordered = Finished.concat([batch])  # arrival order within the window
            self.sink.write(_requests_table(ordered, self.sim, self.control), ordered.index)


class RequestSink(Protocol):
    """Where :func:`run` streams the request table, a window at a time
    (:class:`sim.io.RequestsFile` writes it to Parquet)."""

    def write(self, table: pd.DataFrame, index: np.ndarray) -> None:
        """One window's finished requests; ``index``: their arrival order in the run."""

    def close(self) -> None:
        """No more requests."""

    def sample(self) -> pd.DataFrame:
        """A uniform sample of the rows written, for plots."""

    def exact_percentiles(self, deployments: Sequence[str],
                          warmup_s: float) -> dict[str | None, dict[str, Any]]:
        """The summary's latency percentiles per deployment and for all (None), exact."""


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
    requests_sink: RequestSink | None = None,
) -> Result:
    """Simulate ``scenario`` (a path, a mapping, or a loaded scenario).

    ``progress`` is called now and then with the simulated time reached.
    ``keep_requests=False`` drops the per-request table (``Result.requests``
    is then empty): memory stays flat however long the horizon, and the
    summary's latency percentiles come from quantile sketches (within 0.5 %
    relative of an order statistic at the percentile's rank) instead of
    being exact.  ``chunk_s`` is the engine's window of arrivals (``None``:
    all at once); it changes memory use, never results.
    ``requests_sink`` (e.g. :class:`sim.io.RequestsFile`) receives the request
    table a window at a time instead (``keep_requests`` is then ignored):
    ``Result.requests`` is empty, ``Result.requests_sample`` holds a uniform
    sample for plots, and the summary's percentiles are still exact, read
    back from the sink.
    """
    loaded = _loaded(scenario, overrides)
    estimate(loaded, keep_requests=keep_requests).refuse(loaded.source)
    spec = loaded.spec
    wall0 = time.perf_counter()
    inventory = Inventory.from_scenario(spec.regions)
    shapes: list[Shape] = []
    plans: list[DeploymentPlan] = []
    controls: list[DeploymentControlPlan] = []
    works: list[WorkloadStream] = []
    for dep in spec.deployments:
        shape = build_shape(
            dep.model, dep.shape, max_concurrency=dep.max_concurrency, base_dir=loaded.base_dir,
            serving_engine=dep.serving_engine,
        )
        work = WorkloadStream(
            dep.traffic,
            spec.duration,
            seed_sequence(spec.seed, "deployment", dep.name, "traffic"),
            base_dir=loaded.base_dir,
        )
        works.append(work)
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
                saturation=shape.max_throughput,
            )
        )
    control = ControlPlane(
        controls,
        inventory,
        replica_mtbf_s=spec.faults.replica_mtbf,
        fault_rng=stream(spec.seed, "faults", "replicas"),
    )
    clients = spec.clients
    tally = _Tally(len(spec.deployments), spec.warmup, spec.slo.model_dump(),
                   keep_requests and requests_sink is None, spec.timeline_interval,
                   requests_sink)
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
    tally.sim, tally.control = sim, control
    _schedule_events(sim, control, spec)
    sim.run(progress)
    finished = Finished.concat(tally.parts) if tally.parts is not None else None
    tally.parts = None
    requests = _requests_table(finished if finished is not None else Finished.concat([]), sim,
                               control)
    exact: Callable[[int | None], dict[str, Any]] | None = None
    if requests_sink is not None:  # the table is on disk: percentiles read back from it
        sink = requests_sink
        sink.write(requests, np.empty(0, np.int64))  # the columns, should no request finish
        sink.close()
        read_back = sink.exact_percentiles(sim.names, spec.warmup)
        exact = lambda d: read_back[None if d is None else sim.names[d]]  # noqa: E731
    timeline = add_columns(
        _timeline_table(sim), tally.timeline,
        [_serving(control.lives, d, sim.end_s) for d in range(len(shapes))],
        [_saturation(shape, stats) for shape, stats in zip(shapes, tally.stats, strict=True)])
    billing = billing_table(spec.billing, control.lives, spec.deployments,
                            [shape.accelerator for shape in shapes], sim.end_s)
    summary = summarize(
        name=spec.name, seed=spec.seed, end_s=sim.end_s, version=__version__,
        scenario=loaded.resolved(), warmup_s=spec.warmup, slo=spec.slo.model_dump(),
        billing_spec=spec.billing, billing=billing,
        measured=[_measured(sim, control, d, dep.model, shape)
                  for d, (dep, shape) in enumerate(zip(spec.deployments, shapes, strict=True))],
        stats=tally.stats, lives=control.lives, status_names=STATUS_NAMES, finished=finished,
        exact=exact,
    )
    del finished
    summary["wall_s"] = time.perf_counter() - wall0
    # what was simulated, so that results are paired only on the same requests
    summary["traffic_fingerprint"] = {
        dep.name: work.fingerprint.hexdigest() for dep, work in zip(spec.deployments, works,
                                                                   strict=True)
    }
    allocation = pd.DataFrame([row.__dict__ for row in sim.allocation],
                              columns=["t_end", "datacenter", "accelerator", "holder", "gpus"])
    sample = requests_sink.sample() if requests_sink is not None else None
    return Result(summary, requests, timeline, billing, loaded.resolved(), allocation, sample)


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
            "http_503": st.n503,
            "input_tokens": st.inp,
            "cached_tokens": st.cached,
            "output_tokens": st.out,
            "replica": life_of[st.replica],
            "datacenter": pd.Categorical.from_codes(
                _dc_codes(st.replica, dcs), categories=sorted(set(dcs))
            ),
        }
    )
    latency = st.latencies()
    for name in ("user_ttft", "user_e2e", "ttft", "tpot", "e2e"):
        df[f"{name}_s"] = latency[name]
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


def _serving(lives: list[ReplicaLife], d: int, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(ready, stop) times of deployment ``d``'s replicas that became ready."""
    mine = [life for life in lives if life.deployment == d and not np.isnan(life.ready_s)]
    return (np.array([life.ready_s for life in mine], dtype=np.float64),
            np.array([end_s if np.isnan(life.stopped_s) else life.stopped_s for life in mine],
                     dtype=np.float64))


def _saturation(shape: Shape, stats: RequestStats) -> float:
    """One replica's output tokens/s at saturation for the run's mean ok request sizes."""
    if stats.ok == 0:
        return 0.0
    return shape.max_throughput(stats.ok_input_tokens / stats.ok, stats.ok_output_tokens / stats.ok)


def _measured(sim: Simulation, control: ControlPlane, d: int, model: str,
              shape: Shape) -> Measured:
    """What the request path and the control plane measured of deployment ``d``."""
    ctl = control.deps[d]
    counts = sim.counters(d)
    return Measured(
        name=sim.names[d], model=model, accelerator=shape.accelerator,
        http_503=counts["http_503"], http_429=counts["http_429"],
        resends=counts["resends"], preemptions=counts["preemptions"],
        ready_area=float(sim.ready_area[d]), busy_s=sim.busy_time(d, sim.end_s),
        max_ready=int(sim.max_ready[d]), cold_starts=ctl.cold_starts,
        pending_area=ctl.pending_area, crashes=ctl.crashes, final_state=ctl.state,
        final_label=control.label(ctl), saturation=shape.max_throughput,
        prefill_tokens=sim.tokens(d)[0], cached_tokens=sim.cached_tokens(d),
        simulated_hits=sim.has_prefixes[d] and sim.plans[d].prefix_caching,
    )
