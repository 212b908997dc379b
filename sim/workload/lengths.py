"""Token-length distributions: samplers that know their mean and variance.

:func:`length_distribution` turns a length spec into a sampler.  Every sampler
draws int64 token counts clipped to ``[min, max]`` and exposes ``.mean`` and
``.variance`` of what it draws (the lognormal's are those of the clipped
continuous variable before rounding to integers; see ``docs/workload.md``),
so one generic test checks them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from sim.workload.spec import (
    EmpiricalLength,
    ExponentialLength,
    FixedLength,
    LengthSpec,
    LognormalLength,
)
from sim.workload.traces import load_trace, token_column

Column = Literal["input", "output"]


class LengthDistribution(Protocol):
    """A sampler of token counts (integers >= 1)."""

    @property
    def mean(self) -> float: ...

    @property
    def variance(self) -> float: ...

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]: ...


@dataclass(frozen=True)
class Fixed:
    """Always ``value`` tokens."""

    value: int

    @property
    def mean(self) -> float:
        return float(self.value)

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        return np.full(n, self.value, dtype=np.int64)


@dataclass(frozen=True)
class Geometric:
    """``clip(K, lo, hi)`` with K geometric on {1, 2, ...}, ``P(K = k) = (1-p)^(k-1) p``.

    The integer analogue of the exponential (memoryless, mean ``1/p``).
    """

    p: float
    lo: int = 1
    hi: int = 2**53

    def _sums(self) -> tuple[float, float]:
        # With q = 1 - p and P(K >= k) = q^(k-1):
        #   E[Y]   = lo   + sum_{j=lo}^{hi-1} q^j
        #   E[Y^2] = lo^2 + sum_{j=lo}^{hi-1} (2j + 1) q^j
        p = self.p
        log_q = math.log1p(-p) if p < 1 else -math.inf

        def q_pow(j: int) -> float:
            return math.exp(j * log_q) if log_q > -math.inf else 0.0

        def tail(m: int) -> float:  # sum_{j>=m} j q^j
            return q_pow(m) * (m * p + (1 - p)) / (p * p)

        s0 = (q_pow(self.lo) - q_pow(self.hi)) / p
        s1 = tail(self.lo) - tail(self.hi)
        return self.lo + s0, self.lo**2 + 2 * s1 + s0

    @property
    def mean(self) -> float:
        return self._sums()[0]

    @property
    def variance(self) -> float:
        m1, m2 = self._sums()
        return max(m2 - m1 * m1, 0.0)

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        return np.clip(rng.geometric(self.p, size=n), self.lo, self.hi).astype(np.int64)


def _phi(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@dataclass(frozen=True)
class RoundedLognormal:
    """``round(clip(X, lo, hi))`` with ``ln X ~ Normal(mu, sigma^2)``.

    ``.mean`` and ``.variance`` are those of ``clip(X, lo, hi)`` (before
    rounding), from the lognormal's partial moments
    ``E[X^k; X < c] = exp(k mu + k^2 sigma^2 / 2) Phi((ln c - mu - k sigma^2) / sigma)``.
    Rounding to the nearest integer moves the mean by much less than 0.5 token
    and adds about 1/12 to the variance.
    """

    mu: float
    sigma: float
    lo: int = 1
    hi: int = 2**53

    def _moment(self, k: int) -> float:
        mu, s = self.mu, self.sigma
        a, b = math.log(self.lo), math.log(self.hi)
        below = _phi((a - mu) / s)
        above = _phi(-(b - mu) / s)
        middle = math.exp(k * mu + k * k * s * s / 2) * (
            _phi((b - mu - k * s * s) / s) - _phi((a - mu - k * s * s) / s)
        )
        return self.lo**k * below + middle + float(self.hi) ** k * above

    @property
    def mean(self) -> float:
        return self._moment(1)

    @property
    def variance(self) -> float:
        m1 = self._moment(1)
        return max(self._moment(2) - m1 * m1, 0.0)

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        x = rng.lognormal(self.mu, self.sigma, size=n)
        return np.rint(np.clip(x, self.lo, self.hi)).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Empirical:
    """Uniform draws, with replacement, from recorded token counts (already clipped)."""

    values: NDArray[np.int64]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def sample(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        return self.values[rng.integers(0, self.values.size, size=n)]


@singledispatch
def length_distribution(
    spec: LengthSpec,
    *,
    default_column: Column = "input",
    base_dir: Path | None = None,
) -> LengthDistribution:
    """The sampler described by ``spec``.

    ``default_column`` is the trace column an empirical spec without
    ``column`` uses (the field's own: ``"output"`` for ``output_tokens``);
    ``base_dir`` resolves its relative path.
    """
    raise TypeError(f"not a length spec: {spec!r}")


@length_distribution.register
def _fixed(spec: FixedLength, **_: object) -> LengthDistribution:
    return Fixed(min(max(spec.value, spec.min), spec.upper))


@length_distribution.register
def _exponential(spec: ExponentialLength, **_: object) -> LengthDistribution:
    return Geometric(1.0 / spec.mean, spec.min, spec.upper)


@length_distribution.register
def _lognormal(spec: LognormalLength, **_: object) -> LengthDistribution:
    return RoundedLognormal(spec.mu, spec.sigma, spec.min, spec.upper)


@length_distribution.register
def _empirical(
    spec: EmpiricalLength,
    *,
    default_column: Column = "input",
    base_dir: Path | None = None,
) -> LengthDistribution:
    trace = load_trace(spec.path, base_dir)
    values = token_column(trace, spec.column or default_column)
    return Empirical(np.clip(values, spec.min, spec.upper))
