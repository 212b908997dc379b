"""The search: analytic pruning, then simulation, then confirmation on fresh seeds.

A *family* is one shape × region × policy.  Each family is searched by a
generator that yields the configurations it wants simulated next and receives
their evaluations, so every family's next probes run side by side on the
executor (the local process pool or a Dask cluster):

* a **static** fleet is sized by galloping up from the capacity bound
  (×1.5 per step) to the first count that holds, then bisecting down to the
  fewest that hold — feasibility is taken as monotone in the replica count;
  the gallop stops early when more replicas no longer lower p99 TTFT (a
  latency floor);
* an **autoscaled** family is searched coordinate by coordinate: the fewest
  ``min_replicas`` that hold (bisection, with ``max_replicas`` at the plan's
  maximum), then the fewest ``max_replicas``, then each load-target value side
  by side (the cheapest that holds is kept), then ``min_replicas`` once more
  under the target chosen.

The search runs on the scenario's seed.  The best few candidates are then
run on fresh seeds (seed + 1, …); a candidate is confirmed when it holds on
every one of them, and the recommendation is the best confirmed candidate by
its mean over those seeds.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.compare.stats import t_ppf
from sim.errors import InputError
from sim.perf import ShapeSpec
from sim.plan.bounds import Bound, Traffic, bound, measure_traffic
from sim.plan.spec import PlanSpec, PolicyCandidate
from sim.plan.worker import evaluate, read_eval
from sim.scenario.loader import LoadedScenario, apply_overrides, load_scenario
from sim.sweep.executors import Executor, SerialExecutor
from sim.sweep.plan import run_id
from sim.sweep.worker import RunTask

HOURS_PER_MONTH = 720.0  # a 30-day month
CONFIDENCE = 0.95


def p99_ttft(kpis: Mapping[str, Any]) -> float | None:
    """The p99 TTFT a candidate is judged on: the user's view (from the first attempt)."""
    value = kpis.get("user_ttft_p99_s")
    return None if value is None else float(value)


@dataclass(frozen=True)
class Config:
    """One candidate configuration of the sized deployment."""

    shape: str  # label: a preset name or "2×H200_141GB FP8"
    region: str | None
    policy: str
    min_replicas: int
    max_replicas: int
    targets: tuple[tuple[str, float], ...] = ()

    @property
    def family(self) -> str:
        return " · ".join(x for x in (self.shape, self.region, self.policy) if x)

    @property
    def static(self) -> bool:
        return self.policy == "static"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"shape": self.shape, "region": self.region,
                               "policy": self.policy}
        if self.static:
            out["replicas"] = self.max_replicas
        else:
            out["min_replicas"] = self.min_replicas
            out["max_replicas"] = self.max_replicas
            out["targets"] = dict(self.targets)
        return out

    def describe(self) -> str:
        """Short: ``minimal ×3, static`` or ``fast, fireworks 1–4 (default=0.65)``."""
        where = f" in {self.region}" if self.region else ""
        if self.static:
            return f"{self.shape}{where} ×{self.max_replicas}, static"
        text = f"{self.shape}{where}, {self.policy} {self.min_replicas}–{self.max_replicas}"
        if self.targets:
            text += " (" + ", ".join(f"{k.split('.')[-1]}={v:g}" for k, v in self.targets) + ")"
        return text

    @property
    def run_id(self) -> str:
        return run_id({k: v for k, v in self.as_dict().items() if v not in (None, {})})


@dataclass
class Run:
    """One simulated run of a configuration, judged."""

    seed: int
    cost_per_hour: float
    serverless_per_hour: float | None
    ttft_p99_s: float | None
    slo_attainment: float | None
    served_share: float
    share_503: float
    tpot_p99_s: float | None
    e2e_p99_s: float | None
    utilization: float
    mean_ready_replicas: float
    reasons: list[str]

    @property
    def feasible(self) -> bool:
        return not self.reasons


