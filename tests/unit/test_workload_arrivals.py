"""Arrival processes against their definitions: counts, rates and profiles,
with tolerances from the theory (Poisson counts) and several seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sim.workload import FixedLength, TrafficSpec, generate
from sim.workload.arrivals import raised_cosine_power

SEEDS = range(5)
LENGTHS = {
    "input_tokens": {"kind": "fixed", "value": 100},
    "output_tokens": {"kind": "fixed", "value": 10},
}


def arrivals(spec: dict[str, object], duration_s: float, seed: int) -> np.ndarray:
    traffic = TrafficSpec.model_validate({"arrivals": spec, **LENGTHS})
    w = generate(traffic, duration_s, np.random.SeedSequence(seed))
    assert np.all(np.diff(w.arrival_s) >= 0)
    assert w.arrival_s.size == 0 or (w.arrival_s[0] >= 0 and w.arrival_s[-1] < duration_s)
    return w.arrival_s


def chi_square_ok(observed: np.ndarray, expected: np.ndarray) -> bool:
    """Pearson's statistic within df + 5 sd of its chi-square(df) distribution."""
    mask = expected > 0
    assert observed[~mask].sum() == 0, "arrivals where the rate is zero"
    stat = float(np.sum((observed[mask] - expected[mask]) ** 2 / expected[mask]))
    df = int(mask.sum()) - 1
    return stat <= df + 5 * math.sqrt(2 * df)


def within_poisson(count: int, expected: float, sds: float = 5.0) -> bool:
    return abs(count - expected) <= sds * math.sqrt(expected)


def test_poisson_counts_and_exponential_gaps() -> None:
    rps, duration = 5.0, 2000.0
    for seed in SEEDS:
        t = arrivals({"kind": "poisson", "rps": rps}, duration, seed)
        assert within_poisson(t.size, rps * duration)
        gaps = np.diff(t)
        assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)
        # memoryless: P(gap > mean) = e^-1
        assert np.mean(gaps > 1 / rps) == pytest.approx(math.exp(-1), abs=0.02)
        # counts in 100 equal bins are uniform
        counts, _ = np.histogram(t, bins=100, range=(0, duration))
        assert chi_square_ok(counts, np.full(100, t.size / 100))


