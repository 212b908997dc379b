"""Arrival processes: exact, vectorised sampling of arrival times.

Every process except trace replay is a (possibly non-homogeneous, possibly
doubly stochastic) Poisson process.  Its :class:`RatePlan` splits ``[0, T)``
into segments and gives, on each, an upper bound of the intensity and, when
the intensity is not constant on the segment, the intensity itself.
:func:`sample_poisson` then draws an exact sample:

1. candidates: a Poisson process with the piecewise-constant bound as
   intensity, drawn by the time change ``t = Λ⁻¹(s)`` of a unit-rate process
   ``s`` (given a block's count, its points are sorted uniforms, drawn as
   normalised cumulative sums of exponentials, so no sort is needed);
2. thinning (Lewis & Shedler 1979): a candidate at ``t`` in segment ``k`` is
   kept with probability ``λ(t) / bound[k]``.

No gap is ever clipped or rounded; memory stays bounded by working in blocks
of about ``_BLOCK`` candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import singledispatch

import numpy as np
from numpy.typing import NDArray

from sim.errors import InputError
from sim.workload.base import Workload
from sim.workload.spec import (
    ArrivalsSpec,
    BurstArrivals,
    DiurnalArrivals,
    PoissonArrivals,
    RampArrivals,
    SpikesArrivals,
    TraceArrivals,
)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

HOUR = 3600.0
DAY = 86400.0

# Expected candidates per block: bounds memory (a few arrays of this many float64,
# small enough to stay in cache).
_BLOCK = float(1 << 20)
# Segments per period of a smooth profile (5 min for 24 h), and segments of a
# ramp: thinning then keeps all but a fraction of a percent of candidates.
_SEGMENTS_PER_PERIOD = 288
_RAMP_SEGMENTS = 1024
# Relative slack on bounds of smooth intensities, so float rounding in the
# bound never puts it below the intensity.
_SLACK = 1e-9


@dataclass(frozen=True, eq=False)
class RatePlan:
    """Intensity on ``[edges[0], edges[-1])``.

    On segment ``k`` (``edges[k] <= t < edges[k+1]``) the intensity is at most
    ``bound[k]``; if ``rate`` is None it equals ``bound[k]`` (piecewise
    constant), else it is ``rate(t)``.
    """

    edges: FloatArray
    bound: FloatArray
    rate: Callable[[FloatArray], FloatArray] | None = None


def sample_poisson(plan: RatePlan, rng: np.random.Generator) -> FloatArray:
    """Sorted arrival times of the Poisson process with intensity ``plan``."""
    edges, bound = plan.edges, plan.bound
    width = np.diff(edges)
    mass = bound * width
    # Split heavy segments so that each holds at most _BLOCK expected candidates.
    parts = np.maximum(np.ceil(mass / _BLOCK), 1).astype(np.int64)
    if parts.size and parts.max() > 1:
        seg = np.repeat(np.arange(width.size), parts)
        j = np.arange(seg.size) - np.repeat(np.cumsum(parts) - parts, parts)
        lo = edges[seg] + width[seg] * (j / parts[seg])
        hi_inner = edges[seg] + width[seg] * ((j + 1) / parts[seg])
        hi = np.where(j + 1 == parts[seg], edges[seg + 1], hi_inner)
        bnd = bound[seg]
    else:
        lo, hi, bnd = edges[:-1], edges[1:], bound
    keep = (bnd > 0) & (hi > lo)
    lo, hi, bnd = lo[keep], hi[keep], bnd[keep]
    if lo.size == 0:
        return np.empty(0)
    mass = bnd * (hi - lo)
    cum_end = np.cumsum(mass)
    cum_start = np.concatenate(([0.0], cum_end[:-1]))
    block_of = np.floor(cum_start / _BLOCK).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], block_of[1:] != block_of[:-1])))
    stops = np.concatenate((starts[1:], [lo.size]))
    top = np.nextafter(hi, -np.inf)  # arrivals stay strictly inside their segment
    out: list[FloatArray] = []
    for s0, s1 in zip(starts.tolist(), stops.tolist(), strict=True):
        first, last = cum_start[s0], cum_end[s1 - 1]
        n = int(rng.poisson(last - first))
        if n == 0:
            continue
        c = np.cumsum(rng.standard_exponential(n + 1))
        if s1 - s0 == 1:  # one segment: a homogeneous block, no lookup needed
            k: IntArray | int = s0
            t = lo[s0] + (hi[s0] - lo[s0]) * (c[:n] / c[n])
        else:
            s = first + (last - first) * (c[:n] / c[n])
            seg = np.minimum(np.searchsorted(cum_end[s0:s1], s, side="right") + s0, s1 - 1)
            t = lo[seg] + (s - cum_start[seg]) / bnd[seg]
            k = seg
        t = np.minimum(np.maximum(t, lo[k]), top[k])
        if plan.rate is not None:
            lam = plan.rate(t)
            if np.any(lam > bnd[k]):
                raise RuntimeError("internal error: intensity above its thinning bound")
            t = t[rng.random(n) * bnd[k] < lam]
        out.append(t)
    return np.concatenate(out) if out else np.empty(0)


# --------------------------------------------------------------------------- rate plans


@singledispatch
def rate_plan(spec: ArrivalsSpec, duration_s: float, rng: np.random.Generator) -> RatePlan:
    """The intensity of ``spec`` over ``[0, duration_s)``.

    ``rng`` is used only by doubly stochastic processes (``burst``), whose
    intensity is itself random.
    """
    raise TypeError(f"no rate plan for {type(spec).__name__}")


def _constant(duration_s: float, rps: float) -> RatePlan:
    return RatePlan(np.array([0.0, duration_s]), np.array([rps]))


@rate_plan.register
def _poisson(spec: PoissonArrivals, duration_s: float, rng: np.random.Generator) -> RatePlan:
    return _constant(duration_s, spec.rps)


def _normalised(weights: list[float] | None, size: int) -> FloatArray:
    if weights is None:
        return np.ones(size)
    w = np.asarray(weights, dtype=np.float64)
    return w / w.mean()


def raised_cosine_power(peak_to_mean: float) -> float:
    """The exponent ``p >= 1`` with ``peak/mean = r`` for ``((1 + cos θ) / 2)^p``.

    The mean of ``((1 + cos θ) / 2)^p = cos^(2p)(θ/2)`` over a period is
    ``Γ(p + 1/2) / (√π Γ(p + 1))`` and its peak is 1, so ``p`` solves
    ``√π Γ(p + 1) / Γ(p + 1/2) = r``; the left side increases from 2 at
    ``p = 1`` like ``√(π p)``.  Solved by bisection in log space.
    """
    if peak_to_mean <= 2:
        raise ValueError("the raised cosine is used for peak_to_mean > 2 only")
    target = math.log(peak_to_mean) - 0.5 * math.log(math.pi)

    def excess(p: float) -> float:
        return math.lgamma(p + 1) - math.lgamma(p + 0.5) - target

    lo, hi = 1.0, max(2.0, peak_to_mean**2)
    while excess(hi) < 0:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if excess(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * hi:
            break
    return 0.5 * (lo + hi)


def daily_shape(spec: DiurnalArrivals) -> Callable[[FloatArray], FloatArray]:
    """The sinusoidal profile ``s(t)`` of ``spec`` (mean 1 over a period, peak ``r``)."""
    r = spec.peak_to_mean
    period, peak_at = spec.period, spec.peak_at
    if r is None or period is None or peak_at is None:
        raise ValueError("daily_shape needs a sinusoidal diurnal spec")
    omega = 2 * math.pi / period
    if r <= 2:
        amplitude = r - 1

        def shape(t: FloatArray) -> FloatArray:
            return 1 + amplitude * np.cos(omega * (t - peak_at))

        return shape
    power = raised_cosine_power(r)

    def sharp(t: FloatArray) -> FloatArray:
        return r * (0.5 * (1 + np.cos(omega * (t - peak_at)))) ** power

    return sharp


@rate_plan.register
def _diurnal(spec: DiurnalArrivals, duration_s: float, rng: np.random.Generator) -> RatePlan:
    weekly = _normalised(spec.weekly_weights, 7)
    if spec.hourly_weights is not None:
        hourly = _normalised(spec.hourly_weights, 24)
        k = np.arange(math.ceil(duration_s / HOUR))
        edges = np.append(k * HOUR, duration_s)  # the last hour may be partial
        bound = spec.mean_rps * hourly[k % 24] * weekly[(k // 24) % 7]
        return RatePlan(edges, bound)

    period = spec.period
    peak_at = spec.peak_at
    if period is None or peak_at is None:  # filled in by the spec's validator
        raise ValueError("sinusoidal diurnal spec without period or peak_at")
    shape = daily_shape(spec)
    grid = [np.arange(0.0, duration_s, period / _SEGMENTS_PER_PERIOD)]
    if spec.weekly_weights is not None:
        grid.append(np.arange(0.0, duration_s, DAY))
    edges = np.unique(np.concatenate([*grid, [duration_s]]))
    a, b = edges[:-1], edges[1:]
    next_peak = peak_at + np.ceil((a - peak_at) / period) * period
    peak = float(spec.peak_to_mean or 1.0)
    shape_bound = np.where(next_peak <= b, peak, np.maximum(shape(a), shape(b)))
    day_weight = weekly[(np.floor(a / DAY).astype(np.int64)) % 7]
    mean_rps = spec.mean_rps
    bound = mean_rps * shape_bound * day_weight * (1 + _SLACK)

    def rate(t: FloatArray) -> FloatArray:
        return mean_rps * shape(t) * weekly[np.floor(t / DAY).astype(np.int64) % 7]

    return RatePlan(edges, bound, rate)


@rate_plan.register
def _ramp(spec: RampArrivals, duration_s: float, rng: np.random.Generator) -> RatePlan:
    length = spec.ramp_duration if spec.ramp_duration is not None else duration_s
    start, end = spec.start_rps, spec.end_rps
    if length <= 0:  # an empty simulation with the default ramp length
        return _constant(duration_s, start)

    def rate(t: FloatArray) -> FloatArray:
        return start + (end - start) * np.minimum(t / length, 1.0)

    edges = np.linspace(0.0, min(length, duration_s), _RAMP_SEGMENTS + 1)
    if length < duration_s:
        edges = np.append(edges, duration_s)
    bound = np.maximum(rate(edges[:-1]), rate(edges[1:])) * (1 + _SLACK)
    return RatePlan(edges, bound, rate)


@rate_plan.register
def _burst(spec: BurstArrivals, duration_s: float, rng: np.random.Generator) -> RatePlan:
    """The MMPP-2's state path (alternating exponential sojourns) as a rate plan."""
    means = np.array([spec.mean_gap, spec.mean_burst])
    rates = np.array([spec.base_rps, spec.burst_rps])
    state = int(rng.random() < spec.mean_burst / (spec.mean_burst + spec.mean_gap))
    cycle = spec.mean_gap + spec.mean_burst
    switches: list[FloatArray] = [np.empty(0)]
    clock = 0.0
    while clock < duration_s:
        pairs = math.ceil(1.1 * (duration_s - clock) / cycle) + 8
        order = np.array([state, 1 - state])
        sojourn = rng.standard_exponential((pairs, 2)) * means[order]
        ends = clock + np.cumsum(sojourn.ravel())
        switches.append(ends)
        clock = float(ends[-1])
    ends = np.concatenate(switches)
    ends = ends[: np.searchsorted(ends, duration_s, side="left") + 1]
    if ends.size == 0:  # an empty simulation
        return _constant(duration_s, float(rates[state]))
    edges = np.concatenate(([0.0], ends[:-1], [duration_s]))
    states = (state + np.arange(ends.size)) % 2
    return RatePlan(edges, rates[states])


@rate_plan.register
def _spikes(spec: SpikesArrivals, duration_s: float, rng: np.random.Generator) -> RatePlan:
    edges = [0.0]
    bound: list[float] = []
    for spike in sorted(spec.spikes, key=lambda s: s.at):
        start = min(spike.at, duration_s)
        end = min(spike.at + spike.duration, duration_s)
        if start > edges[-1]:
            edges.append(start)
            bound.append(spec.base_rps)
        if end > start:
            edges.append(end)
            bound.append(spike.rps)
    if duration_s > edges[-1]:
        edges.append(duration_s)
        bound.append(spec.base_rps)
    return RatePlan(np.array(edges), np.array(bound))


# --------------------------------------------------------------------------- traces


def trace_period(trace: Workload) -> float:
    """The length of one pass of a trace when it is looped or shifted: its span
    plus one mean gap, ``span * n / (n - 1)``, so the last request of a pass and
    the first of the next are one mean gap apart."""
    n = len(trace)
    span = float(trace.arrival_s[-1] - trace.arrival_s[0]) if n else 0.0
    if n < 2 or span <= 0:
        raise ValueError("a trace needs two distinct timestamps to be looped or rate-scaled up")
    return span * n / (n - 1)


def check_replay(trace: Workload, spec: TraceArrivals, file: str) -> None:
    """InputError if ``spec`` cannot replay ``trace`` (looping or copying a point)."""
    if spec.loop or spec.rate_scale > 1:
        try:
            trace_period(trace)
        except ValueError as e:
            raise InputError(str(e), file=file) from None