@dataclass
class Evaluation:
    """A configuration over one or more seeds."""

    config: Config
    phase: str  # "search" or "confirm"
    runs: list[Run] = field(default_factory=list)
    gpus_per_replica: int = 0

    @property
    def feasible(self) -> bool:
        return bool(self.runs) and all(r.feasible for r in self.runs)

    @property
    def reasons(self) -> list[str]:
        out: list[str] = []
        for r in self.runs:
            for why in r.reasons:
                text = why if len(self.runs) == 1 else f"seed {r.seed}: {why}"
                out.append(text)
        return out

    def mean(self, key: str) -> float | None:
        values = [getattr(r, key) for r in self.runs]
        if not values or any(v is None for v in values):
            return None
        return float(sum(values) / len(values))

    def interval(self, key: str) -> list[float] | None:
        """The mean's 95 % t-interval over seeds (None for one seed)."""
        values = [getattr(r, key) for r in self.runs]
        if len(values) < 2 or any(v is None for v in values):
            return None
        n = len(values)
        m = sum(values) / n
        sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
        half = t_ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
        return [m - half, m + half]

    def score(self, objective: str) -> tuple[float, float]:
        cost = self.mean("cost_per_hour")
        ttft = self.mean("ttft_p99_s")
        c = math.inf if cost is None else cost
        t = math.inf if ttft is None else ttft
        return (c, t) if objective == "cost" else (t, c)


# --------------------------------------------------------------------------- judging


def judge(doc: Mapping[str, Any], seed: int, slo: Mapping[str, float | None],
          plan: PlanSpec) -> Run:
    """One run's numbers and the reasons it does not hold (none: it holds)."""
    k = doc["kpis"]
    limits = plan.constraints
    requests = int(k["requests"]) or 1
    hours = float(doc["simulated_s"]) / 3600.0
    cost = float(k["cost_usd"]) / hours if hours > 0 else 0.0
    served = doc.get("serverless_usd")
    traffic_h = float(doc["duration_s"]) / 3600.0
    run = Run(
        seed=seed,
        cost_per_hour=cost,
        serverless_per_hour=None if served is None else float(served) / traffic_h,
        ttft_p99_s=p99_ttft(k),
        slo_attainment=k.get("slo_attainment"),
        served_share=int(k["ok"]) / requests,
        # requests that met a 503 (each once), where the summary counts them; else responses
        share_503=int(k.get("requests_with_503", k["http_503"])) / requests,
        tpot_p99_s=k.get("tpot_p99_s"),
        e2e_p99_s=k.get("user_e2e_p99_s", k.get("e2e_p99_s")),  # the user's view
        utilization=float(k["utilization"]),
        mean_ready_replicas=float(k["mean_ready_replicas"]),
        reasons=[],
    )
    why = run.reasons
    if doc.get("cut_off"):
        why.append("cut off at the drain limit with requests still queued")
    if run.served_share < limits.min_served_share:
        why.append(f"served {run.served_share:.2%} of requests "
                   f"(needs {limits.min_served_share:.0%})")
    att = run.slo_attainment
    if att is None or att < limits.min_slo_attainment:
        shown = "nothing measured" if att is None else f"{att:.2%}"
        why.append(f"SLO attainment {shown} (needs {limits.min_slo_attainment:.0%})")
    for key, value, name in (("ttft_p99", run.ttft_p99_s, "TTFT"),
                             ("tpot_p99", run.tpot_p99_s, "TPOT"),
                             ("e2e_p99", run.e2e_p99_s, "end-to-end latency")):
        limit = slo.get(key)
        if limit is not None and (value is None or value > limit):
            shown = "—" if value is None else f"{value:.3g} s"
            why.append(f"p99 {name} {shown} above the {limit:g} s objective")
    if limits.max_503_share is not None and run.share_503 > limits.max_503_share:
        why.append(f"{run.share_503:.3%} of requests met a 503 "
                   f"(at most {limits.max_503_share:.3%})")
    if plan.objective == "ttft" and plan.budget_usd_per_hour is not None \
            and cost > plan.budget_usd_per_hour:
        why.append(f"costs ${cost:,.2f}/h, above the ${plan.budget_usd_per_hour:,.2f}/h budget")
    return run


# --------------------------------------------------------------------------- families

Probe = Generator[list[Config], list[Evaluation], str | None]


