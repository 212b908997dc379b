"""Analyses built on repeated runs: the on-demand / serverless break-even rate.

``breakeven(scenario)`` answers "from what request rate do dedicated GPUs
cost less per token than the same traffic on serverless?" by simulation, not
only arithmetic: the deployment's traffic is scaled up and down and each rate
is run through the whole model — autoscaling, cold starts, scale to zero,
billing — so idle replicas, warm minimums and cold starts all count.
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
from sim.results import Result
from sim.run import ScenarioLike, _loaded, run
from sim.scenario.loader import LoadedScenario, load_scenario
from sim.units import parse_duration

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
    serverless_per_million: float
    cost_usd: float
    serverless_cost_usd: float
    ok_fraction: float


@dataclass(frozen=True)
class Breakeven:
    """The rate where on-demand cost per 1M tokens meets serverless, and the curve."""

    deployment: str
    rps: float | None  # None when the curves do not cross in the range searched
    points: pd.DataFrame  # one row per simulated rate

    def plot(self) -> Figure:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        pts = self.points.sort_values("rps")
        ax.plot(pts["rps"], pts["on_demand_per_million"], "o-", label="on-demand (GPU-seconds)")
        ax.plot(pts["rps"], pts["serverless_per_million"], "s--", label="serverless (per token)")
        if self.rps is not None:
            ax.axvline(self.rps, color="grey", linestyle=":",
                       label=f"break-even ≈ {self.rps:.3g} req/s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("request rate (req/s, log scale)")
        ax.set_ylabel("USD per 1M tokens (log scale)")
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
    """Find the rate where one deployment's on-demand cost per 1M tokens equals serverless.

    The deployment's arrival rate is scaled by factors from ``low`` to ``high``
    (``grid`` points, log-spaced), each simulated; the first bracket where
    on-demand becomes cheaper is then narrowed by bisection (in log rate) to a
    relative width of ``tolerance``.  Cost per 1M tokens counts the tokens of
    requests served; serverless prices every request of the traffic.
    """
    loaded = _loaded(scenario, None)
    doc, _ = _single_deployment(loaded, deployment)
    name = doc["deployments"][0]["name"]
    base_traffic = doc["deployments"][0]["traffic"]
    cache: dict[float, Point] = {}

    def at(factor: float) -> Point:
        if factor not in cache:
            scaled = {**doc, "deployments": [
                {**doc["deployments"][0], "traffic": scale_traffic(base_traffic, factor)}
            ]}
            res = run(load_scenario(scaled, base_dir=loaded.base_dir))
            cache[factor] = _point(res, factor)
            if progress is not None:
                p = cache[factor]
                progress(f"{p.rps:.4g} req/s: on-demand "
                         f"{_money(p.on_demand_per_million)} vs serverless "
                         f"{_money(p.serverless_per_million)} per 1M tokens")
        return cache[factor]

    factors = np.geomspace(low, high, grid)
    points = [at(float(f)) for f in factors]
    rps = None
    for a, b in itertools.pairwise(points):
        if _cheaper(a) is False and _cheaper(b) is True:
            lo, hi = a.factor, b.factor
            while hi / lo > 1 + tolerance:
                mid = math.sqrt(lo * hi)
                if _cheaper(at(mid)):
                    hi = mid
                else:
                    lo = mid
            rps = math.sqrt(at(lo).rps * at(hi).rps)
            break
    table = pd.DataFrame([p.__dict__ for p in sorted(cache.values(), key=lambda p: p.factor)])
    return Breakeven(deployment=name, rps=rps, points=table)


def _cheaper(p: Point) -> bool | None:
    if p.on_demand_per_million is None:
        return None
    return p.on_demand_per_million <= p.serverless_per_million


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.3f}"


def _point(res: Result, factor: float) -> Point:
    t = res.summary["total"]
    reqs = res.requests
    ok = reqs[reqs["status"] == "ok"]
    served = float(ok["input_tokens"].sum() + ok["output_tokens"].sum())
    offered = float(reqs["input_tokens"].sum() + reqs["output_tokens"].sum())
    serverless = t["serverless_cost_usd"]
    if serverless is None:
        raise InputError("no serverless price for the model: set billing.serverless")
    span = parse_duration(res.scenario["duration"])
    return Point(
        factor=factor,
        rps=len(reqs) / span,
        on_demand_per_million=t["cost_usd"] / served * 1e6 if served else None,
        serverless_per_million=serverless / offered * 1e6 if offered else math.inf,
        cost_usd=t["cost_usd"],
        serverless_cost_usd=serverless,
        ok_fraction=len(ok) / len(reqs) if len(reqs) else 0.0,
    )
