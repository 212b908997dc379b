"""Traffic specs: what a deployment's requests look like.

A ``traffic:`` block has an arrival process and two token-length
distributions, each a tagged object (``kind: ...``)::

    traffic:
      arrivals: {kind: diurnal, mean_rps: 4, peak_to_mean: 3}
      input_tokens: {kind: lognormal, median: 1000, p90: 3000}
      output_tokens: {kind: exponential, mean: 200}

Specs only describe; :func:`sim.workload.generate` turns them into arrays.
Rates are requests per second (plain numbers), durations are unit strings
(``"24h"``), token counts are integers.  The exact definition of every kind is
in ``docs/workload.md``.
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from sim import limits as L
from sim.spec import Spec
from sim.units import Duration

# Largest token count of one request's prompt or output: 10 M tokens, the longest
# context window of any open model (Llama 4 Scout).  With the run's request limit
# (sim.estimate) every token sum stays far below 2**63, so sums in int64 are exact.
MAX_TOKENS = 10_000_000


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    return value


def _positive_duration(seconds: float) -> float:
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


Number = Annotated[float, BeforeValidator(_not_bool), Field(allow_inf_nan=False)]
Rate = Annotated[Number, Field(gt=0, le=L.MAX_RPS)]
"""Requests per second, > 0 and finite."""
NonNegativeRate = Annotated[Number, Field(ge=0, le=L.MAX_RPS)]
"""Requests per second, >= 0 and finite (for processes where zero means "quiet")."""
Weight = Annotated[Number, Field(ge=0)]
PositiveDuration = Annotated[
    Duration, AfterValidator(_positive_duration), Field(le=L.MAX_HORIZON_S)
]
HorizonTime = Annotated[Duration, Field(ge=-L.MAX_HORIZON_S, le=L.MAX_HORIZON_S)]
TokenCount = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=MAX_TOKENS)]


# --------------------------------------------------------------------------- arrivals


class PoissonArrivals(Spec):
    """Homogeneous Poisson process: independent exponential gaps of mean ``1/rps``."""

    kind: Literal["poisson"] = "poisson"
    rps: Rate


class DiurnalArrivals(Spec):
    """Poisson process whose rate follows a daily profile, optionally a weekly one.

    Either a sinusoid (``peak_to_mean``, ``period``, ``peak_at``) or 24 hourly
    weights (piecewise constant, hour 0 = the first hour of the simulation).
    ``weekly_weights`` (7 numbers, day 0 = the first 24 h of the simulation)
    multiply either.  Weights are normalised to mean 1, so the long-run mean
    rate is ``mean_rps``.
    """

    kind: Literal["diurnal"] = "diurnal"
    mean_rps: Rate
    peak_to_mean: Annotated[Number, Field(ge=1, le=1000)] | None = None
    period: PositiveDuration | None = None
    peak_at: HorizonTime | None = None
    hourly_weights: Annotated[list[Weight], Field(min_length=24, max_length=24)] | None = None
    weekly_weights: Annotated[list[Weight], Field(min_length=7, max_length=7)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _sinusoid_defaults(cls, data: Any) -> Any:
        # The sinusoid's defaults are filled in only for the sinusoid, so a
        # resolved scenario shows them and an hourly profile stays free of them.
        if (
            isinstance(data, dict)
            and data.get("peak_to_mean") is not None
            and data.get("hourly_weights") is None
        ):
            data = {**data}
            if data.get("period") is None:
                data["period"] = "24h"
            if data.get("peak_at") is None:
                data["peak_at"] = "14h"
        return data

    @model_validator(mode="after")
    def _one_profile(self) -> DiurnalArrivals:
        if self.peak_to_mean is None and self.hourly_weights is None:
            raise ValueError(
                "diurnal arrivals need either peak_to_mean (a sinusoid) "
                "or hourly_weights (24 numbers)"
            )
        if self.peak_to_mean is not None and self.hourly_weights is not None:
            raise ValueError("give either peak_to_mean or hourly_weights, not both")
        if self.hourly_weights is not None and (
            self.period is not None or self.peak_at is not None
        ):
            raise ValueError(
                "period and peak_at shape the sinusoid (peak_to_mean); "
                "hourly_weights already fix a 24 h profile"
            )
        for name in ("hourly_weights", "weekly_weights"):
            weights = getattr(self, name)
            if weights is not None and sum(weights) <= 0:
                raise ValueError(f"{name} are all zero: there would be no traffic")
        return self


class RampArrivals(Spec):
    """Poisson process whose rate moves linearly from ``start_rps`` to ``end_rps``.

    The ramp lasts ``ramp_duration`` (default: the whole simulation); after it
    the rate stays at ``end_rps``.
    """

    kind: Literal["ramp"] = "ramp"
    start_rps: NonNegativeRate
    end_rps: NonNegativeRate
    ramp_duration: PositiveDuration | None = None

    @model_validator(mode="after")
    def _some_traffic(self) -> RampArrivals:
        if self.start_rps == 0 and self.end_rps == 0:
            raise ValueError("start_rps and end_rps are both 0: there would be no traffic")
        return self


class BurstArrivals(Spec):
    """Two-state Markov-modulated Poisson process (MMPP-2).

    The process alternates between a base state (rate ``base_rps``) and a burst
    state (rate ``burst_rps``); the time spent in each visit is exponential
    with mean ``mean_gap`` (base) and ``mean_burst`` (burst).  It starts in its
    stationary state, so its rate at every time is, on average,
    ``(base_rps * mean_gap + burst_rps * mean_burst) / (mean_gap + mean_burst)``.
    """

    kind: Literal["burst"] = "burst"
    base_rps: NonNegativeRate
    burst_rps: Rate
    mean_burst: PositiveDuration
    mean_gap: PositiveDuration

    @model_validator(mode="after")
    def _burst_above_base(self) -> BurstArrivals:
        if self.burst_rps <= self.base_rps:
            raise ValueError(
                f"burst_rps ({self.burst_rps:g}) must be above base_rps ({self.base_rps:g})"
            )
        return self

    @property
    def mean_rps(self) -> float:
        """Long-run arrival rate: the time-weighted mean of the two rates."""
        w_burst = self.mean_burst / (self.mean_burst + self.mean_gap)
        return self.base_rps * (1.0 - w_burst) + self.burst_rps * w_burst


class Spike(Spec):
    """One spike: from ``at`` for ``duration`` the arrival rate is ``rps``."""

    at: HorizonTime
    duration: PositiveDuration
    rps: Rate


class SpikesArrivals(Spec):
    """Poisson process at ``base_rps`` except during listed spikes.

    During a spike the rate is the spike's ``rps`` (it replaces ``base_rps``,
    it is not added to it).  Spikes may not overlap.
    """

    kind: Literal["spikes"] = "spikes"
    base_rps: NonNegativeRate
    spikes: Annotated[list[Spike], Field(max_length=L.MAX_LIST)]

    @model_validator(mode="after")
    def _disjoint(self) -> SpikesArrivals:
        ordered = sorted(self.spikes, key=lambda s: s.at)
        for before, after in itertools.pairwise(ordered):
            if after.at < before.at + before.duration:
                raise ValueError(
                    f"spikes overlap: the spike at {after.at:g}s starts before the one "
                    f"at {before.at:g}s ends ({before.at + before.duration:g}s)"
                )
        if self.base_rps == 0 and not self.spikes:
            raise ValueError("base_rps is 0 and there are no spikes: there would be no traffic")
        return self


class TraceArrivals(Spec):
    """Replay of a recorded trace (``.csv`` in the Azure format or ``.jsonl``).

    ``time_scale`` multiplies the trace's time axis (2 = plays half as fast).
    ``rate_scale`` keeps the time axis and multiplies the rate: below 1 each
    request is kept with probability ``rate_scale``; above 1 randomly
    time-shifted copies of the trace are superposed (see ``docs/workload.md``).
    ``loop`` repeats the trace until the simulation ends.  ``path`` is relative
    to the scenario file's folder.
    """

    kind: Literal["trace"] = "trace"
    path: Annotated[str, Field(min_length=1)]
    time_scale: Annotated[Number, Field(ge=L.MIN_TIME_SCALE, le=L.MAX_SCALE)] = 1.0
    rate_scale: Annotated[Number, Field(gt=0, le=L.MAX_SCALE)] = 1.0
    loop: bool = False


ArrivalsSpec = Annotated[
    PoissonArrivals
    | DiurnalArrivals
    | RampArrivals
    | BurstArrivals
    | SpikesArrivals
    | TraceArrivals,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- token lengths


class _LengthBase(Spec):
    """Common keys: samples are clipped to ``[min, max]`` (``max`` default: none)."""

    min: TokenCount = 1
    max: TokenCount | None = None

    @model_validator(mode="after")
    def _ordered_bounds(self) -> _LengthBase:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self

    @property
    def upper(self) -> int:
        """The upper clip actually applied: ``max``, or :data:`MAX_TOKENS`."""
        return MAX_TOKENS if self.max is None else self.max


class FixedLength(_LengthBase):
    """Every request has ``value`` tokens."""

    kind: Literal["fixed"] = "fixed"
    value: TokenCount


class ExponentialLength(_LengthBase):
    """Geometric on {1, 2, ...} with mean ``mean``: the exponential's integer analogue."""

    kind: Literal["exponential"] = "exponential"
    mean: Annotated[Number, Field(ge=1, le=MAX_TOKENS)]


class LognormalLength(_LengthBase):
    """Lognormal with the given median and 90th percentile, rounded to integers."""

    kind: Literal["lognormal"] = "lognormal"
    median: Annotated[Number, Field(gt=0)]
    p90: Annotated[Number, Field(gt=0)]

    @model_validator(mode="after")
    def _p90_above_median(self) -> LognormalLength:
        if not self.p90 > self.median:
            raise ValueError(f"p90 ({self.p90:g}) must be above median ({self.median:g})")
        if self.sigma > MAX_LOGNORMAL_SIGMA:
            widest = math.exp(MAX_LOGNORMAL_SIGMA * Z90)
            raise ValueError(
                f"p90/median = {self.p90 / self.median:.3g} is too wide "
                f"(at most {widest:.3g}, a log-standard deviation of {MAX_LOGNORMAL_SIGMA:g})"
            )
        return self

    @property
    def mu(self) -> float:
        """Mean of ln(tokens) before rounding: ``ln(median)``."""
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        """Standard deviation of ln(tokens) before rounding: ``ln(p90/median) / z_0.9``."""
        return math.log(self.p90 / self.median) / Z90


# 90th percentile of the standard normal distribution.
Z90 = NormalDist().inv_cdf(0.9)
# Widest lognormal accepted: its moments (exp(2 sigma^2) and beyond) stay far
# inside float64 range.  sigma = 10 is p90/median ~ 3.7e5, beyond any real trace.
MAX_LOGNORMAL_SIGMA = 10.0