@dataclass
class Family:
    shape_label: str
    shape_spec: Any
    region: str | None
    policy: PolicyCandidate
    bound: Bound
    pruned: str | None = None
    note: str | None = None  # why the search stopped without a candidate that holds

    @property
    def label(self) -> str:
        return " · ".join(x for x in (self.shape_label, self.region, self.policy.label) if x)


def _static_cost(fam: Family, lo: int, hi: int) -> Probe:
    def cfg(n: int) -> Config:
        return Config(fam.shape_label, fam.region, "static", n, n)

    n = lo
    (e,) = yield [cfg(n)]
    if e.feasible:
        return None
    prev = e
    while True:
        if n >= hi:
            return f"no replica count up to {hi} holds"
        m = min(hi, max(n + 1, math.ceil(n * 1.5)))
        (e2,) = yield [cfg(m)]
        if e2.feasible:
            break
        t_prev, t_now = prev.mean("ttft_p99_s"), e2.mean("ttft_p99_s")
        if t_prev is not None and t_now is not None and t_now >= 0.99 * t_prev:
            return (f"a latency floor: {m} replicas give p99 TTFT {t_now:.3g} s, "
                    f"no better than {t_prev:.3g} s with {n}")
        n, prev = m, e2
    bad, good = n, m
    while good - bad > 1:
        mid = (bad + good) // 2
        (e,) = yield [cfg(mid)]
        bad, good = (bad, mid) if e.feasible else (mid, good)
    return None


def _fewest(make: Callable[[int], Config], lo: int, hi: int,
            known_good: bool) -> Generator[list[Config], list[Evaluation], int | None]:
    """The fewest n in [lo, hi] for which ``make(n)`` holds (feasibility monotone in n);
    ``known_good``: ``make(hi)`` is known to hold.  None when ``make(hi)`` does not."""
    if not known_good:
        (e,) = yield [make(hi)]
        if not e.feasible:
            return None
    bad, good = lo - 1, hi
    while good - bad > 1:
        mid = (bad + good) // 2
        (e,) = yield [make(mid)]
        bad, good = (bad, mid) if e.feasible else (mid, good)
    return good


def _auto_cost(fam: Family, lo_bound: int, rmin: int, rmax: int) -> Probe:
    label = fam.policy.label
    targets: tuple[tuple[str, float], ...] = ()

    def cfg(mn: int, mx: int, t: tuple[tuple[str, float], ...]) -> Config:
        return Config(fam.shape_label, fam.region, label, mn, mx, t)

    (e,) = yield [cfg(rmin, rmax, targets)]
    mn = rmin
    if not e.feasible:
        found = yield from _fewest(lambda n: cfg(n, rmax, targets), rmin + 1, rmax, False)
        if found is None:
            return f"not even with min_replicas = max_replicas = {rmax}"
        mn = found
    mx = yield from _fewest(lambda n: cfg(mn, n, targets), max(mn, lo_bound, 1), rmax, True)
    assert mx is not None
    best = yield [cfg(mn, mx, targets)]  # known: cached
    best_e = best[0]
    if mn == mx:
        return None  # a fixed fleet: no target to tune
    for key, values in fam.policy.target_values().items():
        tried = [cfg(mn, mx, (*[t for t in targets if t[0] != key], (key, float(v))))
                 for v in values]
        evals = yield tried
        for ev in evals:
            if ev.feasible and ev.score("cost") < best_e.score("cost"):
                best_e = ev
        targets = best_e.config.targets
    if targets and mn > rmin:
        yield from _fewest(lambda n: cfg(n, mx, targets), rmin, mn, True)
    return None


def _within_budget(fam: Family, plan: PlanSpec, lo_bound: int, rmax: int
                   ) -> tuple[int, str | None]:
    assert fam.bound.shape is not None and plan.budget_usd_per_hour is not None
    n = min(rmax, math.floor(plan.budget_usd_per_hour / fam.bound.shape.usd_per_hour))
    if n < lo_bound:
        return n, (f"the budget buys {n} replica{'s' * (n != 1)} at "
                   f"${fam.bound.shape.usd_per_hour:,.2f}/h, fewer than the {lo_bound} needed")
    return n, None


