"""Confidence intervals of a difference of means over seeds: Welch's t, or paired t.

No SciPy: Student's t distribution is computed from the regularized
incomplete beta function (continued fraction, as in Numerical Recipes §6.4),
and its quantile by bisection; both are checked against published tables in
the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom (any real df > 0)."""
    if math.isinf(df):
        return NormalDist().cdf(t)
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if math.isinf(df) or df > 1e7:
        return NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Delta:
    """NEW − BASE: means, the difference and its confidence interval.

    ``low``/``high`` are ``None`` when the interval cannot be estimated (one
    seed on a side and no pairing): the difference is then taken as exact.
    """

    base_mean: float
    new_mean: float
    delta: float
    low: float | None
    high: float | None
    method: str  # "paired t, n=5" | "Welch t, 5 vs 5" | "exact, 1 vs 1"

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def _var(xs: list[float]) -> float:
    m = _mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def welch(base: list[float], new: list[float], confidence: float = 0.95) -> Delta:
    """Welch's t interval of mean(new) − mean(base), unequal variances.

    ``Δ ± t(1 − α/2, ν) · √(s_b²/n_b + s_n²/n_n)`` with the Welch–Satterthwaite
    degrees of freedom ``ν = (s_b²/n_b + s_n²/n_n)² / ((s_b²/n_b)²/(n_b−1) +
    (s_n²/n_n)²/(n_n−1))``.  With both variances zero the interval is the point.
    """
    mb, mn = _mean(base), _mean(new)
    d = mn - mb
    nb, nn = len(base), len(new)
    if nb < 2 or nn < 2:
        return Delta(mb, mn, d, None, None, f"exact, {nb} vs {nn}")
    vb, vn = _var(base) / nb, _var(new) / nn
    se = math.sqrt(vb + vn)
    if se == 0.0:
        return Delta(mb, mn, d, d, d, f"Welch t, {nb} vs {nn}")
    df = (vb + vn) ** 2 / (vb**2 / (nb - 1) + vn**2 / (nn - 1))
    half = t_ppf(0.5 + confidence / 2.0, df) * se
    return Delta(mb, mn, d, d - half, d + half, f"Welch t, {nb} vs {nn}")


def paired(base: list[float], new: list[float], confidence: float = 0.95) -> Delta:
    """Paired t interval of the mean difference, for runs on the same seeds.

    Same seed means the same generated traffic (common random numbers), so
    the per-seed differences ``d_i = new_i − base_i`` carry the effect of the
    change without the seed-to-seed noise: ``d̄ ± t(1 − α/2, n−1) · s_d/√n``.
    """
    if len(base) != len(new):
        raise ValueError("paired samples must have the same length")
    diffs = [n - b for b, n in zip(base, new, strict=True)]
    mb, mn, d = _mean(base), _mean(new), _mean(diffs)
    n = len(diffs)
    if n < 2:
        return Delta(mb, mn, d, d, d, "exact, same seed")
    se = math.sqrt(_var(diffs) / n)
    half = t_ppf(0.5 + confidence / 2.0, n - 1) * se if se > 0 else 0.0
    return Delta(mb, mn, d, d - half, d + half, f"paired t, n={n}")
