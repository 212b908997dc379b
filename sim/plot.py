"""Plots of results (matplotlib), readable at a glance: titles, units, legends.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot: no global state, no backend needed, nothing to close.  A notebook shows
the figure when it is a cell's value; a script saves it with
``fig.savefig("timeline.png")``.

Columns that only some runs have are drawn when present and skipped when
absent, without an error: the replica stages of the timeline
(``pending_replicas``, ``scheduling_replicas``, ``downloading_replicas``,
``initializing_replicas``, ``draining_replicas``), the long allocation table
``Result.allocation`` (``t_end, datacenter, accelerator, holder, gpus``;
``holder`` is a deployment, or ``background`` for other tenants) and the ``kind`` of
each billing line (``on_demand``, or ``reserved`` for a reservation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sim.report.format import seconds_text, usd_text
from sim.results import Result
from sim.units import parse_duration

__all__ = [
    "LATENCY_METRICS",
    "REPLICA_STAGES",
    "cost_breakdown",
    "gpu_allocation",
    "latency_cdf",
    "shape_comparison",
    "timeline",
]

# Replica stages of the timeline, drawn bottom to top: (column, label, colour).
REPLICA_STAGES: tuple[tuple[str, str, str], ...] = (
    ("ready_replicas", "ready", "#1b9e77"),
    ("draining_replicas", "draining", "#7570b3"),
    ("initializing_replicas", "initializing", "#e6ab02"),
    ("downloading_replicas", "downloading weights", "#d95f02"),
    ("scheduling_replicas", "scheduling", "#a6761d"),
    ("pending_replicas", "pending (no GPUs)", "#e7298a"),
)

# Per-request latencies latency_cdf can draw: column or formula -> axis label.
LATENCY_METRICS: dict[str, str] = {
    "user_ttft_s": "time to first token, from the first attempt",
    "user_e2e_s": "end-to-end latency, from the first attempt",
    "ttft_s": "time to first token",
    "tpot_s": "time per output token",
    "e2e_s": "end-to-end latency",
    "queue_wait_s": "router queue wait",
}
# the objective drawn on a CDF (objectives are judged on the user's view)
_SLO_KEY = {"user_ttft_s": "ttft_p99", "tpot_s": "tpot_p99", "user_e2e_s": "e2e_p99",
            "ttft_s": "ttft_p99", "e2e_s": "e2e_p99"}

_PRICING_LABELS = {
    "on_demand": "on-demand",
    "reserved": "reserved",
    "serverless": "serverless",
}
_PRICING_COLOURS = {"on_demand": "#4c72b0", "reserved": "#55a868", "serverless": "#c44e52"}
_BACKGROUND_COLOUR = "#b0b0b0"
_NOTE = {"ha": "center", "va": "center", "color": "#666666", "fontsize": "medium"}
_OUTSIDE: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0),
                            "borderaxespad": 0.0}


# --------------------------------------------------------------------------- helpers


def _palette(n: int) -> list[str]:
    """``n`` distinguishable colours (tab10, then tab20)."""
    base = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    ]
    if n <= len(base):
        return base[:n]
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20"]
    return [to_hex(cmap(i % 20)) for i in range(n)]


def _time_unit(max_seconds: float) -> tuple[float, str]:
    """(seconds per unit, unit name) that keeps a time axis readable."""
    if max_seconds <= 3 * 3600:
        return 60.0, "min"
    if max_seconds <= 3 * 86400:
        return 3600.0, "h"
    return 86400.0, "days"


def _seconds(value: Any) -> float | None:
    """A duration from a resolved scenario: a unit string or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value)
    return float(value)


def _name(result: Result) -> str:
    return str(result.summary.get("name", "run"))


def _labels(results: Sequence[Result], labels: Sequence[str] | None) -> list[str]:
    """One label per result: the given ones, else scenario names (with seeds if needed)."""
    if labels is not None:
        if len(labels) != len(results):
            raise ValueError(f"{len(labels)} labels for {len(results)} results")
        return [str(x) for x in labels]
    names = [_name(r) for r in results]
    if len(set(names)) == len(names):
        return names
    named = [f"{n} (seed {r.summary.get('seed', '?')})"
             for n, r in zip(names, results, strict=True)]
    if len(set(named)) == len(named):
        return named
    return [f"{n} #{i + 1}" for i, n in enumerate(names)]


def _as_results(results: Result | Sequence[Result]) -> list[Result]:
    return [results] if isinstance(results, Result) else list(results)


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **_NOTE)  # type: ignore[arg-type]


def _legend(ax: Axes, **kwargs: Any) -> None:
    """A legend only where something is labelled (matplotlib warns otherwise)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, **({"fontsize": "small"} | kwargs))


def _edges(rows: pd.DataFrame) -> np.ndarray:
    """Interval edges of timeline rows: each row's start, then the last row's end."""
    return np.append(rows["t_start"].to_numpy(float), rows["t_end"].to_numpy(float)[-1:])


def _held(values: np.ndarray) -> np.ndarray:
    """Snapshots taken at each interval's end, as the value held over each interval.

    A count at ``t_end`` holds from ``t_end`` until the next snapshot; the
    first interval is given the first snapshot.  So a change is never drawn
    before it happened.
    """
    return np.concatenate([values[:1], values[:-1]])


def _has(df: pd.DataFrame | None, *columns: str) -> bool:
    return df is not None and not df.empty and all(c in df.columns for c in columns)


def _outages(result: Result) -> list[tuple[str, float, float]]:
    """(datacenter, start, end) of the scenario's datacenter outages, in seconds."""
    faults = result.scenario.get("faults") or {}
    out = []
    for o in faults.get("outages") or []:
        start = _seconds(o.get("start")) or 0.0
        out.append((str(o.get("datacenter")), start, start + (_seconds(o.get("duration")) or 0.0)))
    return out


