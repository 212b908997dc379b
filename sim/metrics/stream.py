"""Streaming tally monitors: request counts and latency percentiles in bounded memory.

A long run does not keep one row per request (unless asked to): the engine
hands each batch of finished requests to :class:`RequestStats`, which keeps
integer counters and one quantile sketch per latency metric.  Sketches are
DDSketch (Masson, Rim & Lee, VLDB 2019; the ``ddsketch`` package): values are
counted in logarithmic buckets ``(γ^(k−1), γ^k]`` with ``γ = (1 + α)/(1 − α)``,
so any quantile is returned within a relative error ``α`` of an order
statistic at its rank, and two sketches merge by adding their bucket counts.

Every quantity here is an integer count, so the statistics of a run do not
depend on how its requests were batched, nor on the order of batches: the
engine may harvest finished requests every hour or once at the end and the
summary is the same, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ddsketch.mapping import LogarithmicMapping
from numpy.typing import NDArray

# α: half the 1 % bound, so the sketch's own error leaves room for the
# gap between neighbouring order statistics at high percentiles.
RELATIVE_ACCURACY = 0.005

_LN2 = math.log(2.0)
OK = 1  # sim.engine.kernel.OK (kept here so metrics do not import the engine)


class Sketch:
    """A DDSketch fed whole arrays at a time.

    ``ddsketch.DDSketch.add`` takes one value per Python call, and its dense
    store walks its bins in Python for each quantile.  Here the bucket keys of
    an array are computed with numpy by ddsketch's own logarithmic mapping
    (``LogarithmicMapping.key``: ``ceil(log2(v) · m) + offset`` with
    ``m = ln 2 / ln γ``, ``log2(v)`` computed as ``ln(v) / ln 2`` as
    ``math.log(v, 2)`` does) and counted in one dense numpy array; a quantile
    is ``DDSketch.get_quantile_value``'s — the first key whose running count
    exceeds the rank ``q · (n − 1)`` (``DenseStore.key_at_rank``), found by a
    binary search on the cumulative counts, which add the same integers in the
    same order — mapped back to a value by the same mapping.  Values ``<= 0``
    count in the zero bucket.  The tests hold it to ddsketch value by value.
    """

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY):
        self.mapping = LogarithmicMapping(relative_accuracy)
        self._multiplier = float(self.mapping._multiplier)
        self._offset = float(self.mapping._offset)
        self._min_possible = float(self.mapping.min_possible)
        self.count = 0
        self.zero_count = 0
        self.min, self.max = math.inf, -math.inf
        # bucket counts: _counts[k] is key _base + k's
        self._base = 0
        self._counts: NDArray[np.int64] | None = None
        self._cumulative: NDArray[np.int64] | None = None  # running counts; None when stale

    def add(self, values: NDArray[np.float64]) -> None:
        """Count every finite value of ``values``."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return
        positive = v > self._min_possible
        pos = v[positive]
        if pos.size:
            log2 = np.log(pos) / _LN2
            keys = (np.ceil(log2 * self._multiplier) + self._offset).astype(np.int64)
            lo = int(keys.min())
            self._add_counts(lo, np.bincount(keys - lo))
            self.min = min(self.min, float(pos.min()))
            self.max = max(self.max, float(pos.max()))
        zeros = int(v.size - pos.size)
        if zeros:
            self.zero_count += zeros
            self.min, self.max = min(self.min, 0.0), max(self.max, 0.0)
        self.count += int(v.size)

    def _add_counts(self, lo: int, counts: NDArray[np.int64]) -> None:
        """Add ``counts[k]`` to key ``lo + k``'s count, growing the dense range as needed."""
        self._cumulative = None
        hi = lo + len(counts) - 1
        if self._counts is None:
            self._base, self._counts = lo, counts.astype(np.int64, copy=True)
            return
        if lo < self._base or hi >= self._base + len(self._counts):
            base = min(lo, self._base)
            grown = np.zeros(max(hi, self._base + len(self._counts) - 1) - base + 1, np.int64)
            grown[self._base - base : self._base - base + len(self._counts)] = self._counts
            self._base, self._counts = base, grown
        self._counts[lo - self._base : lo - self._base + len(counts)] += counts

    def merge(self, other: Sketch) -> None:
        """Add ``other``'s values to this sketch (``DDSketch.merge``: counts add up)."""
        if other._counts is not None:
            self._add_counts(other._base, other._counts)
        self.count += other.count
        self.zero_count += other.zero_count
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile (``0 <= q <= 1``); None if the sketch is empty."""
        if self.count == 0:
            return None
        # exact at the ends: the sketch keeps its minimum and maximum
        if q <= 0.0:
            return self.min
        if q >= 1.0:
            return self.max
        rank = q * (self.count - 1)
        if rank < self.zero_count or self._counts is None:
            return 0.0
        if self._cumulative is None:
            self._cumulative = np.cumsum(self._counts)
        # rank <= n - 1 < the last running count, so some key's count exceeds it
        i = int(np.searchsorted(self._cumulative, rank - self.zero_count, side="right"))
        value = float(self.mapping.value(self._base + i))
        return min(max(value, self.min), self.max)


@dataclass
class Finished:
    """A batch of finished requests, as aligned columns (one entry per request)."""

    dep: NDArray[np.int64]
    arrival: NDArray[np.float64]
    attempt_t: NDArray[np.float64]
    start_t: NDArray[np.float64]
    first_t: NDArray[np.float64]
    finish_t: NDArray[np.float64]
    status: NDArray[np.int64]
    attempts: NDArray[np.int64]
    inp: NDArray[np.int64]
    out: NDArray[np.int64]
    replica: NDArray[np.int64]
    index: NDArray[np.int64]  # position in the run's arrival order
    n503: NDArray[np.int64]  # attempts answered 503
    cached: NDArray[np.int64]  # prompt tokens served from the prefix cache

    def __len__(self) -> int:
        return int(self.dep.shape[0])

    def select(self, mask: NDArray[np.bool_]) -> Finished:
        return Finished(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})

    @staticmethod
    def concat(parts: list[Finished]) -> Finished:
        """One batch of ``parts``, in arrival order (by ``index``)."""
        names = list(Finished.__dataclass_fields__)
        if not parts:
            empty: dict[str, Any] = {
                n: np.empty(0, np.float64 if n in _FLOAT_FIELDS else np.int64) for n in names
            }
            return Finished(**empty)
        joined = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
        order = np.argsort(joined["index"], kind="stable")
        return Finished(**{n: a[order] for n, a in joined.items()})

    def latencies(self) -> dict[str, NDArray[np.float64]]:
        """Per-request latencies by name (docs/metrics.md); ``tpot`` NaN for 1 token.

        ``ttft`` and ``e2e`` run from the attempt that was served (``attempt_t``);
        ``user_ttft`` and ``user_e2e`` from the first attempt (``arrival``): what
        the user waited, retries, 503 backoff and cold starts included.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            tpot = np.where(self.out > 1, (self.finish_t - self.first_t) / (self.out - 1), np.nan)
        return {
            "ttft": self.first_t - self.attempt_t,
            "tpot": tpot,
            "e2e": self.finish_t - self.attempt_t,
            "user_ttft": self.first_t - self.arrival,
            "user_e2e": self.finish_t - self.arrival,
        }


_FLOAT_FIELDS = {"arrival", "attempt_t", "start_t", "first_t", "finish_t"}

#: (summary key, latency, percentile), in the order of the KPI registry
PERCENTILES = (
    ("user_ttft_p50_s", "user_ttft", 50), ("user_ttft_p90_s", "user_ttft", 90),
    ("user_ttft_p99_s", "user_ttft", 99),
    ("user_e2e_p50_s", "user_e2e", 50), ("user_e2e_p99_s", "user_e2e", 99),
    ("ttft_p50_s", "ttft", 50), ("ttft_p90_s", "ttft", 90), ("ttft_p99_s", "ttft", 99),
    ("tpot_p50_s", "tpot", 50), ("tpot_p99_s", "tpot", 99),
    ("e2e_p50_s", "e2e", 50), ("e2e_p99_s", "e2e", 99),
)
LATENCIES = ("ttft", "tpot", "e2e", "user_ttft", "user_e2e")
#: SLO objective -> the latency it is judged on (the user's view)
SLO_LATENCY = {"ttft_p99": "user_ttft", "tpot_p99": "tpot", "e2e_p99": "user_e2e"}


def slo_good(latency: dict[str, NDArray[np.float64]], slo: dict[str, float | None]
             ) -> NDArray[np.bool_]:
    """Which requests meet every objective set in ``slo`` (NaN, e.g. a 1-token TPOT, meets)."""
    good = np.ones(len(latency["ttft"]), dtype=bool)
    for key, metric in SLO_LATENCY.items():
        limit = slo.get(key)
        if limit is not None:
            values = latency[metric]
            good &= np.isnan(values) | (values <= limit)
    return good


@dataclass
class RequestStats:
    """Tally monitors of one group of requests (a deployment, or all of them).

    Counts follow ``docs/metrics.md``: latency sketches hold ``ok`` requests
    that arrived at or after ``warmup_s``; ``slo_good`` counts those within
    every objective of ``slo`` (keys ``ttft_p99``, ``tpot_p99``, ``e2e_p99``,
    judged on the user's view: see :data:`SLO_LATENCY`); ``statuses`` counts
    requests by status code.
    """

    warmup_s: float = 0.0
    slo: dict[str, float | None] = field(default_factory=dict)
    requests: int = 0
    ok: int = 0
    retries: int = 0
    with_503: int = 0  # requests with at least one attempt answered 503
    measured: int = 0
    slo_good: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    ok_input_tokens: int = 0
    ok_output_tokens: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    sketches: dict[str, Sketch] = field(
        default_factory=lambda: {name: Sketch() for name in LATENCIES})

    def add(self, batch: Finished) -> None:
        ok = batch.status == OK
        measured = batch.arrival >= self.warmup_s
        self.requests += len(batch)
        self.ok += int(ok.sum())
        self.retries += int(np.clip(batch.attempts - 1, 0, None).sum())
        self.with_503 += int((batch.n503 > 0).sum())
        self.measured += int(measured.sum())
        self.input_tokens += int(batch.inp.sum())
        self.output_tokens += int(batch.out.sum())
        self.ok_input_tokens += int(batch.inp[ok].sum())
        self.ok_output_tokens += int(batch.out[ok].sum())
        counts = np.bincount(batch.status)
        for code in np.flatnonzero(counts).tolist():
            self.statuses[code] = self.statuses.get(code, 0) + int(counts[code])
        sel = ok & measured
        latency = {name: x[sel] for name, x in batch.latencies().items()}
        self.slo_good += int(slo_good(latency, self.slo).sum())
        for name, sketch in self.sketches.items():
            sketch.add(latency[name])

    def merge(self, other: RequestStats) -> None:
        for name in ("requests", "ok", "retries", "with_503", "measured", "slo_good",
                     "input_tokens", "output_tokens", "ok_input_tokens", "ok_output_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, n in other.statuses.items():
            self.statuses[code] = self.statuses.get(code, 0) + n
        for name, sketch in self.sketches.items():
            sketch.merge(other.sketches[name])

    def count(self, status: int | None) -> int:
        """Requests that ended with status code ``status`` (0 for None: no such status)."""
        return 0 if status is None else self.statuses.get(status, 0)

    def kpis(self) -> dict[str, Any]:
        """The summary's request keys, percentiles from the sketches."""
        out: dict[str, Any] = {
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.requests - self.ok,
            "retries": self.retries,
            "requests_with_503": self.with_503,
        }
        for key, metric, p in PERCENTILES:
            out[key] = self.sketches[metric].quantile(p / 100.0)
        out["slo_attainment"] = self.slo_good / self.measured if self.measured else None
        return out
