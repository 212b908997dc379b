"""Streaming statistics and bounded memory: sketches against exact percentiles,
results independent of the engine's window of arrivals."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ddsketch import DDSketch

import sim
from sim.metrics.stream import PERCENTILES, RELATIVE_ACCURACY, Sketch

ROOT = Path(__file__).resolve().parents[2]
PERCENTILE_KEYS = tuple(key for key, _, _ in PERCENTILES)


def test_vectorised_sketch_buckets_values_as_ddsketch_does():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.lognormal(0.0, 2.0, 20_000), [0.0, 0.0, 1e-3, 1.0, 7e3]])
    ours, theirs = Sketch(), DDSketch(RELATIVE_ACCURACY)
    ours.add(values)
    for v in values:
        theirs.add(float(v))
    assert ours.count == theirs.count
    for q in (0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
        assert ours.quantile(q) == pytest.approx(theirs.get_quantile_value(q), rel=1e-12)


def test_a_sketch_fed_in_batches_with_quantiles_between_matches_ddsketch():
    """Pending bucket counts (sim.metrics.stream.Sketch) grow below and above their range
    and are handed to the store at each quantile; the result is ddsketch's value by value."""
    rng = np.random.default_rng(5)
    batches = [rng.lognormal(0.0, 0.5, 3_000), rng.lognormal(-6.0, 1.0, 3_000),
               rng.lognormal(5.0, 1.0, 3_000), np.array([0.0, 2.5]), rng.lognormal(0.0, 3.0, 3_000)]
    ours, theirs = Sketch(), DDSketch(RELATIVE_ACCURACY)
    for k, batch in enumerate(batches):
        ours.add(batch)
        for v in batch:
            theirs.add(float(v))
        assert ours.count == theirs.count
        if k in (2, 4):  # three batches pending (range grown down, then up), then two
            for q in (0.01, 0.5, 0.99):
                assert ours.quantile(q) == pytest.approx(theirs.get_quantile_value(q),
                                                         rel=1e-12)


def test_sketch_quantiles_are_ddsketchs_at_every_rank():
    """Quantiles come from a binary search on running bucket counts, not ddsketch's
    bin walk: the same value at every rank, bin boundaries and the zero bucket
    included, after adds and after a merge."""
    rng = np.random.default_rng(6)
    values = np.concatenate([np.zeros(7), np.round(rng.lognormal(0.0, 1.5, 2_000), 2),
                             np.zeros(4)])
    ours, other, theirs = Sketch(), Sketch(), DDSketch(RELATIVE_ACCURACY)
    ours.add(values[:900])
    other.add(values[900:])
    for v in values:
        theirs.add(float(v))
    for merged in (False, True):
        if merged:
            ours.merge(other)
        reference = theirs if merged else DDSketch(RELATIVE_ACCURACY)
        if not merged:
            for v in values[:900]:
                reference.add(float(v))
        n = reference.count
        qs = np.concatenate([np.linspace(0.0, 1.0, 1001), np.arange(n) / (n - 1)])
        for q in qs.tolist():
            want = reference.get_quantile_value(q)
            if 0.0 < q < 1.0:
                want = min(max(want, reference._min), reference._max)
            else:
                want = reference._min if q <= 0.0 else reference._max
            assert ours.quantile(q) == want, q


def test_sketches_merge_to_the_sketch_of_the_union():
    rng = np.random.default_rng(4)
    values = rng.exponential(2.0, 10_000)
    whole, a, b = Sketch(), Sketch(), Sketch()
    whole.add(values)
    a.add(values[:3_000])
    b.add(values[3_000:])
    a.merge(b)
    for q in (0.5, 0.9, 0.99):
        assert a.quantile(q) == whole.quantile(q)


def day_of_traffic() -> dict:
    """A day of diurnal traffic (≈ 350,000 requests) under the fireworks autoscaler."""
    return {
        "name": "day",
        "seed": 5,
        "duration": "1d",
        "warmup": "10m",
        "deployments": [{
            "name": "chat",
            "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "region": "US",
            "min_replicas": 1,
            "max_replicas": 8,
            "autoscaler": {"policy": "fireworks", "load_targets": {"default": 0.8}},
            "cold_start": {"scheduling": "30s", "weight_download_rate": "2GB/s",
                           "initialization": "60s"},
            "traffic": {
                "arrivals": {"kind": "diurnal", "mean_rps": 4, "peak_to_mean": 1.8},
                "input_tokens": {"kind": "lognormal", "median": 800, "p90": 3000},
                "output_tokens": {"kind": "lognormal", "median": 200, "p90": 700},
            },
        }],
        "slo": {"ttft_p99": "2s"},
    }


