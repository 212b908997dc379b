"""Token-length samplers: one generic test checks every sampler against its
``.mean`` and ``.variance`` (Ciw style), over several seeds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.workload import (
    MAX_TOKENS,
    EmpiricalLength,
    ExponentialLength,
    FixedLength,
    LengthSpec,
    LognormalLength,
    length_distribution,
    read_trace,
)
from sim.workload.lengths import Geometric, RoundedLognormal

TRACES = Path(__file__).resolve().parents[2] / "scenarios" / "traces"
CONV = str(TRACES / "AzureLLMInferenceTrace_conv.csv")

SPECS: list[LengthSpec] = [
    FixedLength(value=200),
    FixedLength(value=5, min=10),
    ExponentialLength(mean=200),
    ExponentialLength(mean=1),
    ExponentialLength(mean=3.5),
    ExponentialLength(mean=50, min=10, max=120),
    LognormalLength(median=1000, p90=3000),
    LognormalLength(median=129, p90=400),
    LognormalLength(median=200, p90=500, max=400),
    LognormalLength(median=1000, p90=3000, min=500, max=5000),
    LognormalLength(median=3, p90=20),
    EmpiricalLength(path=CONV, column="input"),
    EmpiricalLength(path=CONV, column="output", min=20, max=500),
]
SEEDS = range(5)
N = 200_000


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: repr(s))
def test_sample_moments_match_mean_and_variance(spec: LengthSpec) -> None:
    dist = length_distribution(spec)
    mean, var = dist.mean, dist.variance
    # Rounding a continuous variable to integers moves its mean by a little and
    # adds up to 1/12 to its variance (Sheppard); only the lognormal rounds.
    rounding = isinstance(dist, RoundedLognormal)
    for seed in SEEDS:
        x = dist.sample(np.random.default_rng(seed), N)
        assert x.dtype == np.int64 and x.shape == (N,)
        assert x.min() >= spec.min and x.max() <= spec.upper
        xf = x.astype(np.float64)
        m_hat, v_hat = xf.mean(), xf.var()
        se_mean = math.sqrt(var / N)
        fourth = float(np.mean((xf - m_hat) ** 4))
        se_var = math.sqrt(max(fourth - v_hat**2, 0.0) / N)
        assert abs(m_hat - mean) <= 5 * se_mean + (0.05 if rounding else 1e-9)
        assert abs(v_hat - var) <= 5 * se_var + (1 / 12 + 0.05 if rounding else 1e-9)


def test_geometric_moments_by_direct_summation() -> None:
    for p, lo, hi in [(0.02, 1, MAX_TOKENS), (0.3, 2, 9), (1.0, 1, 5), (0.5, 3, 3)]:
        k = np.arange(1, 4000, dtype=np.float64)
        pmf = (1 - p) ** (k - 1) * p
        y = np.clip(k, lo, hi)
        mean = float(np.sum(pmf * y))
        var = float(np.sum(pmf * y**2)) - mean**2
        g = Geometric(p, lo, hi)
        assert g.mean == pytest.approx(mean, rel=1e-12)
        assert g.variance == pytest.approx(var, rel=1e-9, abs=1e-12)


def test_unclipped_lognormal_moments_are_the_textbook_ones() -> None:
    spec = LognormalLength(median=1000, p90=3000)
    d = RoundedLognormal(spec.mu, spec.sigma, lo=1)
    s2 = spec.sigma**2
    assert d.mean == pytest.approx(math.exp(spec.mu + s2 / 2), rel=1e-9)
    assert d.variance == pytest.approx((math.exp(s2) - 1) * math.exp(2 * spec.mu + s2), rel=1e-6)


def test_lognormal_quantiles_follow_median_and_p90() -> None:
    x = length_distribution(LognormalLength(median=1000, p90=3000)).sample(
        np.random.default_rng(3), N
    )
    assert np.median(x) == pytest.approx(1000, rel=0.02)
    assert np.quantile(x, 0.9) == pytest.approx(3000, rel=0.03)


def test_exponential_mean_one_is_always_one() -> None:
    x = length_distribution(ExponentialLength(mean=1)).sample(np.random.default_rng(0), 1000)
    assert np.all(x == 1)


def test_empirical_draws_only_recorded_values_and_defaults_to_the_fields_column() -> None:
    trace = read_trace(CONV)
    spec = EmpiricalLength(path=CONV)
    as_input = length_distribution(spec, default_column="input")
    as_output = length_distribution(spec, default_column="output")
    assert as_input.mean == pytest.approx(trace.input_tokens.mean())
    assert as_output.mean == pytest.approx(trace.output_tokens.mean())
    x = as_output.sample(np.random.default_rng(1), 5000)
    assert np.isin(x, trace.output_tokens).all()


def test_empirical_path_is_relative_to_base_dir() -> None:
    d = length_distribution(
        EmpiricalLength(path="AzureLLMInferenceTrace_code.csv"), base_dir=TRACES
    )
    assert d.mean == pytest.approx(
        read_trace(TRACES / "AzureLLMInferenceTrace_code.csv").input_tokens.mean()
    )