def _static_ttft(fam: Family, n: int) -> Probe:
    yield [Config(fam.shape_label, fam.region, "static", n, n)]
    return None


def _auto_ttft(fam: Family, rmin: int, n: int) -> Probe:
    label = fam.policy.label
    configs = [Config(fam.shape_label, fam.region, label, rmin, n)]
    for key, values in fam.policy.target_values().items():
        configs += [Config(fam.shape_label, fam.region, label, rmin, n, ((key, float(v)),))
                    for v in values]
    yield configs
    return None


# --------------------------------------------------------------------------- the plan


@dataclass
class PlanResult:
    """Everything the planner did: pruned families, every evaluation, the answer."""

    name: str
    deployment: str
    plan: PlanSpec
    slo: dict[str, float | None]
    traffic: Traffic
    search_seed: int
    confirm_seeds: list[int]
    families: list[Family]
    evaluations: list[Evaluation]  # search phase, in the order they were asked for
    confirmed: list[Evaluation]
    best: Evaluation | None
    scenario_doc: dict[str, Any]  # the user's scenario without plan:, overrides applied
    dep_index: int

    def best_scenario(self) -> dict[str, Any] | None:
        """The recommendation as a runnable scenario (the user's document, resized)."""
        if self.best is None:
            return None
        fam = next(f for f in self.families if f.label == self.best.config.family)
        return scenario_for(self.scenario_doc, self.dep_index, fam, self.best.config)


def scenario_for(doc: Mapping[str, Any], index: int, fam: Family, cfg: Config
                 ) -> dict[str, Any]:
    """``doc`` with deployment ``index`` set to ``cfg``."""
    out = copy.deepcopy(dict(doc))
    dep = dict(out["deployments"][index])
    spec = fam.shape_spec
    dep["shape"] = spec if isinstance(spec, str) else spec.model_dump(mode="json",
                                                                      exclude_none=True)
    if cfg.region is not None:
        dep["region"] = cfg.region
    if cfg.static:
        dep["autoscaler"] = {"policy": "static", "replicas": cfg.max_replicas}
    else:
        auto: dict[str, Any] = {"policy": cfg.policy, **copy.deepcopy(fam.policy.params)}
        apply_overrides(auto, dict(cfg.targets))
        dep["autoscaler"] = auto
    dep["min_replicas"] = cfg.min_replicas
    dep["max_replicas"] = cfg.max_replicas
    out["deployments"][index] = dep
    return out


def _shape_label(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    assert isinstance(spec, ShapeSpec)
    precision = f" {spec.precision}" if spec.precision else ""
    return f"{spec.count}×{spec.accelerator}{precision}"


def is_plan_document(doc: Any) -> bool:
    """Whether a scenario document has a ``plan:`` section."""
    return isinstance(doc, dict) and "plan" in doc


def split_plan(doc: Any) -> tuple[dict[str, Any], PlanSpec]:
    """A scenario document → (the scenario without ``plan:``, the validated plan)."""
    from pydantic import ValidationError

    from sim.spec import format_validation_error

    if not isinstance(doc, dict):
        raise InputError("a scenario must be a mapping of keys to values", where="scenario")
    if "plan" not in doc:
        raise InputError("no plan: section (what the planner may change)", where="plan")
    raw = doc["plan"] if doc["plan"] is not None else {}
    base = {k: v for k, v in doc.items() if k != "plan"}
    try:
        plan = PlanSpec.model_validate(raw)
    except ValidationError as exc:
        err = format_validation_error(exc, raw)
        err.where = "plan" if err.where in (None, "scenario") else f"plan.{err.where}"
        raise err from None
    return base, plan


def plan(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    executor: Executor | None = None,
    base_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> PlanResult:
    """Search the configurations a scenario's ``plan:`` section allows; see the module doc.

    ``source`` is a YAML path or a mapping; ``overrides`` (``--set``) apply to
    the document first, ``plan:`` included.  ``executor`` defaults to running
    in this process.
    """
    base, spec, loaded, folder, label = load_plan(source, overrides, base_dir=base_dir)
    try:
        return _search(base, spec, loaded, folder, executor or SerialExecutor(), progress)
    except InputError as err:
        raise err.with_file(label) from None


def load_plan(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    base_dir: str | Path | None = None,
) -> tuple[dict[str, Any], PlanSpec, LoadedScenario, Path, str]:
    """Read and validate a scenario with a ``plan:`` section: (the scenario document without
    it, the plan, the loaded scenario, its folder, its label for errors)."""
    from sim.scenario.loader import read_source

    doc, label, folder = read_source(source, base_dir)
    try:
        if isinstance(doc, dict):
            apply_overrides(doc, overrides or {})
        base, spec = split_plan(doc)
        loaded = load_scenario(base, base_dir=folder)
        _deployment_index(loaded, spec.deployment)
    except InputError as err:
        raise err.with_file(label) from None
    return base, spec, loaded, folder, label


def _deployment_index(loaded: LoadedScenario, name: str | None) -> int:
    names = [d.name for d in loaded.spec.deployments]
    if name is None:
        if len(names) > 1:
            raise InputError(f"the scenario has {len(names)} deployments: name the one to size "
                             f"({', '.join(names)})", where="plan.deployment")
        return 0
    if name not in names:
        raise InputError(f"no deployment {name!r} (deployments: {', '.join(names)})",
                         where="plan.deployment")
    return names.index(name)


def _search(base: dict[str, Any], spec: PlanSpec, loaded: LoadedScenario, folder: Path,
            executor: Executor, progress: Callable[[str], None] | None) -> PlanResult:
    say = progress or (lambda _line: None)
    index = _deployment_index(loaded, spec.deployment)
    dep = loaded.spec.deployments[index]
    slo = loaded.spec.slo.model_dump()
    if all(v is None for v in slo.values()):
        raise InputError("set at least one objective (ttft_p99, tpot_p99, e2e_p99): "
                         "it is what holding means for the planner", where="slo")
    traffic = measure_traffic(loaded, dep)
    resolved = loaded.resolved()
    rmin, rmax = spec.replicas.min, spec.replicas.max
    shapes = spec.shapes or [dep.shape]
    regions: list[str | None] = list(spec.regions) if spec.regions else [None]

    families: list[Family] = []
    for shape_spec in shapes:
        b = bound(dep, shape_spec, traffic, slo, rmax, base_dir=folder)
        for region in regions:
            for pol in spec.candidates():
                fam = Family(_shape_label(shape_spec), shape_spec, region, pol, b, b.reason)
                if fam.pruned is None:
                    probe_cfg = Config(fam.shape_label, region, "static", rmax, rmax) \
                        if pol.is_static else Config(fam.shape_label, region, pol.label,
                                                     rmin, rmax)
                    try:
                        load_scenario(scenario_for(resolved, index, fam, probe_cfg),
                                      base_dir=folder)
                    except InputError as err:
                        fam.pruned = f"cannot be deployed: {err}"
                families.append(fam)
    for fam in families:
        if fam.pruned:
            say(f"dropped {fam.label}: {fam.pruned}")

    cache: dict[tuple[str, int], Evaluation] = {}
    order: list[Evaluation] = []

    def run_all(configs: list[Config], seeds: list[int], phase: str) -> None:
        """Simulate every (config, seed) not yet known, side by side."""
        todo: dict[tuple[str, int], RunTask] = {}
        fam_of = {f.label: f for f in families}
        for cfg in configs:
            for seed in seeds:
                key = (cfg.run_id, seed)
                if key in cache or key in todo:
                    continue
                doc = scenario_for(resolved, index, fam_of[cfg.family], cfg)
                doc["seed"] = seed
                todo[key] = RunTask(cfg.run_id, seed, {"deployment": dep.name}, doc, str(folder),
                                    tables=False)
        if not todo:
            return
        say(f"{phase}: simulating {len(todo)} run{'s' * (len(todo) != 1)}")
        by_key = {}
        for task, outcome in executor.map(evaluate, list(todo.values())):
            by_key[task.key] = outcome
        for cfg in configs:
            for seed in seeds:
                key = (cfg.run_id, seed)
                if key not in todo:
                    continue
                outcome = by_key[key]
                fam = fam_of[cfg.family]
                ev = Evaluation(cfg, phase, gpus_per_replica=fam.bound.shape.gpus
                                if fam.bound.shape else 0)
                if outcome.ok:
                    run = judge(read_eval(outcome), seed, slo, spec)
                else:
                    run = _failed_run(seed, outcome.error or "run failed")
                ev.runs.append(run)
                cache[key] = ev
                if phase == "search":
                    order.append(ev)

    seed0 = loaded.spec.seed
    probes: dict[str, Probe] = {}
    for fam in families:
        if fam.pruned is not None:
            continue
        lo = max(rmin, fam.bound.min_replicas)
        if spec.objective == "cost":
            probes[fam.label] = (_static_cost(fam, lo, rmax) if fam.policy.is_static
                                 else _auto_cost(fam, fam.bound.min_replicas, rmin, rmax))
        else:
            n, why = _within_budget(fam, spec, fam.bound.min_replicas, rmax)
            if why is not None:
                fam.pruned = why
                say(f"dropped {fam.label}: {why}")
                continue
            probes[fam.label] = (_static_ttft(fam, max(n, rmin)) if fam.policy.is_static
                                 else _auto_ttft(fam, min(rmin, n), n))
    asks: dict[str, list[Config]] = {}
    for label, gen in probes.items():
        asks[label] = next(gen)
    rnd = 0
    while asks:
        rnd += 1
        run_all([c for cs in asks.values() for c in cs], [seed0], "search")
        nxt: dict[str, list[Config]] = {}
        for label, configs in asks.items():
            try:
                nxt[label] = probes[label].send([cache[(c.run_id, seed0)] for c in configs])
            except StopIteration as stop:
                fam = next(f for f in families if f.label == label)
                fam.note = stop.value
        asks = nxt

    # confirmation on fresh seeds
    confirm_seeds = [seed0 + 1 + i for i in range(spec.seeds)]
    # each family's best first, so that the few confirmed are different configurations
    per_family: dict[str, list[Evaluation]] = {}
    for e in order:
        if e.feasible and all(x.config != e.config for x in per_family.get(e.config.family, [])):
            per_family.setdefault(e.config.family, []).append(e)
    for evs in per_family.values():
        evs.sort(key=lambda e: e.score(spec.objective))
    ranked = sorted((evs[0] for evs in per_family.values()),
                    key=lambda e: e.score(spec.objective))
    ranked += sorted((e for evs in per_family.values() for e in evs[1:]),
                     key=lambda e: e.score(spec.objective))
    confirmed: list[Evaluation] = []
    best: Evaluation | None = None
    for start in range(0, min(len(ranked), 2 * spec.confirm), spec.confirm):
        batch = [e.config for e in ranked[start:start + spec.confirm]]
        run_all(batch, confirm_seeds, "confirm")
        for cfg in batch:
            gpus = next(e.gpus_per_replica for e in ranked if e.config == cfg)
            ev = Evaluation(cfg, "confirm", gpus_per_replica=gpus)
            ev.runs = [cache[(cfg.run_id, s)].runs[0] for s in confirm_seeds]
            confirmed.append(ev)
        holding = [e for e in confirmed if e.feasible]
        if holding:
            best = min(holding, key=lambda e: e.score(spec.objective))
            break
    if best is not None:
        say(f"best: {best.config.describe()}")
    return PlanResult(
        name=loaded.spec.name, deployment=dep.name, plan=spec, slo=slo, traffic=traffic,
        search_seed=seed0, confirm_seeds=confirm_seeds, families=families, evaluations=order,
        confirmed=confirmed, best=best, scenario_doc=base, dep_index=index,
    )


def _failed_run(seed: int, error: str) -> Run:
    return Run(seed=seed, cost_per_hour=math.nan, serverless_per_hour=None, ttft_p99_s=None,
               slo_attainment=None, served_share=0.0, share_503=0.0, tpot_p99_s=None,
               e2e_p99_s=None, utilization=0.0, mean_ready_replicas=0.0,
               reasons=[f"run failed: {error}"])


def canonical(result: PlanResult) -> str:
    """The plan as canonical JSON (for comparing two plans)."""
    from sim.plan.output import plan_document

    return json.dumps(plan_document(result), sort_keys=True)