class EmpiricalLength(_LengthBase):
    """Resample (with replacement) a token column of a trace file.

    ``column`` defaults to the field's own: ``input`` for ``input_tokens``,
    ``output`` for ``output_tokens``.
    """

    kind: Literal["empirical"] = "empirical"
    path: Annotated[str, Field(min_length=1)]
    column: Literal["input", "output"] | None = None


LengthSpec = Annotated[
    FixedLength | ExponentialLength | LognormalLength | EmpiricalLength,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- prefixes

CountSpec = Annotated[
    FixedLength | ExponentialLength | LognormalLength, Field(discriminator="kind")
]


class SessionSpec(Spec):
    """Multi-turn conversations: the arrival process starts sessions.

    A session has ``turns`` requests (a count distribution, ≥ 1).  Turn 1
    arrives when the session starts; each next turn arrives an exponential
    ``think_time`` (its mean) after the previous one.  A turn's prompt is
    the previous turn's prompt, its answer, then new user text
    (``input_tokens`` draws the new text, ``output_tokens`` the answer).
    """

    turns: CountSpec = Field(description="requests per session")
    think_time: PositiveDuration = Field(
        description="mean time between a session's consecutive requests (exponential)"
    )


class SystemPromptSpec(Spec):
    """Shared system prompts: each session (or request) starts with one of ``count``.

    Prompt ``i`` (0-based) is chosen with probability ∝ ``(i + 1)^−zipf``
    (0: uniform); every prompt is ``tokens`` long and precedes the user
    text, so its full blocks are shared by every request that uses it.
    """

    count: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=2**30)] = Field(
        description="distinct system prompts"
    )
    tokens: TokenCount = Field(description="length of each system prompt")
    zipf: Annotated[Number, Field(ge=0, le=20)] = Field(
        1.0, description="popularity exponent: prompt i drawn ∝ (i + 1)^-zipf"
    )


# --------------------------------------------------------------------------- traffic


class TrafficSpec(Spec):
    """One deployment's traffic: arrivals and token lengths.

    With ``kind: trace`` arrivals, omitted token lengths are the trace's own
    (each request keeps its recorded lengths).  Otherwise both are required.
    ``sessions`` and ``system_prompts`` give synthetic traffic prompt prefixes
    (block ids, as a trace's ``hash_ids``) for prefix caching.
    """

    arrivals: ArrivalsSpec
    input_tokens: LengthSpec | None = None
    output_tokens: LengthSpec | None = None
    sessions: SessionSpec | None = Field(
        None, description="multi-turn sessions: the arrivals start sessions"
    )
    system_prompts: SystemPromptSpec | None = Field(
        None, description="shared system prompts ahead of the user text"
    )
    hash_block_tokens: TokenCount = Field(
        512, description="tokens per prompt block named by one block id (a trace's hash_ids)"
    )

    @model_validator(mode="after")
    def _prefix_models(self) -> TrafficSpec:
        if isinstance(self.arrivals, TraceArrivals) and (
            self.sessions is not None or self.system_prompts is not None
        ):
            raise ValueError(
                "sessions and system_prompts shape synthetic traffic; a trace brings its own "
                "hash_ids and session_id"
            )
        return self

    @model_validator(mode="after")
    def _lengths_given(self) -> TrafficSpec:
        if not isinstance(self.arrivals, TraceArrivals):
            missing = [
                name for name in ("input_tokens", "output_tokens") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} required: only trace arrivals "
                    "bring their own token lengths"
                )
        return self