def _shade_outages(ax: Axes, outages: list[tuple[str, float, float]], scale: float,
                   label: bool) -> None:
    for dc, start, end in outages:
        ax.axvspan(start / scale, end / scale, color="#555555", alpha=0.12, linewidth=0,
                   label=f"outage: {dc}" if label else None)


# --------------------------------------------------------------------------- timeline


def timeline(result: Result) -> Figure:
    """Load and capacity over time, per deployment.

    Panels: arrival rate (req/s); for each deployment its replicas stacked by
    stage (ready, and draining / initializing / downloading / scheduling /
    pending when the timeline has those columns) with the desired replicas as
    a dashed line; when the timeline has them, user TTFT and TPOT p50 / p99 of
    the requests that arrived in each interval (log scale) and the replicas'
    load (capacity used, and requests in service per serving replica); HTTP
    503 and 429 responses per second; mean router queue depth.  Interval
    quantities (arrivals, refusals, queue) are drawn over
    their interval, counts taken at an interval's end (replicas) from that
    time on; the scenario's datacenter outages are shaded.
    """
    tl = result.timeline
    if tl.empty:
        fig = Figure(figsize=(10, 3), layout="constrained")
        _note(fig.add_subplot(), "the timeline is empty")
        fig.suptitle(f"{_name(result)}: load and capacity over time")
        return fig
    groups = [(str(name), rows.sort_values("t_start")) for name, rows in
              tl.groupby("deployment", observed=True, sort=False)]
    colours = dict(zip([g[0] for g in groups], _palette(len(groups)), strict=True))
    scale, unit = _time_unit(float(tl["t_end"].max()))
    latency = _has(tl, "user_ttft_p99_s", "tpot_p99_s")
    load = _has(tl, "utilization", "mean_batch")
    extra = [1.0] * latency + [0.8] * load
    ratios = [1.0] + [1.2] * len(groups) + extra + [0.8, 0.8]
    fig = Figure(figsize=(11, 1.9 * sum(ratios) + 0.8), layout="constrained")
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
    ax_rate, ax_err, ax_queue = axes[0], axes[-2], axes[-1]
    many = len(groups) > 1
    n_rep = len(groups)
    if latency:
        _latency_panel(axes[1 + n_rep], groups, colours, scale)
    if load:
        _load_panel(axes[1 + n_rep + latency], groups, colours, scale)

    for name, rows in groups:
        edges = _edges(rows) / scale
        ax_rate.stairs(rows["arrival_rps"].to_numpy(float), edges, color=colours[name],
                       label=name, linewidth=1.4)
    ax_rate.set_ylabel("arrivals (req/s)")
    ax_rate.set_title("Arrival rate", loc="left", fontsize="medium")
    if many:
        _legend(ax_rate, **_OUTSIDE)

    for ax, (name, rows) in zip(axes[1:1 + n_rep], groups, strict=True):
        _replica_panel(ax, name, rows, scale)

    any_errors = False
    for name, rows in groups:
        edges = _edges(rows) / scale
        interval = rows["interval_s"].to_numpy(float)
        for column, style, code in (("http_503", "-", "503"), ("http_429", "--", "429")):
            if column not in rows.columns:
                continue
            per_s = rows[column].to_numpy(float) / interval
            if per_s.any():
                any_errors = True
                label = f"{name} HTTP {code}" if many else f"HTTP {code}"
                ax_err.stairs(per_s, edges, color=colours[name], linestyle=style, label=label,
                              linewidth=1.4)
    ax_err.set_ylabel("responses / s")
    ax_err.set_title("Refused attempts: HTTP 503 (no ready replica) and 429 (queue full)",
                     loc="left", fontsize="medium")
    if any_errors:
        _legend(ax_err, **_OUTSIDE)
    else:
        ax_err.set_ylim(0, 1)
        _note(ax_err, "no HTTP 503 or 429 responses")

    for name, rows in groups:
        edges = _edges(rows) / scale
        ax_queue.stairs(rows["queue_depth"].to_numpy(float), edges, color=colours[name],
                        label=name, linewidth=1.4)
    ax_queue.set_ylabel("requests (mean)")
    ax_queue.set_title("Router queue depth", loc="left", fontsize="medium")
    ax_queue.set_xlabel(f"simulated time ({unit})")
    if many:
        _legend(ax_queue, **_OUTSIDE)

    outages = _outages(result)
    replica_axes = list(axes[1:1 + n_rep])
    for ax in axes:
        _shade_outages(ax, outages, scale, label=ax in replica_axes)
        if ax in replica_axes:
            _legend(ax, **_OUTSIDE)  # again, with the outages
        ax.grid(alpha=0.3)
        if ax.get_yscale() == "linear":
            ax.set_ylim(bottom=0)
    ax_queue.set_xlim(float(tl["t_start"].min()) / scale, float(tl["t_end"].max()) / scale)
    fig.suptitle(f"{_name(result)}: load and capacity over time", fontsize="x-large")
    return fig


