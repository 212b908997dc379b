"""The summary: per-deployment and total KPIs of a run (keys: :mod:`sim.metrics.kpis`).

Every metric is a formula over named timestamps of the request table (see
``docs/metrics.md``): ``arrival_s`` (first attempt), ``attempt_s`` (the attempt
that was served), ``first_token_s``, ``finish_s``; or over the lives of the
replicas and the level monitors of the run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from sim.billing.rules import cost_of, reserved_share
from sim.billing.serverless import price_tokens
from sim.billing.spec import BillingSpec
from sim.metrics.kpis import KPI_KEYS, TOTAL_ONLY_KEYS
from sim.metrics.stream import OK, PERCENTILES, Finished, RequestStats


class Life(Protocol):
    """What the summary reads of one replica's life (``sim.fleet.control.ReplicaLife``)."""

    deployment: int
    gpus: int
    requested_s: float
    allocated_s: float
    ready_s: float
    stopped_s: float
    cold_start: bool


@dataclass(frozen=True)
class Measured:
    """What the request path and the control plane measured of one deployment."""

    name: str
    model: str
    accelerator: str
    http_503: int
    http_429: int
    resends: int  # requests sent again after their replica was lost
    preemptions: int  # running requests preempted for KV blocks (exact engine)
    ready_area: float  # ∫ ready (routable) replicas dt
    busy_s: float  # replica-seconds with at least one request in service
    max_ready: int
    cold_starts: int
    pending_area: float  # ∫ replicas waiting for GPUs dt
    crashes: int
    final_state: str
    final_label: str
    #: output tokens/s one replica sustains at saturation for (input, output) sizes
    saturation: Callable[[float, float], float]
    prefill_tokens: float = 0.0  # prompt tokens prefilled
    cached_tokens: float = 0.0  # of which served from a prefix cache
    simulated_hits: bool = False  # the traffic carried prefix information, caching on


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def exact_percentiles(finished: Finished, warmup_s: float) -> dict[str, float | None]:
    """The summary's latency percentiles, exact: numpy's linear interpolation
    between order statistics of ok requests that arrived at or after ``warmup_s``."""
    sel = (finished.status == OK) & (finished.arrival >= warmup_s)
    values = {name: x[sel] for name, x in finished.latencies().items()}
    values["tpot"] = values["tpot"][~np.isnan(values["tpot"])]
    return {key: _pct(values[metric], p) for key, metric, p in PERCENTILES}


def max_overlap(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray | None = None) -> int:
    """Most intervals ``[start, end)`` open at once (each counting ``weights``, default 1)."""
    if len(starts) == 0:
        return 0
    w = np.ones(len(starts)) if weights is None else np.asarray(weights, dtype=float)
    times = np.concatenate([starts, ends])
    steps = np.concatenate([w, -w])
    order = np.lexsort((steps, times))  # at equal times, close before open
    return round(max(0.0, float(np.cumsum(steps[order]).max())))


def _end(life: Life, end_s: float) -> float:
    return end_s if math.isnan(life.stopped_s) else life.stopped_s


def serving_seconds(lives: Sequence[Life], end_s: float) -> float:
    """Replica-seconds from ready to stop (draining included): when replicas generate."""
    return sum(_end(life, end_s) - life.ready_s for life in lives if not math.isnan(life.ready_s))


def peak_gpus(lives: Sequence[Life], end_s: float) -> int:
    """Most GPUs held at once (from allocation to stop)."""
    held = [life for life in lives if not math.isnan(life.allocated_s)]
    return max_overlap(np.array([life.allocated_s for life in held]),
                       np.array([_end(life, end_s) for life in held]),
                       np.array([life.gpus for life in held]))


def cold_start_times(lives: Sequence[Life]) -> np.ndarray:
    """Seconds from the scale-up decision to ready, of every cold-started replica."""
    return np.array([life.ready_s - life.requested_s for life in lives
                     if life.cold_start and not math.isnan(life.ready_s)])


def _capacity_kpis(lives: Sequence[Life], end_s: float) -> dict[str, Any]:
    cold = cold_start_times(lives)
    ready = [life for life in lives if not math.isnan(life.ready_s)]
    return {
        "max_ready_replicas": max_overlap(np.array([life.ready_s for life in ready]),
                                          np.array([_end(life, end_s) for life in ready])),
        "peak_gpus": peak_gpus(lives, end_s),
        "cold_start_p50_s": _pct(cold, 50),
        "cold_start_max_s": float(cold.max()) if len(cold) else None,
    }


def _capacity_tokens(m: Measured, stats: RequestStats, lives: Sequence[Life],
                     end_s: float) -> float:
    """Output tokens the replicas could have generated: serving time × saturation throughput
    at the mean sizes of the deployment's ok requests."""
    seconds = serving_seconds(lives, end_s)
    if seconds <= 0 or stats.ok == 0:
        return seconds  # nothing generated: any positive capacity gives 0 %
    rate = m.saturation(stats.ok_input_tokens / stats.ok, stats.ok_output_tokens / stats.ok)
    return seconds * rate


def _used(tokens: float, capacity: float) -> float:
    """Share of capacity used, at most 1: a mix of varied sizes can run slightly above the
    saturation throughput of its mean sizes, which is an estimate."""
    return min(1.0, tokens / capacity) if capacity > 0 else 0.0


