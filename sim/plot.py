"""Plots of results (matplotlib): readable at a glance, titles, units, legends.

Each function returns the matplotlib ``Figure`` so notebooks show it and the
report embeds it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from sim.results import Result


def timeline(result: Result) -> Figure:
    """Arrival rate, ready replicas, queue depth and 503/429s over time, per deployment."""
    tl = result.timeline
    fig, axes = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    for name, rows in tl.groupby("deployment", observed=True):
        hours = rows["t_end"].to_numpy() / 3600.0
        axes[0].step(hours, rows["arrival_rps"], where="pre", label=str(name))
        axes[1].step(hours, rows["ready_replicas"], where="pre", label=f"{name} ready")
        axes[1].step(hours, rows["desired_replicas"], where="pre", linestyle=":",
                     label=f"{name} desired")
        axes[2].step(hours, rows["queue_depth"], where="pre", label=f"{name} queue")
        errors = (rows["http_503"] + rows["http_429"]) / rows["interval_s"]
        if errors.any():
            axes[2].step(hours, errors, where="pre", linestyle="--", label=f"{name} 503+429 /s")
    axes[0].set_ylabel("arrivals (req/s)")
    axes[1].set_ylabel("replicas")
    axes[2].set_ylabel("queue depth (mean)")
    axes[2].set_xlabel("simulated time (h)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
    fig.suptitle(f"{result.summary['name']}: load and capacity over time")
    fig.tight_layout()
    return fig


def latency_cdf(
    results: Sequence[Result], metric: str = "ttft_s", labels: Sequence[str] | None = None
) -> Figure:
    """Empirical CDF of a per-request latency (``ttft_s``, ``tpot_s``, ``e2e_s``) of ok requests."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, res in enumerate(results):
        reqs = res.requests
        values = np.sort(reqs.loc[reqs["status"] == "ok", metric].dropna().to_numpy())
        if not len(values):
            continue
        label = labels[i] if labels else str(res.summary["name"])
        ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=label)
    ax.set_xscale("log")
    ax.set_xlabel(f"{metric.removesuffix('_s').upper()} (s, log scale)")
    ax.set_ylabel("fraction of ok requests")
    ax.set_title(f"{metric.removesuffix('_s').upper()} distribution")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig
