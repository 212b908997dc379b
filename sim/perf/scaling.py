"""Universal Scalability Law: throughput of one replica spread over N GPUs.

``C(N) = N / (1 + σ(N−1) + κN(N−1))`` (Gunther, *Guerrilla Capacity
Planning*, 2007): σ is contention (the serial share: all-reduce latency,
kernels that do not shrink with N), κ coherency (cost growing with every pair
of GPUs).  ``X(N) = λ·C(N)`` with λ the one-GPU throughput.

:meth:`ScalingModel.fit` uses Gunther's linearisation: with λ known (a point
at N = 1), ``Nλ/X − 1 = σ(N−1) + κN(N−1)`` is linear in (σ, κ); without it,
``N/X = a + b(N−1) + cN(N−1)`` is linear in (a, b, c) = (1, σ, κ)/λ.  Both are
solved by least squares with σ, κ ≥ 0 (a sub-linear law; super-linear data
gives σ = κ = 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sim.errors import InputError

FloatArray = npt.NDArray[np.float64]


class ScalingModel:
    """USL coefficients ``sigma`` (σ), ``kappa`` (κ) and one-GPU throughput ``lam`` (λ)."""

    def __init__(self, sigma: float = 0.0, kappa: float = 0.0, lam: float = 1.0):
        if sigma < 0 or kappa < 0:
            raise InputError(f"USL coefficients must be ≥ 0 (sigma={sigma}, kappa={kappa})")
        if not lam > 0:
            raise InputError(f"USL one-GPU throughput must be > 0 (got {lam})")
        self.sigma = float(sigma)
        self.kappa = float(kappa)
        self.lam = float(lam)

    def capacity(self, n: float) -> float:
        """C(n): how many one-GPU equivalents n GPUs deliver."""
        return float(n / (1.0 + self.sigma * (n - 1) + self.kappa * n * (n - 1)))

    def predict(self, n: float | Sequence[float] | FloatArray) -> float | FloatArray:
        """Throughput λ·C(n) at n GPUs (a float, or an array for an array of n)."""
        arr = np.asarray(n, dtype=float)
        out = self.lam * arr / (1.0 + self.sigma * (arr - 1) + self.kappa * arr * (arr - 1))
        return float(out) if out.ndim == 0 else out

    def peak_gpus(self) -> float:
        """N at which throughput peaks, sqrt((1−σ)/κ) (infinite when κ = 0)."""
        if self.kappa == 0:
            return float("inf")
        return float(np.sqrt(max(1.0 - self.sigma, 0.0) / self.kappa))

    def __repr__(self) -> str:
        return f"ScalingModel(sigma={self.sigma:.4g}, kappa={self.kappa:.4g}, lam={self.lam:.6g})"

    @classmethod
    def fit(cls, gpus: Sequence[float], tokens_per_s: Sequence[float]) -> ScalingModel:
        """Fit σ, κ (and λ when no point has N = 1) to measured (N, tokens/s) points."""
        n = np.asarray(gpus, dtype=float)
        x = np.asarray(tokens_per_s, dtype=float)
        if n.shape != x.shape or n.ndim != 1:
            raise InputError("gpus and tokens_per_s must be two lists of the same length")
        if len(n) < 2 or len(np.unique(n)) < 2:
            raise InputError("fitting the USL needs points at two or more GPU counts")
        if np.any(n < 1) or np.any(x <= 0) or not np.all(np.isfinite(x)):
            raise InputError("GPU counts must be ≥ 1 and throughputs positive and finite")
        if np.any(n == 1):
            lam = float(np.mean(x[n == 1]))
            keep = n > 1
            design = np.column_stack([n[keep] - 1, n[keep] * (n[keep] - 1)])
            sigma, kappa = _nonneg_lstsq(design, n[keep] * lam / x[keep] - 1.0)
            return cls(sigma, kappa, lam)
        # N/X = a + b(N−1) + cN(N−1); rows weighted by X/N so residuals are relative.
        design = np.column_stack([np.ones_like(n), n - 1, n * (n - 1)])
        weight = x / n
        a, b, c = _nonneg_lstsq(design * weight[:, None], np.ones_like(n), free=(0,))
        if not a > 0:
            raise InputError("the points do not follow a scalability law (intercept ≤ 0)")
        return cls(b / a, c / a, 1.0 / a)


def _nonneg_lstsq(
    design: FloatArray, target: FloatArray, free: tuple[int, ...] = ()
) -> tuple[float, ...]:
    """Least squares with every coefficient not in ``free`` constrained to ≥ 0.

    Few unknowns (≤ 3), so every active set is tried; among feasible solutions
    the smallest residual wins, ties going to the one with fewer coefficients
    (a two-point fit gives σ alone: Amdahl's law).
    """
    k = design.shape[1]
    bounded = [i for i in range(k) if i not in free]
    best: tuple[float, int, FloatArray] | None = None
    for size in range(len(bounded) + 1):
        for zeroed in itertools.combinations(bounded[::-1], size):  # κ zeroed before σ
            cols = [i for i in range(k) if i not in zeroed]
            coef = np.zeros(k)
            if cols:
                sol, *_ = np.linalg.lstsq(design[:, cols], target, rcond=None)
                coef[cols] = sol
            if any(coef[i] < -1e-12 for i in bounded):
                continue
            coef = np.where(np.isin(np.arange(k), bounded), np.maximum(coef, 0.0), coef)
            resid = float(np.sum((design @ coef - target) ** 2))
            rank = len(cols)
            tol = 1e-12 * max(1.0, float(np.sum(target**2)))
            tie = abs(resid - best[0]) <= tol if best else False
            if best is None or resid < best[0] - tol or (tie and rank < best[1]):
                best = (resid, rank, coef)
    assert best is not None
    return tuple(float(v) for v in best[2])