def _hit_rate(measured: Sequence[Measured]) -> float:
    """Prompt tokens served from prefix caches / prompt tokens prefilled (0: none)."""
    prefilled = sum(m.prefill_tokens for m in measured)
    return sum(m.cached_tokens for m in measured) / prefilled if prefilled > 0 else 0.0


def summarize(
    *,
    name: str,
    seed: int,
    end_s: float,
    version: str,
    scenario: Mapping[str, Any],
    warmup_s: float,
    slo: dict[str, float | None],
    billing_spec: BillingSpec,
    billing: pd.DataFrame,
    measured: Sequence[Measured],
    stats: Sequence[RequestStats],
    lives: Sequence[Life],
    status_names: Sequence[str],
    finished: Finished | None,
    exact: Callable[[int | None], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The summary; latency percentiles exact when ``finished`` (every request) is given,
    or ``exact`` (deployment index, None for all → its percentiles, e.g. read back from
    a streamed request table); else from the sketches."""
    code_400 = status_names.index("rejected_400") if "rejected_400" in status_names else None
    per: dict[str, dict[str, Any]] = {}
    capacity: list[float] = []
    for d, m in enumerate(measured):
        mine = [life for life in lives if life.deployment == d]
        lines = billing[billing["deployment"] == m.name]
        kpis = stats[d].kpis()
        if finished is not None:
            kpis.update(exact_percentiles(finished.select(finished.dep == d), warmup_s))
        elif exact is not None:
            kpis.update(exact(d))
        cost = float(lines["cost_usd"].sum()) + reserved_share(billing_spec, lines)
        tokens = float(stats[d].ok_input_tokens + stats[d].ok_output_tokens)
        capacity.append(_capacity_tokens(m, stats[d], mine, end_s))
        kpis.update(_capacity_kpis(mine, end_s))
        kpis.update(
            http_503=m.http_503,
            http_429=m.http_429,
            http_400=stats[d].count(code_400),
            resends=m.resends,
            preemptions=m.preemptions,
            gpu_seconds=float(lines["gpu_seconds"].sum()),
            cost_usd=cost,
            serverless_cost_usd=price_tokens(
                billing_spec, m.model, float(stats[d].input_tokens),
                float(stats[d].output_tokens), _hit_rate([m]) if m.simulated_hits else None),
            prefix_cache_hit_rate=_hit_rate([m]),
            cost_per_million_tokens_usd=cost / tokens * 1e6 if tokens else None,
            cold_starts=m.cold_starts,
            mean_ready_replicas=m.ready_area / end_s if end_s > 0 else 0.0,
            pending_replica_seconds=m.pending_area,
            replica_crashes=m.crashes,
            utilization=_used(stats[d].ok_output_tokens, capacity[-1]),
            busy_fraction=m.busy_s / m.ready_area if m.ready_area > 0 else 0.0,
        )
        per[m.name] = {key: kpis[key] for key in KPI_KEYS}
        per[m.name].update(final_state=m.final_state, final_label=m.final_label)

    all_stats = RequestStats(warmup_s, slo)
    for one in stats:
        all_stats.merge(one)
    total = all_stats.kpis()
    if finished is not None:
        total.update(exact_percentiles(finished, warmup_s))
    elif exact is not None:
        total.update(exact(None))
    total.update(_capacity_kpis(lives, end_s))
    sums = ("http_503", "http_429", "http_400", "resends", "preemptions", "gpu_seconds",
            "cold_starts", "mean_ready_replicas", "pending_replica_seconds", "replica_crashes")
    for key in sums:
        total[key] = sum(p[key] for p in per.values())
    # the total pays for the whole reservation, idle GPUs included
    total["cost_usd"] = float(billing["cost_usd"].sum())
    total["on_demand_cost_usd"] = cost_of(billing, "on_demand")
    total["reserved_cost_usd"] = cost_of(billing, "reserved")
    serverless = [p["serverless_cost_usd"] for p in per.values()]
    total["serverless_cost_usd"] = (
        None if None in serverless else float(sum(s for s in serverless if s is not None))
    )
    tokens = float(all_stats.ok_input_tokens + all_stats.ok_output_tokens)
    total["cost_per_million_tokens_usd"] = total["cost_usd"] / tokens * 1e6 if tokens else None
    cap_total = sum(capacity)
    total["utilization"] = _used(all_stats.ok_output_tokens, cap_total)
    total["prefix_cache_hit_rate"] = _hit_rate(measured)
    ready_total = sum(m.ready_area for m in measured)
    total["busy_fraction"] = (sum(m.busy_s for m in measured) / ready_total
                              if ready_total > 0 else 0.0)
    by_acc = {acc: peak_gpus([life for life in lives
                              if measured[life.deployment].accelerator == acc], end_s)
              for acc in sorted({m.accelerator for m in measured})}
    return {
        "name": name,
        "seed": seed,
        "simulated_s": end_s,
        "wall_s": 0.0,
        "capsim_version": version,
        "latency_percentiles": "exact" if finished is not None or exact else "sketch",
        "total": {key: total[key] for key in (*KPI_KEYS, *TOTAL_ONLY_KEYS)}
        | {"peak_gpus_by_accelerator": by_acc},
        "deployments": per,
        "scenario": scenario,
    }
