"""Student's t quantiles against published tables; Welch and paired intervals by hand and by
coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.compare.stats import betainc, paired, t_cdf, t_ppf, welch

# Two-sided 95 % and 99 % critical values (any statistics textbook's t table).
T_TABLE = [
    (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776),
    (0.975, 5, 2.571), (0.975, 9, 2.262), (0.975, 10, 2.228), (0.975, 20, 2.086),
    (0.975, 30, 2.042), (0.975, 120, 1.980), (0.995, 4, 4.604), (0.995, 10, 3.169),
    (0.95, 5, 2.015), (0.90, 8, 1.397),
]


@pytest.mark.parametrize(("p", "df", "expected"), T_TABLE)
def test_t_quantile_matches_the_table(p, df, expected):
    assert t_ppf(p, df) == pytest.approx(expected, abs=5e-4)
    assert t_ppf(1 - p, df) == pytest.approx(-expected, abs=5e-4)
    assert t_cdf(t_ppf(p, df), df) == pytest.approx(p, abs=1e-10)


def test_t_quantile_limits_and_fractional_df():
    assert t_ppf(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert t_ppf(0.975, 1e6) == pytest.approx(1.959964, abs=1e-4)
    # Monotone between integer degrees of freedom (Welch gives fractional ones).
    assert t_ppf(0.975, 8) < t_ppf(0.975, 7.5) < t_ppf(0.975, 7)
    assert t_ppf(0.5, 3) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        t_ppf(1.0, 3)


def test_incomplete_beta_closed_forms():
    # I_x(1, 1) = x;  I_x(a, 1) = x^a;  I_x(1, b) = 1 - (1 - x)^b.
    for x in (0.1, 0.5, 0.9):
        assert betainc(1, 1, x) == pytest.approx(x)
        assert betainc(2.5, 1, x) == pytest.approx(x**2.5)
        assert betainc(1, 3, x) == pytest.approx(1 - (1 - x) ** 3)
    # t with 1 df is Cauchy: F(t) = 1/2 + atan(t)/π.
    for t in (-3.0, 0.5, 2.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi)


def test_welch_by_hand():
    base, new = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0]
    d = welch(base, new)
    # s_b² = 5/3, s_n² = 20/3; se² = (5/3)/4 + (20/3)/4 = 25/12;
    # ν = (25/12)² / (((5/12)² + (20/12)²) / 3) = 625·3 / (25 + 400) = 4.4118
    se = math.sqrt(25 / 12)
    nu = 625 * 3 / 425
    assert d.delta == 2.5 and d.base_mean == 2.5 and d.new_mean == 5.0
    half = t_ppf(0.975, nu) * se
    assert d.low == pytest.approx(2.5 - half) and d.high == pytest.approx(2.5 + half)
    assert 2.6 < t_ppf(0.975, nu) < 2.78  # between t(5) = 2.571 and t(4) = 2.776
    assert d.method == "Welch t, 4 vs 4"


def test_paired_by_hand_and_degenerate_cases():
    d = paired([10.0, 20.0, 30.0], [11.0, 23.0, 32.0])
    # differences 1, 3, 2: mean 2, s = 1, se = 1/√3, t(0.975, 2) = 4.303
    assert d.delta == pytest.approx(2.0)
    assert d.high - d.delta == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    same = paired([1.0, 2.0], [1.0, 2.0])
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0)
    one = welch([1.0], [3.0])
    assert one.delta == 2.0 and not one.has_interval and one.method == "exact, 1 vs 1"
    flat = welch([2.0, 2.0, 2.0], [3.0, 3.0])
    assert (flat.low, flat.high) == (1.0, 1.0)


@pytest.mark.parametrize("test", ["welch", "paired"])
def test_intervals_cover_the_true_difference_95_percent_of_the_time(test):
    rng = np.random.default_rng(20261127)
    trials, covered = 4000, 0
    for _ in range(trials):
        if test == "welch":  # unequal sizes and variances: where Welch matters
            base = rng.normal(10.0, 1.0, 4)
            new = rng.normal(10.5, 3.0, 6)
            d = welch(list(base), list(new))
        else:
            noise = rng.normal(0.0, 2.0, 5)  # shared by both sides: common random numbers
            base = 10.0 + noise
            new = 10.5 + noise + rng.normal(0.0, 0.5, 5)
            d = paired(list(base), list(new))
        covered += d.low <= 0.5 <= d.high
    # Binomial(4000, 0.95): standard deviation 0.34 %; allow ±1.2 %.
    assert abs(covered / trials - 0.95) < 0.012


def test_log_scale_is_the_ratio_of_geometric_means():
    # Every seed exactly doubles: +100 %, with no spread.
    d = paired([1.0, 2.0, 4.0], [2.0, 4.0, 8.0], log=True)
    assert d.scale == "ratio" and d.method == "paired t on logs, n=3"
    assert d.estimate == pytest.approx(1.0) and d.low == pytest.approx(1.0)
    assert d.delta == pytest.approx(14 / 3 - 7 / 3)  # the arithmetic means are kept
    base, new = [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 7.0, 9.0]
    on_logs = welch([math.log(x) for x in base], [math.log(x) for x in new])
    ratio = welch(base, new, log=True)
    assert ratio.estimate == pytest.approx(math.expm1(on_logs.estimate))
    assert ratio.low == pytest.approx(math.expm1(on_logs.low))
    assert ratio.high == pytest.approx(math.expm1(on_logs.high))
    with pytest.raises(ValueError, match="positive"):
        welch([0.0, 1.0], [1.0, 2.0], log=True)