def _latency_panel(ax: Axes, groups: list[tuple[str, pd.DataFrame]], colours: dict[str, str],
                   scale: float) -> None:
    """User TTFT and TPOT, p50 (thin) and p99 (thick), per interval of arrival."""
    drawn = False
    for name, rows in groups:
        edges = _edges(rows) / scale
        for column, style, width in (("user_ttft_p99_s", "-", 1.6), ("user_ttft_p50_s", "-", 0.8),
                                     ("tpot_p99_s", ":", 1.6), ("tpot_p50_s", ":", 0.8)):
            values = rows[column].to_numpy(float)
            if np.isfinite(values).any() and np.nanmax(values) > 0:
                drawn = True
                metric = "TTFT" if "ttft" in column else "TPOT"
                label = f"{name} {metric} {column.split('_')[-2]}" if len(groups) > 1 else (
                    f"{metric} {column.split('_')[-2]}")
                ax.stairs(np.where(values > 0, values, np.nan), edges, color=colours[name],
                          linestyle=style, linewidth=width, label=label)
    ax.set_title("Latency of the requests arriving in each interval: user TTFT (solid), "
                 "TPOT (dotted)", loc="left", fontsize="medium")
    ax.set_ylabel("seconds")
    if drawn:
        ax.set_yscale("log")
        _legend(ax, **_OUTSIDE)
    else:
        _note(ax, "no request finished ok")


def _load_panel(ax: Axes, groups: list[tuple[str, pd.DataFrame]], colours: dict[str, str],
                scale: float) -> None:
    """Capacity used (left axis) and requests in service per serving replica (right)."""
    right = ax.twinx()
    for name, rows in groups:
        edges = _edges(rows) / scale
        prefix = f"{name} " if len(groups) > 1 else ""
        ax.stairs(100 * rows["utilization"].to_numpy(float), edges, color=colours[name],
                  linewidth=1.4, label=f"{prefix}capacity used")
        right.stairs(rows["mean_batch"].to_numpy(float), edges, color=colours[name],
                     linestyle="--", linewidth=1.0, label=f"{prefix}requests per replica")
    ax.set_ylim(0, 105)
    ax.set_ylabel("capacity used (%)")
    right.set_ylabel("in service / replica")
    right.set_ylim(bottom=0)
    ax.set_title("Replica load: capacity used (solid) and requests in service per replica "
                 "(dashed)", loc="left", fontsize="medium")


def _replica_panel(ax: Axes, name: str, rows: pd.DataFrame, scale: float) -> None:
    """Replicas of one deployment stacked by stage, and the desired count."""
    edges = _edges(rows) / scale
    bottom = np.zeros(len(rows))
    for column, label, colour in REPLICA_STAGES:
        if column not in rows.columns:
            continue
        values = _held(rows[column].to_numpy(float))
        if column != "ready_replicas" and not values.any():
            continue  # a stage that never happened needs no legend entry
        ax.stairs(bottom + values, edges, baseline=bottom.copy(), fill=True, color=colour,
                  alpha=0.85, label=label)
        bottom = bottom + values
    if "desired_replicas" in rows.columns:
        ax.stairs(_held(rows["desired_replicas"].to_numpy(float)), edges, color="black",
                  linestyle="--", linewidth=1.3, label="desired")
    ax.set_ylabel("replicas")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{name}: replicas by stage", loc="left", fontsize="medium")
    top = max(float(bottom.max()), float(rows.get("desired_replicas", pd.Series([0])).max()))
    ax.set_ylim(0, max(1.0, top) * 1.08)
    _legend(ax, **_OUTSIDE)


# --------------------------------------------------------------------------- latency


MAX_CDF_REQUESTS = 200_000


