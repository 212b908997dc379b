"""Analyses built on repeated runs: where dedicated GPUs beat serverless per token.

``breakeven(scenario)`` answers "at which request rates do dedicated GPUs
cost less per token than the same tokens on serverless?" by simulation, not
only arithmetic: the deployment's traffic is scaled up and down and each rate
is run through the whole model — autoscaling, cold starts, scale to zero,
billing — so idle replicas, warm minimums and cold starts all count.  The
answer is every range of rates where dedicated is cheaper (an autoscaled
fleet's cost per token is a sawtooth, so there may be several), both priced
over the tokens actually served, and a rate where the dedicated deployment
misses its SLO is never counted as a saving.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.errors import InputError
from sim.run import ScenarioLike, _loaded, run
from sim.scenario.loader import LoadedScenario, load_scenario

_RATE_KEYS = {
    "poisson": ("rps",),
    "diurnal": ("mean_rps",),
    "ramp": ("start_rps", "end_rps"),
    "burst": ("base_rps", "burst_rps"),
    "spikes": ("base_rps",),
}


def scale_traffic(traffic: dict[str, Any], factor: float) -> dict[str, Any]:
    """A copy of a resolved ``traffic`` section with its arrival rate × ``factor``."""
    arrivals = dict(traffic["arrivals"])
    kind = arrivals["kind"]
    if kind == "trace":
        arrivals["rate_scale"] = arrivals.get("rate_scale", 1.0) * factor
    else:
        for key in _RATE_KEYS[kind]:
            arrivals[key] = arrivals[key] * factor
        if kind == "spikes":
            arrivals["spikes"] = [{**s, "rps": s["rps"] * factor} for s in arrivals["spikes"]]
    return {**traffic, "arrivals": arrivals}


@dataclass(frozen=True)
class Point:
    factor: float
    rps: float
    on_demand_per_million: float | None
    serverless_per_million: float | None
    cost_usd: float
    serverless_cost_usd: float
    ok_fraction: float
    slo_attainment: float | None
    ttft_p99_s: float | None
    meets_slo: bool
    cheaper: bool  # dedicated costs less per served token and meets the SLO
    note: str  # why the rate is left out of the cheaper ranges, if it misses the SLO


@dataclass(frozen=True)
class Breakeven:
    """Every range of rates where dedicated GPUs cost less per token than serverless."""

    deployment: str
    # [low_rps, high_rps] of each range where dedicated is cheaper and meets the SLO; an
    # end at the first or last rate simulated means the range may go on beyond it
    cheaper_intervals: list[tuple[float, float]]
    crossings: list[float]  # rates where the answer changes, between two simulated rates
    points: pd.DataFrame  # one row per simulated rate

    @property
    def rps(self) -> float | None:
        """The first rate above which dedicated becomes cheaper (None if it never does
        inside the range); see :attr:`cheaper_intervals` for where it stops being so."""
        lowest = float(self.points["rps"].min()) if len(self.points) else None
        for low, _high in self.cheaper_intervals:
            if low != lowest:
                return low
        return None

    def document(self) -> dict[str, Any]:
        """``breakeven.json``: the ranges, the crossings and the table."""
        from sim.io.run import json_safe

        return json_safe({
            "deployment": self.deployment,
            "cheaper_intervals": [list(i) for i in self.cheaper_intervals],
            "crossings": self.crossings,
            "rps_range": [float(self.points["rps"].min()), float(self.points["rps"].max())],
            "points": self.points.to_dict("records"),
        })

    def plot(self) -> Figure:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        pts = self.points.sort_values("rps")
        ax.plot(pts["rps"], pts["on_demand_per_million"], "o-", label="on-demand (GPU-seconds)")
        ax.plot(pts["rps"], pts["serverless_per_million"], "s--",
                label="serverless (same served tokens)")
        missed = pts[~pts["meets_slo"].astype(bool)]
        if len(missed):
            ax.scatter(missed["rps"], missed["on_demand_per_million"], marker="x", s=90,
                       color="red", zorder=3, label="dedicated misses the SLO")
        for i, (low, high) in enumerate(self.cheaper_intervals):
            ax.axvspan(low, high, color="green", alpha=0.12,
                       label="dedicated cheaper and meets the SLO" if i == 0 else None)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("request rate (req/s, log scale)")
        ax.set_ylabel("USD per 1M served tokens (log scale)")
        ax.set_title(f"{self.deployment}: on-demand vs serverless cost per token")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        return fig


def _single_deployment(loaded: LoadedScenario, name: str | None) -> tuple[dict[str, Any], int]:
    doc = loaded.resolved()
    names = [d["name"] for d in doc["deployments"]]
    if name is None:
        index = 0
    elif name in names:
        index = names.index(name)
    else:
        raise InputError(f"no deployment {name!r} (deployments: {', '.join(names)})",
                         where="--deployment")
    doc["deployments"] = [doc["deployments"][index]]
    return doc, index


def breakeven(
    scenario: ScenarioLike,
    deployment: str | None = None,
    *,
    low: float = 1 / 16,
    high: float = 16.0,
    grid: int = 7,
    tolerance: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> Breakeven:
    """Every range of rates where one deployment's on-demand cost per 1M tokens is below
    serverless while it meets the scenario's SLO.

    The deployment's arrival rate is scaled by factors from ``low`` to ``high``
    (``grid`` points, log-spaced), each simulated; between every two
    neighbouring rates where the answer changes, the crossing is narrowed by
    bisection (in log rate) to a relative width of ``tolerance``.  Both prices
    count the same tokens: those of the requests served ok.  A rate at which
    the deployment serves less than 99 % of its requests, or misses its SLO
    (99 % attainment, every p99 objective), is marked and left out of the ranges.
    """
    from sim.plan.search import judge
    from sim.plan.spec import PlanSpec
    from sim.plan.worker import eval_doc

    loaded = _loaded(scenario, None)
    doc, _ = _single_deployment(loaded, deployment)
    name = doc["deployments"][0]["name"]
    base_traffic = doc["deployments"][0]["traffic"]
    slo = loaded.spec.slo.model_dump()
    rules = PlanSpec()
    cache: dict[float, Point] = {}

    def at(factor: float) -> Point:
        if factor not in cache:
            scaled = {**doc, "deployments": [
                {**doc["deployments"][0], "traffic": scale_traffic(base_traffic, factor)}
            ]}
            one = load_scenario(scaled, base_dir=loaded.base_dir)
            facts = eval_doc(run(one), one, name)
            cache[factor] = _point(facts, judge(facts, one.spec.seed, slo, rules).reasons,
                                   factor)
            if progress is not None:
                p = cache[factor]
                tail = "" if p.meets_slo else f" — misses the SLO: {p.note}"
                progress(f"{p.rps:.4g} req/s: on-demand "
                         f"{_money(p.on_demand_per_million)} vs serverless "
                         f"{_money(p.serverless_per_million)} per 1M tokens{tail}")
        return cache[factor]

    factors = [float(f) for f in np.geomspace(low, high, grid)]
    points = [at(f) for f in factors]
    crossings: list[float] = []
    ends: dict[float, float] = {}  # factor of a grid point -> rate where its side ends above
    begins: dict[float, float] = {}  # ... and where it begins below
    for a, b in itertools.pairwise(points):
        if a.cheaper == b.cheaper:
            continue
        lo, hi = a.factor, b.factor
        while hi / lo > 1 + tolerance:
            mid = math.sqrt(lo * hi)
            if at(mid).cheaper == a.cheaper:
                lo = mid
            else:
                hi = mid
        rate = math.sqrt(at(lo).rps * at(hi).rps)
        crossings.append(rate)
        ends[a.factor] = rate
        begins[b.factor] = rate
    intervals: list[tuple[float, float]] = []
    start: float | None = None
    for i, p in enumerate(points):
        if p.cheaper and start is None:
            start = begins[p.factor] if i > 0 else p.rps
        last = i == len(points) - 1
        if start is not None and (last or not points[i + 1].cheaper):
            end = p.rps if last else ends[p.factor]
            intervals.append((start, end))
            start = None
    table = pd.DataFrame([p.__dict__ for p in sorted(cache.values(), key=lambda p: p.factor)])
    return Breakeven(deployment=name, cheaper_intervals=intervals, crossings=crossings,
                     points=table)


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.3f}"


def _point(facts: dict[str, Any], reasons: list[str], factor: float) -> Point:
    from sim.plan.search import p99_ttft

    k = facts["kpis"]
    served = facts["served_input_tokens"] + facts["served_output_tokens"]
    serverless = facts["serverless_usd"]
    if serverless is None:
        raise InputError("no serverless price for the model: set billing.serverless")
    cost = float(k["cost_usd"])
    on_demand = cost / served * 1e6 if served else None
    per_token = serverless / served * 1e6 if served else None
    meets = not reasons
    return Point(
        factor=factor,
        rps=k["requests"] / facts["duration_s"],
        on_demand_per_million=on_demand,
        serverless_per_million=per_token,
        cost_usd=cost,
        serverless_cost_usd=float(serverless),
        ok_fraction=k["ok"] / k["requests"] if k["requests"] else 0.0,
        slo_attainment=k.get("slo_attainment"),
        ttft_p99_s=p99_ttft(k),
        meets_slo=meets,
        cheaper=meets and on_demand is not None and per_token is not None
        and on_demand <= per_token,
        note="; ".join(reasons),
    )
