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
    """NEW against BASE over seeds: the means, the effect and its confidence interval.

    On the ``difference`` scale the effect is ``mean(NEW) − mean(BASE)``; on the
    ``ratio`` scale (positive metrics) it is ``GM(NEW) / GM(BASE) − 1``, the
    relative change of the geometric means, with the interval computed on the
    logarithms.  ``low``/``high`` are ``None`` when no interval can be
    estimated (one seed on a side, unpaired): the effect is then taken as exact.
    """

    base_mean: float
    new_mean: float
    estimate: float
    low: float | None
    high: float | None
    method: str  # "paired t, n=5" | "Welch t on logs, 5 vs 5" | "exact, 1 vs 1"
    scale: str = "difference"

    @property
    def delta(self) -> float:
        """Difference of the arithmetic means, whatever the scale."""
        return self.new_mean - self.base_mean

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


def _mean(xs: list[float]) -> float:
    return math.fsum(xs) / len(xs)


def _var(xs: list[float]) -> float:
    m = _mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _interval(
    base: list[float], new: list[float], confidence: float, log: bool, pair: bool
) -> Delta:
    mb, mn = _mean(base), _mean(new)
    if log:
        if min(base + new) <= 0:
            raise ValueError("the ratio scale needs positive values")
        xb, xn = [math.log(x) for x in base], [math.log(x) for x in new]
    else:
        xb, xn = base, new
    on = " on logs" if log else ""
    nb, nn = len(xb), len(xn)
    half: float | None
    if pair:
        if nb != nn:
            raise ValueError("paired samples must have the same length")
        diffs = [n - b for b, n in zip(xb, xn, strict=True)]
        est = _mean(diffs)
        if nb < 2:
            half, method = 0.0, "exact, same seed"
        else:
            se = math.sqrt(_var(diffs) / nb)
            half = t_ppf(0.5 + confidence / 2.0, nb - 1) * se if se > 0 else 0.0
            method = f"paired t{on}, n={nb}"
    else:
        est = _mean(xn) - _mean(xb)
        method = f"Welch t{on}, {nb} vs {nn}"
        if nb < 2 or nn < 2:
            half, method = None, f"exact, {nb} vs {nn}"
        else:
            vb, vn = _var(xb) / nb, _var(xn) / nn
            se = math.sqrt(vb + vn)
            if se == 0.0:
                half = 0.0
            else:
                df = (vb + vn) ** 2 / (vb**2 / (nb - 1) + vn**2 / (nn - 1))
                half = t_ppf(0.5 + confidence / 2.0, df) * se
    low = None if half is None else est - half
    high = None if half is None else est + half
    if log:
        return Delta(mb, mn, math.expm1(est),
                     None if low is None else math.expm1(low),
                     None if high is None else math.expm1(high), method, "ratio")
    return Delta(mb, mn, est, low, high, method, "difference")


def welch(base: list[float], new: list[float], confidence: float = 0.95,
          log: bool = False) -> Delta:
    """Welch's t interval for samples from different seeds (unequal variances).

    ``Δ ± t(1 − α/2, ν) · √(s_b²/n_b + s_n²/n_n)``, with the Welch–Satterthwaite
    degrees of freedom ``ν = (s_b²/n_b + s_n²/n_n)² / ((s_b²/n_b)²/(n_b−1) +
    (s_n²/n_n)²/(n_n−1))``.  With ``log`` the samples are the logarithms and
    the result is a ratio of geometric means.  Both variances zero: the point.
    """
    return _interval(base, new, confidence, log, pair=False)


def paired(base: list[float], new: list[float], confidence: float = 0.95,
           log: bool = False) -> Delta:
    """Paired t interval, for runs on the same seeds (``base[i]`` and ``new[i]``).

    Same seed means the same generated traffic (common random numbers), so the
    per-seed differences ``d_i = new_i − base_i`` (of logarithms with ``log``)
    carry the effect of the change without the seed-to-seed noise:
    ``d̄ ± t(1 − α/2, n−1) · s_d/√n``.
    """
    return _interval(base, new, confidence, log, pair=True)