def _latency_values(result: Result, metric: str, deployment: str | None = None) -> np.ndarray:
    """``metric`` of ok requests that arrived after the warm-up (as the summary uses).

    A large run is plotted from a uniform sample of at most ``MAX_CDF_REQUESTS``
    requests (every k-th in arrival order, or the sample a streamed run kept):
    a CDF drawn from 200,000 points is indistinguishable from one of millions.
    """
    reqs = result.request_rows
    if reqs.empty:
        return np.empty(0)
    if len(reqs) > MAX_CDF_REQUESTS:
        reqs = reqs.iloc[:: -(-len(reqs) // MAX_CDF_REQUESTS)]
    keep = (reqs["status"] == "ok").to_numpy(bool, copy=True)
    warmup = _seconds(result.scenario.get("warmup")) or 0.0
    keep &= reqs["arrival_s"].to_numpy(float) >= warmup
    if deployment is not None:
        keep &= (reqs["deployment"] == deployment).to_numpy(bool)
    sel = reqs[keep]
    if metric == "queue_wait_s" and metric not in sel.columns:
        values = (sel["start_s"] - sel["attempt_s"]).to_numpy(float)
    else:
        values = sel[metric].to_numpy(float)
    return np.sort(values[~np.isnan(values)])


def latency_cdf(
    results: Result | Sequence[Result],
    metric: str = "ttft_s",
    labels: Sequence[str] | None = None,
) -> Figure:
    """Empirical CDF of a per-request latency for one or several results.

    ``metric`` is ``ttft_s``, ``tpot_s``, ``e2e_s`` or ``queue_wait_s``.  Like
    the summary's percentiles, it uses ``ok`` requests that arrived after the
    warm-up.  One result with several deployments gets one curve per
    deployment.  The scenario's SLO for the metric (when every result has the
    same) is drawn as a vertical line, the 99th percentile as a horizontal one.
    """
    if metric not in LATENCY_METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(LATENCY_METRICS)})")
    runs = _as_results(results)
    names = _labels(runs, labels)
    curves: list[tuple[str, np.ndarray]] = []
    for label, res in zip(names, runs, strict=True):
        deployments = list(res.summary.get("deployments", {}))
        if len(runs) == 1 and len(deployments) > 1:
            curves += [(d, _latency_values(res, metric, d)) for d in deployments]
        else:
            curves.append((label, _latency_values(res, metric)))
    title = LATENCY_METRICS[metric]
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.add_subplot()
    drawn = [(label, v) for label, v in curves if len(v)]
    for (label, values), colour in zip(drawn, _palette(len(drawn)), strict=True):
        x, y = _cdf_points(values)
        p99 = float(np.percentile(values, 99))
        ax.plot(x, y, color=colour, linewidth=1.6,
                label=f"{label}: p50 {seconds_text(float(np.median(values)))}, "
                      f"p99 {seconds_text(p99)}")
    positive = all(v[0] > 0 for _, v in drawn)
    if drawn and positive:
        ax.set_xscale("log")
    slo = _common_slo(runs, metric)
    if slo is not None:
        ax.axvline(slo, color="#c44e52", linestyle=":", linewidth=1.5,
                   label=f"SLO: p99 ≤ {seconds_text(slo)}")
    if drawn:
        ax.axhline(0.99, color="#888888", linewidth=0.8, linestyle="--")
        ax.text(1.0, 0.99, " p99", transform=ax.get_yaxis_transform(), va="center",
                fontsize="small", color="#666666")
    else:
        _note(ax, "no completed requests after the warm-up")
    ax.set_xlabel(f"{title} (s{', log scale' if drawn and positive else ''})")
    ax.set_ylabel("share of ok requests ≤ x")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.01)
    ax.set_title(f"{title[0].upper()}{title[1:]}: distribution over requests")
    ax.grid(alpha=0.3, which="both")
    _legend(ax, loc="lower right")
    return fig