def test_hourly_profile_is_followed() -> None:
    weights = [0, 1, 1, 1, 2, 2, 3, 4, 6, 8, 8, 8, 6, 6, 6, 5, 5, 4, 3, 3, 2, 2, 1, 1]
    mean_rps, days = 0.5, 7
    spec = {"kind": "diurnal", "mean_rps": mean_rps, "hourly_weights": weights}
    w = np.array(weights, dtype=float)
    expected = days * 3600 * mean_rps * w / w.mean()
    for seed in SEEDS:
        t = arrivals(spec, days * 86400.0, seed)
        by_hour = np.bincount((t // 3600).astype(int) % 24, minlength=24)
        assert by_hour[0] == 0  # weight 0: no traffic
        assert chi_square_ok(by_hour, expected)
        assert within_poisson(t.size, mean_rps * days * 86400)


def test_weekly_weights_shape_the_days() -> None:
    weekly = [1, 1, 1, 1, 1, 0.4, 0.4]
    spec = {
        "kind": "diurnal",
        "mean_rps": 0.2,
        "hourly_weights": [1] * 24,
        "weekly_weights": weekly,
    }
    ww = np.array(weekly) / np.mean(weekly)
    expected = 2 * 86400 * 0.2 * ww  # two weeks
    for seed in SEEDS:
        t = arrivals(spec, 14 * 86400.0, seed)
        by_day = np.bincount((t // 86400).astype(int) % 7, minlength=7)
        assert chi_square_ok(by_day, expected)


@pytest.mark.parametrize("peak_to_mean", [1.0, 1.6, 2.0, 3.0, 6.0])
def test_raised_cosine_has_the_asked_peak_to_mean(peak_to_mean: float) -> None:
    theta = np.linspace(-math.pi, math.pi, 200_001)
    if peak_to_mean <= 2:
        shape = 1 + (peak_to_mean - 1) * np.cos(theta)
    else:
        shape = ((1 + np.cos(theta)) / 2) ** raised_cosine_power(peak_to_mean)
    # trapezoid mean over one period
    mean = float(np.sum((shape[1:] + shape[:-1]) / 2) / (theta.size - 1))
    assert shape.max() / mean == pytest.approx(peak_to_mean, rel=1e-6)


@pytest.mark.parametrize("peak_to_mean", [1.5, 3.0])
def test_sinusoid_counts_per_hour(peak_to_mean: float) -> None:
    mean_rps, days, peak_h = 0.5, 4, 14
    spec = {"kind": "diurnal", "mean_rps": mean_rps, "peak_to_mean": peak_to_mean}
    # expected counts per hour of the day: integrate the documented rate
    t = np.linspace(0, 86400, 24 * 600 + 1)
    theta = 2 * math.pi * (t - peak_h * 3600) / 86400
    if peak_to_mean <= 2:
        rate = mean_rps * (1 + (peak_to_mean - 1) * np.cos(theta))
    else:
        p = raised_cosine_power(peak_to_mean)
        rate = mean_rps * peak_to_mean * ((1 + np.cos(theta)) / 2) ** p
    seg = (rate[1:] + rate[:-1]) / 2 * np.diff(t)
    expected = days * seg.reshape(24, 600).sum(axis=1)
    assert expected.sum() == pytest.approx(days * 86400 * mean_rps, rel=1e-6)
    for seed in SEEDS:
        arr = arrivals(spec, days * 86400.0, seed)
        by_hour = np.bincount((arr // 3600).astype(int) % 24, minlength=24)
        assert chi_square_ok(by_hour, expected)
        assert within_poisson(arr.size, mean_rps * days * 86400)


def test_sinusoid_period_and_peak_time() -> None:
    spec = {"kind": "diurnal", "mean_rps": 2, "peak_to_mean": 2, "period": "1h", "peak_at": "15m"}
    t = np.concatenate([arrivals(spec, 10 * 3600.0, s) for s in SEEDS])
    by_minute = np.bincount(((t % 3600) // 60).astype(int), minlength=60)
    assert abs(int(np.argmax(np.convolve(by_minute, np.ones(5), "same"))) - 15) <= 2
    assert by_minute[44:47].sum() < 0.01 * by_minute.sum()  # trough at 45 min is ~0


def test_ramp_rate_is_linear_then_holds() -> None:
    duration = 4000.0
    spec = {"kind": "ramp", "start_rps": 1, "end_rps": 9, "ramp_duration": "2000s"}
    edges = np.linspace(0, duration, 21)

    def integral(a: float, b: float) -> float:  # of 1 + 8 min(t/2000, 1)
        def cum(x: float) -> float:
            return x + 4 * x * x / 2000 if x <= 2000 else 1 * x + 4 * 2000 + 8 * (x - 2000)

        return cum(b) - cum(a)

    expected = np.array([integral(a, b) for a, b in itertools.pairwise(edges)])
    for seed in SEEDS:
        t = arrivals(spec, duration, seed)
        counts, _ = np.histogram(t, bins=edges)
        assert chi_square_ok(counts, expected)


def test_ramp_from_zero_over_the_whole_run() -> None:
    spec = {"kind": "ramp", "start_rps": 0, "end_rps": 10}
    for seed in SEEDS:
        t = arrivals(spec, 1000.0, seed)
        assert within_poisson(t.size, 5000)
        assert within_poisson(int(np.sum(t < 500)), 1250)


def test_mmpp_long_run_rate_is_the_weighted_mean() -> None:
    spec = {"kind": "burst", "base_rps": 1, "burst_rps": 10, "mean_burst": "10s", "mean_gap": "90s"}
    duration = 50_000.0
    long_run = (1 * 90 + 10 * 10) / 100
    rates = [arrivals(spec, duration, seed).size / duration for seed in SEEDS]
    # count variance of an MMPP-2 over T: T (λ̄ + 2 Δλ² π0 π1 / (α + β)) asymptotically
    per_s = long_run + 2 * 9**2 * 0.1 * 0.9 / (1 / 10 + 1 / 90)
    sd_of_mean_rate = math.sqrt(per_s / duration / len(rates))
    assert abs(np.mean(rates) - long_run) <= 5 * sd_of_mean_rate


def test_mmpp_is_overdispersed_and_spends_the_right_time_in_bursts() -> None:
    spec = {"kind": "burst", "base_rps": 0, "burst_rps": 20, "mean_burst": "5s", "mean_gap": "45s"}
    t = arrivals(spec, 20_000.0, 0)
    counts, _ = np.histogram(t, bins=20_000, range=(0, 20_000))
    # index of dispersion of 1-s counts: 1 for Poisson, far above for bursts
    assert counts.var() / counts.mean() > 5
    # base_rps 0: the share of 1-s bins with arrivals tracks the burst share 5/50
    assert np.mean(counts > 0) == pytest.approx(0.1, abs=0.03)


def test_spikes_replace_the_base_rate() -> None:
    spec = {
        "kind": "spikes",
        "base_rps": 1,
        "spikes": [
            {"at": "100s", "duration": "20s", "rps": 50},
            {"at": "300s", "duration": "10s", "rps": 20},
            {"at": "990s", "duration": "1m", "rps": 30},  # cut by the end of the run
        ],
    }
    for seed in SEEDS:
        t = arrivals(spec, 1000.0, seed)
        assert within_poisson(int(np.sum((t >= 100) & (t < 120))), 1000)
        assert within_poisson(int(np.sum((t >= 300) & (t < 310))), 200)
        assert within_poisson(int(np.sum(t >= 990)), 300)
        base = np.sum((t < 100) | ((t >= 120) & (t < 300)) | ((t >= 310) & (t < 990)))
        assert within_poisson(int(base), 1000 - 20 - 10 - 10)


def test_zero_duration_gives_no_requests() -> None:
    for spec in (
        {"kind": "poisson", "rps": 5},
        {"kind": "ramp", "start_rps": 0, "end_rps": 5},
        {"kind": "burst", "base_rps": 0, "burst_rps": 5, "mean_burst": "1s", "mean_gap": "1s"},
    ):
        assert arrivals(spec, 0.0, 0).size == 0


def test_long_high_rate_run_is_exact_in_blocks() -> None:
    # 2 M arrivals cross several internal blocks: the count stays Poisson and
    # the per-block joins leave no gap or pile-up in the rate.
    t = arrivals({"kind": "poisson", "rps": 200}, 10_000.0, 0)
    assert within_poisson(t.size, 2_000_000)
    counts, _ = np.histogram(t, bins=200, range=(0, 10_000))
    assert chi_square_ok(counts, np.full(200, t.size / 200))


# --------------------------------------------------------------------------- determinism


TRAFFIC = TrafficSpec.model_validate(
    {
        "arrivals": {"kind": "diurnal", "mean_rps": 2, "peak_to_mean": 3},
        "input_tokens": {"kind": "lognormal", "median": 1000, "p90": 3000},
        "output_tokens": {"kind": "exponential", "mean": 200},
    }
)


def test_same_seed_sequence_gives_identical_arrays() -> None:
    ss = np.random.SeedSequence(42, spawn_key=(7,))
    a = generate(TRAFFIC, 3600.0, ss)
    b = generate(TRAFFIC, 3600.0, ss)  # the seed sequence is not consumed
    c = generate(TRAFFIC, 3600.0, np.random.SeedSequence(42, spawn_key=(7,)))
    for w in (b, c):
        assert np.array_equal(a.arrival_s, w.arrival_s)
        assert np.array_equal(a.input_tokens, w.input_tokens)
        assert np.array_equal(a.output_tokens, w.output_tokens)
    assert ss.n_children_spawned == 0


def test_different_seeds_give_different_arrays() -> None:
    a = generate(TRAFFIC, 3600.0, np.random.SeedSequence(1))
    b = generate(TRAFFIC, 3600.0, np.random.SeedSequence(2))
    assert a.arrival_s.size != b.arrival_s.size or not np.array_equal(a.arrival_s, b.arrival_s)
    n = min(len(a), len(b))
    assert not np.array_equal(a.input_tokens[:n], b.input_tokens[:n])


def test_changing_output_lengths_leaves_arrivals_and_inputs_alone() -> None:
    other = TRAFFIC.model_copy(update={"output_tokens": FixedLength(value=7)})
    ss = np.random.SeedSequence(5)
    a, b = generate(TRAFFIC, 3600.0, ss), generate(other, 3600.0, ss)
    assert np.array_equal(a.arrival_s, b.arrival_s)
    assert np.array_equal(a.input_tokens, b.input_tokens)
    assert np.all(b.output_tokens == 7)


def test_workload_arrays_are_read_only_and_typed() -> None:
    w = generate(TRAFFIC, 600.0, np.random.SeedSequence(0))
    assert len(w) == w.arrival_s.size == w.input_tokens.size == w.output_tokens.size
    assert (w.arrival_s.dtype, w.input_tokens.dtype, w.output_tokens.dtype) == (
        np.float64,
        np.int64,
        np.int64,
    )
    with pytest.raises(ValueError, match="read-only"):
        w.arrival_s[0] = 1.0