def test_sketch_percentiles_of_a_day_are_within_one_percent_of_exact_ones():
    exact = sim.run(day_of_traffic())
    sketched = sim.run(day_of_traffic(), keep_requests=False)
    assert exact.summary["latency_percentiles"] == "exact"
    assert sketched.summary["latency_percentiles"] == "sketch"
    assert sketched.requests.empty
    assert exact.summary["total"]["requests"] > 300_000
    for scope in ("total", "deployments"):
        a, b = exact.summary[scope], sketched.summary[scope]
        if scope == "deployments":
            a, b = a["chat"], b["chat"]
        for key in PERCENTILE_KEYS:
            assert b[key] == pytest.approx(a[key], rel=0.01), key
        # everything else is counted exactly either way
        rest = [k for k in a if k not in PERCENTILE_KEYS]
        assert {k: b[k] for k in rest} == {k: a[k] for k in rest}


def _without_wall(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "wall_s"}


@pytest.mark.parametrize("scenario", ["scale_from_zero.yaml", "crashes.yaml", "outage.yaml"])
def test_results_do_not_depend_on_the_window_of_arrivals(scenario):
    path = ROOT / "scenarios" / scenario
    whole = sim.run(path, chunk_s=None)
    for chunk in (3600.0, 617.0):
        part = sim.run(path, chunk_s=chunk)
        pd.testing.assert_frame_equal(part.requests, whole.requests, check_exact=True)
        pd.testing.assert_frame_equal(part.timeline, whole.timeline, check_exact=True)
        pd.testing.assert_frame_equal(part.billing, whole.billing, check_exact=True)
        assert _without_wall(part.summary) == _without_wall(whole.summary)


def test_sketched_summary_does_not_depend_on_the_window_of_arrivals():
    path = ROOT / "scenarios" / "scale_from_zero.yaml"
    a = sim.run(path, keep_requests=False, chunk_s=None)
    b = sim.run(path, keep_requests=False, chunk_s=900.0)
    assert _without_wall(a.summary) == _without_wall(b.summary)


@pytest.mark.parametrize("arrivals", [
    {"kind": "diurnal", "mean_rps": 3, "peak_to_mean": 1.5,
     "weekly_weights": [1, 1, 1, 1, 1, 0.5, 0.5]},
    {"kind": "burst", "base_rps": 1, "burst_rps": 8, "mean_burst": "5m", "mean_gap": "20m"},
    {"kind": "trace", "path": "AzureLLMInferenceTrace_code.csv", "loop": True, "rate_scale": 2.5},
])
def test_workload_windows_do_not_depend_on_how_they_are_read(arrivals):
    from sim.workload import TrafficSpec, generate
    from sim.workload.generate import WorkloadStream

    traffic = TrafficSpec.model_validate({
        "arrivals": arrivals,
        "input_tokens": {"kind": "lognormal", "median": 500, "p90": 2000},
        "output_tokens": {"kind": "exponential", "mean": 100},
    })
    base = ROOT / "scenarios" / "traces"
    seed = np.random.SeedSequence(9)
    whole = generate(traffic, 3 * 86400.0 + 1234.5, seed, base_dir=base)
    stream = WorkloadStream(traffic, 3 * 86400.0 + 1234.5, seed, base_dir=base)
    edges = [0.0, 100.0, 5000.0, 5000.5, 90000.0, 200000.0, np.inf]
    parts = [stream.take(a, b) for a, b in itertools.pairwise(edges)]
    for name in ("arrival_s", "input_tokens", "output_tokens"):
        joined = np.concatenate([getattr(p, name) for p in parts])
        assert np.array_equal(joined, getattr(whole, name)), name
    assert np.all(np.diff(whole.arrival_s) >= 0)
    assert whole.arrival_s[-1] < 3 * 86400.0 + 1234.5


@pytest.mark.slow
def test_sketch_percentiles_on_a_day_of_the_week_benchmark():
    """The benchmark scenario's busiest day (≈ 4.7 M requests, three deployments)."""
    path = ROOT / "scenarios" / "bench" / "week.yaml"
    exact = sim.run(path, {"duration": "1d"})
    sketched = sim.run(path, {"duration": "1d"}, keep_requests=False)
    for name in [*exact.summary["deployments"], None]:
        a = exact.summary["total"] if name is None else exact.summary["deployments"][name]
        b = sketched.summary["total"] if name is None else sketched.summary["deployments"][name]
        for key in PERCENTILE_KEYS:
            assert b[key] == pytest.approx(a[key], rel=0.01), (name, key)
