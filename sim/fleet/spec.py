"""Scenario sections of the control plane: cold starts, background demand, faults.

Cold-start defaults (``docs/control-plane.md`` cites each): scheduling 30 s
(a warm node pool: pod scheduling and image already cached), weight download
at 2 GB/s (ServerlessLLM measured 130 GB in ≈26 s at 5 GB/s from local
storage; a remote store is slower), initialization 60 s (vLLM engine start
with compilation and CUDA-graph capture: 34 s to 3.5 min in vLLM issues
#20264 and #19824).  For a 70B FP8 model that is ≈ 2 minutes in all —
"cold starts take up to a few minutes" (Fireworks autoscaling guide).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from sim import limits as L
from sim.spec import Spec
from sim.units import Bandwidth, Duration

_Z90 = NormalDist().inv_cdf(0.9)


Phase = Annotated[Duration, Field(ge=0, le=L.MAX_DELAY_S)]
DownloadRate = Annotated[Bandwidth, Field(ge=L.MIN_DOWNLOAD_RATE, le=L.MAX_DOWNLOAD_RATE)]
HorizonTime = Annotated[Duration, Field(ge=0, le=L.MAX_HORIZON_S)]


class UniformDuration(Spec):
    kind: Literal["uniform"]
    low: Phase
    high: Phase

    @model_validator(mode="after")
    def _order(self) -> UniformDuration:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        return self


class LognormalDuration(Spec):
    kind: Literal["lognormal"]
    median: Annotated[Duration, Field(gt=0, le=L.MAX_DELAY_S)]
    p90: Annotated[Duration, Field(gt=0, le=L.MAX_DELAY_S)]

    @model_validator(mode="after")
    def _order(self) -> LognormalDuration:
        if self.p90 <= self.median:
            raise ValueError("p90 must be above the median")
        return self


class UniformRate(Spec):
    kind: Literal["uniform"]
    low: DownloadRate
    high: DownloadRate

    @model_validator(mode="after")
    def _order(self) -> UniformRate:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        return self


class LognormalRate(Spec):
    kind: Literal["lognormal"]
    median: DownloadRate
    p90: DownloadRate

    @model_validator(mode="after")
    def _order(self) -> LognormalRate:
        if self.p90 <= self.median:
            raise ValueError("p90 must be above the median")
        return self


DurationDist = Phase | UniformDuration | LognormalDuration
RateDist = DownloadRate | UniformRate | LognormalRate


def sampler(
    spec: float | UniformDuration | LognormalDuration | UniformRate | LognormalRate,
) -> Callable[[np.random.Generator], float]:
    """A function drawing one value of ``spec`` from a generator."""
    if isinstance(spec, float | int):
        value = float(spec)
        return lambda rng: value
    if isinstance(spec, UniformDuration | UniformRate):
        low, high = spec.low, spec.high
        return lambda rng: float(rng.uniform(low, high))
    mu = math.log(spec.median)
    sigma = (math.log(spec.p90) - mu) / _Z90
    return lambda rng: float(rng.lognormal(mu, sigma))


class ColdStartSpec(Spec):
    """cold start = scheduling + weight bytes / download rate + initialization."""

    scheduling: DurationDist = Field(30.0, validate_default=False)
    weight_download_rate: RateDist = Field(2e9, validate_default=False)
    initialization: DurationDist = Field(60.0, validate_default=False)


class BackgroundStep(Spec):
    at: HorizonTime
    gpus: int = Field(ge=0, le=L.MAX_GPUS)


class BackgroundSpec(Spec):
    """GPUs other tenants want in one datacenter, as a step function of time."""

    datacenter: str
    accelerator: str
    steps: list[BackgroundStep] = Field(min_length=1, max_length=L.MAX_LIST)

    @model_validator(mode="after")
    def _sorted(self) -> BackgroundSpec:
        times = [s.at for s in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be in time order")
        return self


class OutageSpec(Spec):
    datacenter: str
    start: HorizonTime
    duration: Annotated[Duration, Field(gt=0, le=L.MAX_HORIZON_S)]


class FaultSpec(Spec):
    replica_mtbf: Annotated[Duration, Field(ge=L.MIN_MTBF_S, le=L.MAX_HORIZON_S)] | None = Field(
        None, description="mean time between failures of one ready replica (exponential)"
    )
    outages: list[OutageSpec] = Field(default_factory=list, max_length=L.MAX_LIST)