class ReplayPlan:
    """Replay of a trace over ``[0, duration_s)``, served one window at a time.

    With ``r = rate_scale``, copies ``j = 0 .. ceil(r) - 1`` of the
    (time-scaled, looped) trace are superposed: copy 0 as recorded, copy
    ``j >= 1`` circularly shifted by an independent uniform offset in
    ``[0, P)`` (``P`` = :func:`trace_period`), drawn here once from ``rng``;
    each request of copy ``j`` is kept with probability ``min(1, r - j)``,
    decided by the generator of the window it falls in.
    """

    def __init__(self, trace: Workload, spec: TraceArrivals, duration_s: float,
                 rng: np.random.Generator):
        base = trace.arrival_s * spec.time_scale
        self.copies = math.ceil(spec.rate_scale)
        self.rate_scale = spec.rate_scale
        self.duration = duration_s
        period = trace_period(trace) * spec.time_scale if spec.loop or self.copies > 1 else math.inf
        self.period = period
        self.passes = max(math.ceil(duration_s / period), 1) if spec.loop else 1
        # each copy's arrival times over one pass, in the trace's row order
        self.pass_times: list[FloatArray] = []
        for j in range(self.copies):
            if j == 0:
                t = base
            else:
                t = base + rng.uniform(0.0, period)
                t = np.where(t >= period, t - period, t)
            self.pass_times.append(t)

    def window(self, a: float, b: float, rng: np.random.Generator
               ) -> tuple[FloatArray, IntArray, IntArray]:
        """Arrival times in ``[a, b)`` and, for each, its row in the trace and the number
        of its copy and pass (``copy · passes + pass``)."""
        b = min(b, self.duration)
        times: list[FloatArray] = []
        rows: list[IntArray] = []
        tags: list[IntArray] = []
        for j, one_pass in enumerate(self.pass_times):
            first, last = 0, self.passes
            if math.isfinite(self.period):
                first = max(math.floor(a / self.period) - 1, 0)
                last = min(math.ceil(b / self.period) + 1, self.passes)
            for p in range(first, last):
                t = one_pass + self.period * p if p else one_pass
                keep = (t >= a) & (t < b)
                idx = np.flatnonzero(keep)
                share = self.rate_scale - j
                if share < 1:
                    idx = idx[rng.random(idx.size) < share]
                times.append(t[idx])
                rows.append(idx.astype(np.int64))
                tags.append(np.full(idx.size, j * self.passes + p, np.int64))
        all_t = np.concatenate(times) if times else np.empty(0)
        all_rows = np.concatenate(rows) if rows else np.empty(0, np.int64)
        all_tags = np.concatenate(tags) if tags else np.empty(0, np.int64)
        order = np.argsort(all_t, kind="stable")
        return all_t[order], all_rows[order], all_tags[order]

    def requests(self, trace: Workload, rows: IntArray, tags: IntArray) -> Workload:
        """The trace's requests ``rows`` as replayed by copies and passes ``tags``.

        Each copy and each pass stands for other users sending the same kind
        of traffic, so its block ids and sessions are made distinct from the
        other copies' and passes': ids are numbered ``0 .. U−1`` (``U``
        distinct ids in the trace), then offset by ``tag · U``.
        """
        picked = trace.take(rows)
        n_blocks, ids, session = picked.n_blocks, picked.block_ids, picked.session
        if (n_blocks is not None and ids is not None and trace.block_ids is not None
                and self.copies * self.passes > 1):
            distinct = np.unique(trace.block_ids)
            ids = np.searchsorted(distinct, ids) + np.repeat(tags, n_blocks) * distinct.size
        if session is not None and trace.session is not None:
            session = session + tags * (int(trace.session.max(initial=0)) + 1)
        return Workload(picked.arrival_s, picked.input_tokens, picked.output_tokens,
                        n_blocks, ids, session, picked.block_tokens)


def restrict(plan: RatePlan, a: float, b: float) -> RatePlan:
    """``plan`` on ``[a, b)`` only (its segments cut at ``a`` and ``b``)."""
    edges = plan.edges
    b = min(b, float(edges[-1]))
    if b <= a:
        return RatePlan(np.array([a, a]), np.zeros(1), plan.rate)
    lo = max(int(np.searchsorted(edges, a, side="right")) - 1, 0)
    hi = int(np.searchsorted(edges, b, side="left"))
    cut = edges[lo : hi + 1].copy()
    cut[0], cut[-1] = max(cut[0], a), b
    return RatePlan(cut, plan.bound[lo:hi], plan.rate)
