"""sim.plot: what each figure draws, from hand-made tables and from a real run."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

from sim import plot
from sim.results import Result
from tests.report.conftest import STAGE_COLUMNS, handmade


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _steps(ax) -> list[StepPatch]:
    return [p for p in ax.patches if isinstance(p, StepPatch)]


# --------------------------------------------------------------------------- timeline


def test_timeline_draws_every_stage_when_the_columns_exist():
    res = handmade()
    fig = plot.timeline(res)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["Arrival rate", "chat: replicas by stage", "code: replicas by stage",
                      "Refused attempts: HTTP 503 (no ready replica) and 429 (queue full)",
                      "Router queue depth"]
    labels = _legend(fig.axes[1])
    assert labels == ["ready", "draining", "initializing", "downloading weights", "scheduling",
                      "pending (no GPUs)", "desired"]
    # Stacked: the top of the last stage is the sum of every stage.
    rows = res.timeline[res.timeline["deployment"] == "chat"]
    filled = [p for p in _steps(fig.axes[1]) if p.get_fill()]
    top = filled[-1].get_data().values
    stacked = rows[["ready_replicas", *STAGE_COLUMNS]].sum(axis=1).to_numpy(float)
    # A count taken at an interval's end holds from then on: shifted one interval.
    np.testing.assert_allclose(top, np.append(stacked[0], stacked[:-1]))
    assert fig.get_suptitle() == "handmade: load and capacity over time"
    assert fig.axes[-1].get_xlabel() == "simulated time (min)"
    _png(fig)


def test_timeline_without_stage_columns_shows_ready_and_desired_only():
    fig = plot.timeline(handmade(later_columns=False))
    assert _legend(fig.axes[1]) == ["ready", "desired"]


def test_timeline_plots_the_table_values():
    res = handmade()
    fig = plot.timeline(res)
    rows = res.timeline[res.timeline["deployment"] == "code"]
    rates = _steps(fig.axes[0])[1].get_data()
    np.testing.assert_allclose(rates.values, rows["arrival_rps"])
    np.testing.assert_allclose(rates.edges, np.append(rows["t_start"], 600.0) / 60)
    errors = {lab: p for lab, p in zip(_legend(fig.axes[3]), _steps(fig.axes[3]), strict=True)}
    assert set(errors) == {"chat HTTP 503", "chat HTTP 429", "code HTTP 503", "code HTTP 429"}
    np.testing.assert_allclose(errors["code HTTP 503"].get_data().values,
                               rows["http_503"] / rows["interval_s"])


def test_timeline_shades_outages_and_draws_counts_from_when_they_were_taken():
    res = handmade()
    res.scenario["faults"] = {"outages": [{"datacenter": "US_IOWA_1", "start": "2m",
                                           "duration": "3m"}]}
    fig = plot.timeline(res)
    assert "outage: US_IOWA_1" in _legend(fig.axes[1])
    spans = [p for p in fig.axes[3].patches if not isinstance(p, StepPatch)]
    assert [tuple(np.round(p.get_x() + np.array([0, p.get_width()]), 6)) for p in spans] == [
        (2.0, 5.0)]
    desired = next(p for p in _steps(fig.axes[1]) if not p.get_fill()).get_data()
    rows = res.timeline[res.timeline["deployment"] == "chat"]
    np.testing.assert_allclose(desired.values[1:], rows["desired_replicas"].to_numpy()[:-1])


def test_timeline_says_when_nothing_was_refused(real_result):
    res = Result(real_result.summary, real_result.requests,
                 real_result.timeline.assign(http_503=0, http_429=0), real_result.billing,
                 real_result.scenario)
    fig = plot.timeline(res)
    assert "no HTTP 503 or 429 responses" in _texts(fig)
    # one deployment: rate, replicas, latency, load (and its right-hand axis), refusals, queue
    assert len(fig.axes) == 7


def test_timeline_of_an_empty_table_is_a_note():
    res = handmade()
    empty = Result(res.summary, res.requests, res.timeline.iloc[0:0], res.billing, res.scenario)
    assert "the timeline is empty" in _texts(plot.timeline(empty))


def test_time_axis_unit_follows_the_horizon():
    assert plot._time_unit(3600) == (60.0, "min")
    assert plot._time_unit(86400) == (3600.0, "h")
    assert plot._time_unit(7 * 86400) == (86400.0, "days")


# --------------------------------------------------------------------------- latency


def test_latency_cdf_matches_the_summary(real_result):
    fig = plot.latency_cdf(real_result, "ttft_s")
    ax = fig.axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("real-small")]
    reqs = real_result.requests
    kept = reqs[(reqs["status"] == "ok") & (reqs["arrival_s"] >= 60.0)]
    assert len(line.get_xdata()) == min(len(kept), 4000)
    p99 = real_result.summary["total"]["ttft_p99_s"]
    assert f"p99 {plot.seconds_text(p99)}" in line.get_label()
    slo = [ln for ln in ax.get_lines() if ln.get_label().startswith("SLO")]
    assert slo and slo[0].get_xdata()[0] == 1.0
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "time to first token (s, log scale)"


def test_latency_cdf_curves_per_result_and_per_deployment():
    a, b = handmade(name="a"), handmade(name="b", seed=2)
    two = plot.latency_cdf([a, b], "e2e_s", labels=["base", "new"])
    assert [t.split(":")[0] for t in _legend(two.axes[0])] == ["base", "new"]
    one = plot.latency_cdf(a, "tpot_s")
    assert [t.split(":")[0] for t in _legend(one.axes[0])][:2] == ["chat", "code"]
    # The same seeds twice: labels stay distinct.
    same = plot.latency_cdf([a, handmade(name="a", seed=2)])
    assert [t.split(":")[0] for t in _legend(same.axes[0])][:2] == ["a (seed 1)", "a (seed 2)"]


def test_latency_cdf_uses_quantiles_for_many_requests():
    values = np.sort(np.random.default_rng(0).exponential(size=50_000))
    x, y = plot._cdf_points(values)
    assert len(x) == 4000
    # At every plotted point, the share of values <= x is y (to one sample).
    shares = np.searchsorted(values, x, side="right") / len(values)
    assert np.max(np.abs(shares - y)) <= 1 / len(values) + 1e-12


def test_latency_cdf_refuses_what_it_cannot_draw():
    res = handmade()
    with pytest.raises(ValueError, match="unknown metric 'ttft'"):
        plot.latency_cdf(res, "ttft")
    with pytest.raises(ValueError, match="1 labels for 2 results"):
        plot.latency_cdf([res, res], labels=["x"])


def test_latency_cdf_without_completed_requests_is_a_note():
    res = handmade()
    failed = res.requests.assign(status=pd.Categorical(["failed_503"] * len(res.requests)))
    empty = Result(res.summary, failed, res.timeline, res.billing, res.scenario)
    assert "no completed requests after the warm-up" in _texts(plot.latency_cdf(empty))


# --------------------------------------------------------------------------- cost


def _bar_total(ax) -> float:
    return sum(p.get_width() for p in ax.patches if p.get_facecolor()[:3] != (1.0, 1.0, 1.0))


def test_cost_breakdown_splits_by_kind_and_prices_serverless():
    res = handmade()
    fig = plot.cost_breakdown(res)
    assert [ax.get_title() for ax in fig.axes] == ["by deployment", "by datacenter",
                                                   "by accelerator"]
    total = float(res.billing["cost_usd"].sum())
    for ax in fig.axes:
        assert _bar_total(ax) == pytest.approx(total)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["on-demand GPU time", "reserved GPU time",
                      "serverless price of the same tokens"]
    # The reservation belongs to no deployment and no datacenter: it is a bar of its own.
    assert "(reservation)" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "(reservation)" in [t.get_text() for t in fig.axes[1].get_yticklabels()]
    hatched = sorted(p.get_width() for p in fig.axes[0].patches if p.get_hatch())
    assert hatched == [3.0, 4.0]  # the per-deployment serverless_cost_usd
    assert fig.get_suptitle() == f"handmade: cost breakdown (total ${total:,.2f})"


def test_cost_breakdown_of_a_real_run(real_result):
    fig = plot.cost_breakdown(real_result)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "on-demand GPU time"
    assert _bar_total(fig.axes[1]) == pytest.approx(real_result.summary["total"]["cost_usd"])
    dc = real_result.billing["datacenter"].iloc[0]
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == [dc]


def test_cost_breakdown_of_several_runs_stacks_categories_per_run():
    a, b = handmade(name="a"), handmade(name="b", deployments=("chat",), later_columns=False)
    fig = plot.cost_breakdown([a, b])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert set(_legend(ax)) == {"chat", "code", "(reservation)",
                                "serverless price of the same tokens"}
    widths: dict[float, float] = {}
    for p in ax.patches:
        widths[round(p.get_y(), 6)] = widths.get(round(p.get_y(), 6), 0.0) + p.get_width()
    assert sorted(widths.values()) == pytest.approx(
        sorted([a.billing["cost_usd"].sum(), b.billing["cost_usd"].sum()]))


def test_cost_breakdown_of_an_empty_billing_is_a_note():
    res = handmade()
    free = Result(res.summary, res.requests, res.timeline, res.billing.iloc[0:0], res.scenario)
    assert "no billed GPU time" in _texts(plot.cost_breakdown(free))


# --------------------------------------------------------------------------- GPUs


def test_gpu_allocation_from_the_allocation_table():
    res = handmade()
    fig = plot.gpu_allocation(res)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left").split(":")[0] for ax in visible] == [
        "EU_FRANKFURT_1 · H100_80GB", "US_IOWA_1 · H100_80GB"]
    iowa = visible[1]
    assert _legend(iowa) == ["chat", "code", "background", "inventory: 48 GPUs"]
    alloc = res.allocation
    peak = alloc[alloc["datacenter"] == "US_IOWA_1"].groupby("t_end")["gpus"].sum().max()
    assert iowa.get_title(loc="left").endswith(f"at most {peak:,.0f} of 48 GPUs in use")


def test_gpu_allocation_with_holders_missing_at_some_samples_draws_them_as_zero():
    """A holder with no row at a sample time (a replica not yet placed) reads 0 GPUs there,
    without pandas' warning about filling integer counts with 0.0."""
    res = handmade()
    alloc = res.allocation
    gone = (alloc["holder"] == "code") & (alloc["t_end"] <= 180.0)
    sparse = Result(res.summary, res.requests, res.timeline, res.billing, res.scenario,
                    alloc[~gone].reset_index(drop=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot.gpu_allocation(sparse)
    iowa = [ax for ax in fig.axes if ax.get_visible()][1]
    assert _legend(iowa)[:2] == ["chat", "code"]


def test_gpu_allocation_falls_back_to_the_timeline(real_result):
    fig = plot.gpu_allocation(real_result)
    (ax,) = fig.axes
    dc = real_result.billing["datacenter"].iloc[0]
    gpus = int(real_result.timeline["gpus_allocated"].max())
    assert ax.get_title(loc="left").startswith(f"{dc} · H100_80GB: at most {gpus} of ")
    assert _legend(ax)[0] == "chat"


def test_gpu_allocation_without_any_table_is_a_note():
    res = handmade(later_columns=False)
    bare = Result(res.summary, res.requests, res.timeline.drop(columns="gpus_allocated"),
                  res.billing, res.scenario)
    assert "no GPU allocation recorded" in _texts(plot.gpu_allocation(bare))


# --------------------------------------------------------------------------- shapes


def test_shape_comparison_of_results_puts_one_point_per_run():
    a, b = handmade(name="a"), handmade(name="b", seed=2)
    b.summary["total"] = b.summary["total"] | {"ttft_p99_s": 3.0,
                                               "cost_per_million_tokens_usd": 1.0}
    fig = plot.shape_comparison([a, b], labels=["4×H100", "2×H200"])
    ax = fig.axes[0]
    points = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(points, [[0.5, 2.5], [3.0, 1.0]])
    assert {t.get_text(): tuple(t.xy) for t in ax.texts} == {"4×H100": (0.5, 2.5),
                                                             "2×H200": (3.0, 1.0)}
    assert any(ln.get_label().startswith("TTFT objective: p99 ≤ 2 s") for ln in ax.get_lines())
    # 2×H200 misses the 2 s objective: crossed out, and no frontier is drawn through it
    assert not [ln for ln in ax.get_lines() if ln.get_label().startswith("frontier")]
    assert "misses the TTFT objective" in _legend(ax)
    assert ax.get_ylabel() == "cost per 1M tokens (USD)"


def test_shape_comparison_of_a_table_averages_seeds():
    table = pd.DataFrame({
        "shape": ["fast", "fast", "cheap", "cheap", "slow"],
        "seed": [1, 2, 1, 2, 1],
        "ttft_p99_s": [0.2, 0.4, 1.0, 1.2, 5.0],
        "cost_per_million_tokens_usd": [3.0, 3.2, 1.0, 1.2, 2.0],
    })
    fig = plot.shape_comparison(table, slo_s=2.0)
    ax = fig.axes[0]
    means = ax.collections[-1].get_offsets()
    np.testing.assert_allclose(means, [[0.3, 3.1], [1.1, 1.1], [5.0, 2.0]])
    labels = {t.get_text(): tuple(np.round(t.xy, 6)) for t in ax.texts}
    assert labels == {"fast": (0.3, 3.1), "cheap": (1.1, 1.1), "slow": (5.0, 2.0)}
    frontier = next(ln for ln in ax.get_lines() if ln.get_label().startswith("frontier"))
    np.testing.assert_allclose(frontier.get_xydata(), [[0.3, 3.1], [1.1, 1.1]])  # slow is beaten
    assert "single runs (seeds)" in _legend(ax)


def test_frontier_leaves_out_points_that_miss_the_objective():
    # the cheapest point misses the 1 s objective: the frontier is drawn through the others
    table = pd.DataFrame({"shape": ["fast", "mid", "cheap-but-slow"],
                          "ttft_p99_s": [0.2, 0.8, 3.0],
                          "cost_per_million_tokens_usd": [3.0, 2.0, 0.5]})
    ax = plot.shape_comparison(table, slo_s=1.0).axes[0]
    frontier = next(ln for ln in ax.get_lines() if ln.get_label().startswith("frontier"))
    np.testing.assert_allclose(frontier.get_xydata(), [[0.2, 3.0], [0.8, 2.0]])


def test_labels_of_close_points_do_not_overlap():
    # Two points at the same cost, close in latency: their labels must not share a place.
    table = pd.DataFrame({"label": ["predictive", "keda", "far"],
                          "ttft_p99_s": [1.33, 1.73, 15.0],
                          "cost_per_million_tokens_usd": [0.25, 0.25, 0.2]})
    ax = plot.shape_comparison(table).axes[0]
    offsets = {t.get_text(): t.xyann for t in ax.texts}
    assert offsets["predictive"] != offsets["keda"]


def test_frontier_keeps_undominated_points_only():
    x = np.array([1.0, 2.0, 3.0, 0.5, 2.5])
    y = np.array([5.0, 3.0, 4.0, 6.0, 1.0])
    assert plot._frontier(x, y).tolist() == [3, 0, 1, 4]


def test_shape_comparison_needs_its_columns():
    with pytest.raises(ValueError, match="cost_per_million_tokens_usd"):
        plot.shape_comparison(pd.DataFrame({"ttft_p99_s": [1.0]}))


def test_every_plot_renders_a_real_run(real_result):
    for fig in (plot.timeline(real_result), plot.latency_cdf([real_result]),
                plot.cost_breakdown(real_result), plot.gpu_allocation(real_result),
                plot.shape_comparison(real_result)):
        assert isinstance(fig, Figure)
        assert fig.get_suptitle() or fig.axes[0].get_title()
        assert _png(fig).startswith(b"\x89PNG")


def test_plots_of_a_real_control_plane_run(control_result):
    res = control_result
    assert res.summary["total"]["cold_starts"] == 2 and res.summary["total"]["http_503"] > 0
    fig = plot.timeline(res)
    labels = _legend(fig.axes[1])
    assert {"ready", "initializing", "desired"} <= set(labels)
    (refusals,) = [a for a in fig.axes if a.get_title(loc="left").startswith("Refused")]
    assert _legend(refusals) == ["HTTP 503"]
    alloc = plot.gpu_allocation(res)
    (ax,) = [a for a in alloc.axes if a.get_visible()]
    dc = res.billing["datacenter"].iloc[0]
    assert ax.get_title(loc="left").startswith(f"{dc} · H100_80GB: at most 1 of ")
    assert _legend(ax)[0] == "bursty"