def _cdf_points(values: np.ndarray, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Points of the empirical CDF of sorted ``values``; quantiles when there are many."""
    n = len(values)
    if n <= max_points:
        return values, np.arange(1, n + 1) / n
    q = np.linspace(0.0, 1.0, max_points)
    return np.quantile(values, q), q


def _common_slo(runs: Sequence[Result], metric: str) -> float | None:
    key = _SLO_KEY.get(metric)
    if key is None:
        return None
    limits = {_seconds((r.scenario.get("slo") or {}).get(key)) for r in runs}
    return limits.pop() if len(limits) == 1 else None


# --------------------------------------------------------------------------- cost


def cost_breakdown(
    results: Result | Sequence[Result],
    labels: Sequence[str] | None = None,
    by: Sequence[str] = ("deployment", "datacenter", "accelerator"),
) -> Figure:
    """Where the money goes: cost by deployment, datacenter and accelerator type.

    One result: one bar per deployment (datacenter, accelerator), split by
    the billing lines' ``kind``: on-demand GPU time, and reservations, which
    belong to no deployment or datacenter and get a bar of their own.  Beside
    each deployment a hatched bar prices the same requests at the serverless
    per-token rate (``serverless_cost_usd``) when the model has one.
    Several results: one bar per result, split by deployment (datacenter,
    accelerator), with the serverless price of the same tokens as a diamond.
    """
    runs = _as_results(results)
    names = _labels(runs, labels)
    dims = [d for d in by if any(d in r.billing.columns for r in runs)]
    if not dims:
        raise ValueError(f"billing has none of the columns {', '.join(by)}")
    fig = Figure(figsize=(max(10.0, 4.2 * len(dims)), max(3.6, 2.4 + 0.5 * _bar_rows(runs, dims))),
                 layout="constrained")
    axes = fig.subplots(1, len(dims), squeeze=False)[0]
    for ax, dim in zip(axes, dims, strict=True):
        if len(runs) == 1:
            _cost_by_category(ax, runs[0], dim)
        else:
            _cost_by_run(ax, runs, names, dim)
            _legend(ax, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
        ax.set_title(f"by {dim}", fontsize="medium")
        ax.set_xlabel("cost (USD)")
        ax.grid(alpha=0.3, axis="x")
        ax.set_xlim(left=0)
        ax.margins(x=0.3)
    if len(runs) == 1:  # the same pricing kinds in every panel: one legend below
        handles: dict[str, Any] = {}
        for ax in axes:
            for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(text, handle)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center",
                       ncols=len(handles), fontsize="small")
    total = sum(float(r.billing["cost_usd"].sum()) for r in runs if "cost_usd" in r.billing)
    who = _name(runs[0]) if len(runs) == 1 else f"{len(runs)} runs"
    fig.suptitle(f"{who}: cost breakdown (total {usd_text(total)})", fontsize="x-large")
    return fig


def _bar_rows(runs: Sequence[Result], dims: Sequence[str]) -> int:
    if len(runs) > 1:
        return len(runs)
    bill = runs[0].billing
    rows = [bill[d].nunique() for d in dims if d in bill.columns]
    extra = len(runs[0].summary.get("deployments", {}))  # serverless bars
    return max([*rows, 1]) + extra


def _pricing(bill: pd.DataFrame) -> pd.Series:
    """Each line's kind of pricing (``on_demand`` where the table does not say)."""
    if "kind" in bill.columns:
        return bill["kind"].astype(str)
    return pd.Series("on_demand", index=bill.index)


def _category(bill: pd.DataFrame, dim: str) -> pd.Series:
    """``dim`` of each line as text; a line without one (a reservation) is named by its kind."""
    values = bill[dim].astype("string").fillna("")
    names = _pricing(bill).map(lambda k: "(reservation)" if k == "reserved" else f"({k})")
    return values.where(values != "", names).astype(str)


def _cost_by_category(ax: Axes, result: Result, dim: str) -> None:
    bill = result.billing
    if bill.empty or dim not in bill.columns or "cost_usd" not in bill.columns:
        _note(ax, "no billed GPU time")
        ax.set_yticks([])
        return
    table = (
        bill.assign(_pricing=_pricing(bill), _cat=_category(bill, dim))
        .pivot_table(index="_cat", columns="_pricing", values="cost_usd", aggfunc="sum",
                     fill_value=0.0, observed=True)
    )
    table = table.loc[table.sum(axis=1).sort_values().index]
    serverless: dict[str, float] = {}
    if dim == "deployment":
        for dep, kpis in result.summary.get("deployments", {}).items():
            value = kpis.get("serverless_cost_usd")
            if value is not None and str(dep) in table.index:
                serverless[str(dep)] = float(value)
    total = float(table.to_numpy().sum())
    y = np.arange(len(table), dtype=float)
    height = 0.38 if serverless else 0.6
    offset = height / 2 if serverless else 0.0
    left = np.zeros(len(table))
    for kind in table.columns:
        values = table[kind].to_numpy(float)
        ax.barh(y + offset, values, height=height, left=left,
                color=_PRICING_COLOURS.get(str(kind)),
                label=f"{_PRICING_LABELS.get(str(kind), str(kind))} GPU time")
        left += values
    for yi, value in zip(y, left, strict=True):
        share = f" ({value / total:.0%})" if total > 0 else ""
        ax.text(value, yi + offset, f" {usd_text(value)}{share}", va="center", fontsize="small")
    if serverless:
        values = np.array([serverless.get(c, np.nan) for c in table.index])
        priced = ~np.isnan(values)
        ax.barh(y[priced] - offset, values[priced], height=height, color="white",
                edgecolor=_PRICING_COLOURS["serverless"], hatch="///",
                label="serverless price of the same tokens")
        for yi, value in zip(y[priced], values[priced], strict=True):
            ax.text(value, yi - offset, f" {usd_text(value)}", va="center", fontsize="small",
                    color=_PRICING_COLOURS["serverless"])
    ax.set_yticks(y, [str(c) for c in table.index])


def _cost_by_run(ax: Axes, runs: Sequence[Result], names: Sequence[str], dim: str) -> None:
    frames = []
    for label, res in zip(names, runs, strict=True):
        if dim in res.billing.columns and not res.billing.empty:
            frames.append(pd.DataFrame({"run": label, "cat": _category(res.billing, dim),
                                        "cost": res.billing["cost_usd"].to_numpy(float)}))
    y = np.arange(len(runs), dtype=float)
    ax.set_yticks(y, list(names))
    if not frames:
        _note(ax, "no billed GPU time")
        return
    table = (pd.concat(frames).pivot_table(index="run", columns="cat", values="cost",
                                           aggfunc="sum", fill_value=0.0)
             .reindex(list(names), fill_value=0.0))
    left = np.zeros(len(runs))
    for cat, colour in zip(table.columns, _palette(len(table.columns)), strict=True):
        values = table[cat].to_numpy(float)
        ax.barh(y, values, height=0.6, left=left, color=colour, label=str(cat))
        left += values
    for yi, value in zip(y, left, strict=True):
        ax.text(value, yi, f" {usd_text(value)}", va="center", fontsize="small")
    if dim == "deployment":
        serverless = [(res.summary.get("total") or {}).get("serverless_cost_usd") for res in runs]
        points = [(yi, s) for yi, s in zip(y, serverless, strict=True) if s is not None]
        if points:
            ax.plot([s for _, s in points], [yi for yi, _ in points], "D", color="black",
                    label="serverless price of the same tokens")


# --------------------------------------------------------------------------- GPUs


def _allocation_table(result: Result) -> tuple[pd.DataFrame, str]:
    """GPUs allocated as a long table (t_end, datacenter, accelerator, deployment, gpus).

    ``Result.allocation`` when the run has it; else the timeline's
    ``gpus_allocated`` per deployment, placed in the datacenter its billing
    lines (or, failing those, its region) name.
    """
    alloc = getattr(result, "allocation", None)
    columns = ("t_end", "datacenter", "accelerator", "deployment", "gpus")
    if isinstance(alloc, pd.DataFrame) and "holder" in alloc.columns:
        alloc = alloc.rename(columns={"holder": "deployment"})
    if isinstance(alloc, pd.DataFrame) and _has(alloc, *columns):
        return alloc.loc[:, list(columns)].copy(), "allocation"
    tl = result.timeline
    if not _has(tl, "t_end", "deployment", "gpus_allocated"):
        return pd.DataFrame(columns=list(columns)), "none"
    where = _placement(result)
    rows = tl.loc[:, ["t_end", "deployment", "gpus_allocated"]].copy()
    rows["deployment"] = rows["deployment"].astype(str)
    rows["datacenter"] = [where.get(d, ("unknown", "unknown"))[0] for d in rows["deployment"]]
    rows["accelerator"] = [where.get(d, ("unknown", "unknown"))[1] for d in rows["deployment"]]
    return rows.rename(columns={"gpus_allocated": "gpus"}).loc[:, list(columns)], "timeline"


def _placement(result: Result) -> dict[str, tuple[str, str]]:
    """(datacenter, accelerator) of each deployment, from billing or the scenario."""
    out: dict[str, tuple[str, str]] = {}
    bill = result.billing
    if _has(bill, "deployment", "datacenter", "accelerator"):
        for dep, rows in bill.groupby(bill["deployment"].astype(str), observed=True):
            dcs = sorted(rows["datacenter"].astype(str).unique())
            accs = sorted(rows["accelerator"].astype(str).unique())
            out[str(dep)] = (dcs[0] if len(dcs) == 1 else "several datacenters",
                             accs[0] if len(accs) == 1 else "several types")
    for dep in result.scenario.get("deployments", []):
        name = str(dep.get("name"))
        if name not in out:
            shape = dep.get("shape")
            acc = shape.get("accelerator", "unknown") if isinstance(shape, Mapping) else "unknown"
            out[name] = (str(dep.get("region") or "unknown"), str(acc))
    return out


def _inventory(result: Result) -> dict[tuple[str, str], int]:
    regions = result.scenario.get("regions")
    if isinstance(regions, Mapping):
        return {(dc, acc): int(n) for dc, types in regions.items() for acc, n in types.items()}
    from sim import catalog

    return catalog.default_inventory()


def gpu_allocation(result: Result) -> Figure:
    """GPUs allocated over time, one panel per datacenter and accelerator type.

    Each panel stacks the deployments' GPUs (other tenants' — ``background``
    — in grey) and draws the scenario's inventory of that type there as a
    dashed line when use reaches a quarter of it (the title always gives
    it).  Uses ``Result.allocation`` when present, else the timeline's
    ``gpus_allocated``.
    """
    alloc = _allocation_table(result)[0]
    title = f"{_name(result)}: GPUs allocated per datacenter and type"
    if alloc.empty:
        fig = Figure(figsize=(10, 3), layout="constrained")
        _note(fig.add_subplot(), "no GPU allocation recorded")
        fig.suptitle(title)
        return fig
    alloc["datacenter"] = alloc["datacenter"].astype(str)
    alloc["accelerator"] = alloc["accelerator"].astype(str)
    alloc["deployment"] = alloc["deployment"].astype(str)
    alloc["gpus"] = alloc["gpus"].astype(float)  # so the pivot's fill value 0.0 fits
    places = sorted(alloc.groupby(["datacenter", "accelerator"]).groups)
    deployments = sorted(set(alloc["deployment"]) - {"background"})
    colours = dict(zip(deployments, _palette(len(deployments)), strict=True))
    colours["background"] = _BACKGROUND_COLOUR
    order = [*deployments, "background"]
    # every sample time of the run, so an interval where nothing is held reads 0
    sampled = [alloc["t_end"].astype(float).to_numpy()]
    if _has(result.timeline, "t_end"):
        sampled.append(result.timeline["t_end"].astype(float).to_numpy())
    times = np.unique(np.concatenate(sampled))
    interval = float(np.min(np.diff(times))) if len(times) > 1 else float(times[0]) or 1.0
    start = max(float(times[0]) - interval, 0.0)
    scale, unit = _time_unit(float(times[-1]))
    inventory = _inventory(result)
    cols = 1 if len(places) == 1 else 2
    nrows = math.ceil(len(places) / cols)
    fig = Figure(figsize=(11, 1.2 + 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False, sharex=True).ravel()
    for ax, (dc, acc) in zip(axes, places, strict=False):
        here = alloc[(alloc["datacenter"] == dc) & (alloc["accelerator"] == acc)]
        table = (here.pivot_table(index="t_end", columns="deployment", values="gpus",
                                  aggfunc="sum", fill_value=0.0)
                 .reindex(times, fill_value=0.0))
        present = [d for d in order if d in table.columns]
        t = np.append(start, times) / scale
        series = [np.append(table[d].to_numpy(float)[:1], table[d].to_numpy(float))
                  for d in present]  # snapshots at t_end, held until the next one
        ax.stackplot(t, *series, step="post", colors=[colours[d] for d in present],
                     labels=present, alpha=0.85)
        _shade_outages(ax, [o for o in _outages(result) if o[0] == dc], scale, label=True)
        cap = inventory.get((dc, acc))
        top = float(np.sum(series, axis=0).max()) if series else 0.0
        if cap is not None and top >= 0.25 * cap:  # else the title says it, and usage shows
            ax.axhline(cap, color="black", linestyle="--", linewidth=1.2,
                       label=f"inventory: {cap:,} GPUs")
            top = max(top, float(cap))
        ax.set_ylim(0, max(top, 1.0) * 1.3)
        peak = float(np.sum(series, axis=0).max()) if series else 0.0
        of = f" of {cap:,}" if cap else ""
        ax.set_title(f"{dc} · {acc}: at most {peak:,.0f}{of} GPUs in use", loc="left",
                     fontsize="medium")
        ax.set_ylabel("GPUs")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        _legend(ax, loc="upper left", ncols=3)
    for ax in axes[:len(places)]:
        ax.set_xlim(start / scale, float(times[-1]) / scale)
    for ax in axes[len(places):]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel(f"simulated time ({unit})")
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(title, fontsize="x-large")
    return fig


# --------------------------------------------------------------------------- shapes


_X = "ttft_p99_s"
_Y = "cost_per_million_tokens_usd"


def _shape_label(result: Result) -> str:
    """``4×H100_80GB FP8`` (or the preset's name) of a one-deployment run."""
    deps = result.scenario.get("deployments", [])
    if len(deps) != 1:
        return _name(result)
    shape = deps[0].get("shape")
    if isinstance(shape, Mapping):
        text = f"{shape.get('count', 1)}×{shape.get('accelerator')}"
        return f"{text} {shape['precision']}" if shape.get("precision") else text
    return str(shape)


def _results_table(runs: Sequence[Result], labels: Sequence[str] | None) -> pd.DataFrame:
    if labels is None:
        names = [_shape_label(r) for r in runs]
        if len(set(names)) < len(names) and len({_name(r) for r in runs}) == len(runs):
            names = [_name(r) for r in runs]
    else:
        names = _labels(runs, labels)
    rows = [{"label": n, **(r.summary.get("total") or {})} for n, r in zip(names, runs,
                                                                        strict=True)]
    return pd.DataFrame(rows)


def shape_comparison(
    results_or_table: Result | Sequence[Result] | pd.DataFrame,
    labels: Sequence[str] | None = None,
    *,
    label: str | None = None,
    slo_s: float | None = None,
) -> Figure:
    """Cost per 1M tokens against p99 TTFT: one labelled point per shape (or run).

    Takes results (their ``total`` summaries; labels default to each run's
    shape) or a table with columns ``ttft_p99_s`` and
    ``cost_per_million_tokens_usd`` (or ``total.…``, as in a sweep's summary
    table, whose unfinished runs are left out), one row per run, labelled by
    the column ``label`` (default: the first of ``label``, ``shape``,
    ``name``, ``scenario``, ``run_id`` it has, else the index).  Rows with the
    same label (seeds) are averaged, with bars from their minimum to maximum.
    The TTFT objective (``slo_s``, else the runs' common ``slo.ttft_p99``) is
    a vertical line, and points beyond it are crossed out; the frontier joins
    the points that meet it and that no other such point beats on both cost
    and latency.
    """
    if isinstance(results_or_table, pd.DataFrame):
        table = results_or_table.copy()
        if "status" in table.columns:  # a sweep's table: finished runs only
            table = table[table["status"].astype(str) == "ok"]
        for key in (_X, _Y):
            if key not in table.columns and f"total.{key}" in table.columns:
                table[key] = table[f"total.{key}"]
        if label is None:
            label = next((c for c in ("label", "shape", "name", "scenario", "run_id")
                          if c in table.columns), None)
        table["label"] = table[label].astype(str) if label else table.index.astype(str)
    else:
        runs = _as_results(results_or_table)
        table = _results_table(runs, labels)
        if slo_s is None:
            slo_s = _common_slo(runs, "ttft_s")
    missing = {_X, _Y} - set(table.columns)
    if missing:
        raise ValueError(f"shape_comparison needs the columns {', '.join(sorted(missing))}")
    table = table.dropna(subset=[_X, _Y])
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    title = "Cost per 1M tokens against p99 time to first token"
    if table.empty:
        _note(ax, "no run has both a p99 TTFT and a cost per 1M tokens")
        ax.set_title(title)
        return fig
    stats = (table.groupby("label", sort=False)[[_X, _Y]]
             .agg(["mean", "min", "max", "count"]))
    x = stats[(_X, "mean")].to_numpy(float)
    y = stats[(_Y, "mean")].to_numpy(float)
    colours = _palette(len(stats))
    if (stats[(_X, "count")] > 1).any():
        ax.scatter(table[_X], table[_Y], s=12, color="#999999", alpha=0.6, zorder=2,
                   label="single runs (seeds)")
        ax.errorbar(x, y, xerr=[x - stats[(_X, "min")], stats[(_X, "max")] - x],
                    yerr=[y - stats[(_Y, "min")], stats[(_Y, "max")] - y], fmt="none",
                    ecolor="#555555", elinewidth=1, capsize=3, zorder=2)
    meets = x <= slo_s if slo_s is not None else np.ones(len(x), dtype=bool)
    if not meets.all():
        ax.scatter(x[~meets], y[~meets], s=160, marker="x", color="#c44e52", zorder=4,
                   label="misses the TTFT objective")
    ax.scatter(x, y, s=90, c=colours, edgecolors="black", zorder=3)
    kept = np.flatnonzero(meets)
    front = kept[_frontier(x[kept], y[kept])]
    if len(front) > 1:
        ax.plot(x[front], y[front], color="#555555", linestyle="-", linewidth=1, zorder=1,
                label="frontier: nothing that meets the objective is both cheaper and faster")
    if slo_s is not None:
        ax.axvline(slo_s, color="#c44e52", linestyle=":", linewidth=1.5,
                   label=f"TTFT objective: p99 ≤ {seconds_text(slo_s)}")
        ax.axvspan(slo_s, max(float(x.max()), slo_s) * 10, color="#c44e52", alpha=0.06)
    lo, hi = float(min(x.min(), slo_s or x.min())), float(max(x.max(), slo_s or x.max()))
    if lo > 0 and hi / lo > 20:
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.6, hi * 1.6)
    else:
        pad = (hi - lo) * 0.15 or hi * 0.2 or 1.0
        ax.set_xlim(max(lo - pad, 0.0), hi + pad)
    ax.set_ylim(0, float(y.max()) * 1.25 or 1.0)
    _place_labels(fig, ax, x, y, [str(n) for n in stats.index])
    ax.set_xlabel("p99 time to first token (s)" + (", log scale" if ax.get_xscale() == "log"
                                                  else ""))
    ax.set_ylabel("cost per 1M tokens (USD)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    _legend(ax, loc="upper right")
    return fig


# Where a point's label may go, in points from the point: right, then around it.
_LABEL_OFFSETS = ((7, 5), (7, -15), (-7, 5), (-7, -15), (7, 19), (7, -29), (-7, 19), (-7, -29))


def _place_labels(fig: Figure, ax: Axes, x: np.ndarray, y: np.ndarray,
                  names: Sequence[str]) -> None:
    """Label each point at the offset where its label overlaps the fewest labels and points.

    Boxes are estimated in points (a character ≈ 0.6 em), from the axes' limits and
    their position before the layout engine's last adjustment.
    """
    size = float(ax.xaxis.label.get_fontsize()) or 10.0
    to_points = ax.transData + fig.dpi_scale_trans.inverted()
    centres = to_points.transform(np.column_stack([x, y])) * 72.0
    placed: list[tuple[float, float, float, float]] = []
    frame = ax.get_position()  # figure fraction (before the layout engine's final touch)
    width_pt, height_pt = fig.get_size_inches() * 72.0
    inside = np.array([frame.x0 * width_pt, frame.y0 * height_pt, frame.x1 * width_pt,
                       frame.y1 * height_pt])

    def clashes(box: tuple[float, float, float, float]) -> int:
        """A penalty: 3 per label and 1 per point the box overlaps, 10 outside the axes."""
        x0, y0, x1, y1 = box
        count = 10 if (x0 < inside[0] or y0 < inside[1] or x1 > inside[2]
                       or y1 > inside[3]) else 0
        count += 3 * sum(x0 < a1 and a0 < x1 and y0 < b1 and b0 < y1
                         for a0, b0, a1, b1 in placed)  # text on text is unreadable
        count += sum(x0 - 5 < cx < x1 + 5 and y0 - 5 < cy < y1 + 5 for cx, cy in centres)
        return int(count)

    def box_at(cx: float, cy: float, dx: float, dy: float,
               width: float, height: float) -> tuple[float, float, float, float]:
        left = cx + dx if dx > 0 else cx + dx - width
        return (left, cy + dy, left + width, cy + dy + height)

    for i in np.argsort(-centres[:, 1]):
        cx, cy = centres[i]
        width, height = 0.6 * size * len(names[i]), 1.2 * size
        dx, dy = min(_LABEL_OFFSETS,
                     key=lambda o: clashes(box_at(cx, cy, o[0], o[1], width, height)))
        placed.append(box_at(cx, cy, dx, dy, width, height))
        far = abs(dy) > 15  # a label moved away from its point gets a leader line
        ax.annotate(names[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points",
                    ha="left" if dx > 0 else "right", va="bottom", fontsize="medium",
                    arrowprops={"arrowstyle": "-", "color": "#888888", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 5} if far else None)


def _frontier(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both x and y, by increasing x."""
    order = np.lexsort((y, x))
    keep: list[int] = []
    best = math.inf
    for i in order:
        if y[i] < best:
            keep.append(int(i))
            best = float(y[i])
    return np.array(keep, dtype=int)
