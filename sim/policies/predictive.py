"""``predictive``: scale ahead of a seasonal forecast, never in on the forecast alone.

Modelled on AWS predictive scaling
(https://docs.aws.amazon.com/autoscaling/application/userguide/aas-predictive-scaling-how-it-works.html):
the load is recorded in buckets of ``resolution`` (AWS: hourly); the forecast for a
time is the value of the bucket one ``season`` earlier (the same time the
previous day),
averaged over up to ``seasons`` previous seasons (AWS uses up to 14 days);
capacity for the bucket containing t + ``lead`` is set at t (AWS
``SchedulingBufferTime``, default 300 s) and held until then: the forecast
used at t is the highest over [t, t + lead].  Without a full season of history
there is no forecast.  The forecast only ever raises capacity: the decision
is max(forecast replicas, ``reactive`` policy), and the reactive policy (any
registered one; by default ``fireworks``) alone scales in.

Forecast replicas = ceil(forecast / per-replica target), the target being
``target`` in units of ``metric`` or, for ``concurrent_requests``,
``target_utilization`` × what a replica holds at once.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sim import limits as L
from sim.policies.hpa import per_replica_total
from sim.policies.registry import Observation, Policy, clamp, get_policy, parse_params, register
from sim.spec import NestedError, Spec
from sim.units import Duration

ForecastMetric = Literal[
    "concurrent_requests", "requests_per_second", "prompt_tokens_per_second",
    "tokens_generated_per_second",
]


@register("predictive")
class Predictive(Policy):
    class Params(Spec):
        policy: Literal["predictive"] = "predictive"
        reactive: Any = Field(default_factory=lambda: parse_params({"policy": "fireworks"}),
                              description="an autoscaler mapping: {policy: fireworks, ...}")
        metric: ForecastMetric = Field(
            "concurrent_requests",
            description="the load forecast; a rate (requests, tokens) is offered load, "
                        "concurrency also grows when capacity is short")
        target: float | None = Field(None, gt=0, le=1e12,
                                     description="per replica, in metric units")
        target_utilization: float = Field(0.8, gt=0, le=1,
                                          description="for concurrent_requests without target")
        season: Duration = Field(86400.0, validate_default=False, gt=0, le=L.MAX_WINDOW_S,
                                 description="the forecast for t is the load at t − season")
        seasons: int = Field(1, ge=1, le=14, description="previous seasons averaged")
        resolution: Duration = Field(3600.0, validate_default=False,
                                     ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                     description="load recorded in buckets of this length")
        statistic: Literal["mean", "max"] = Field(
            "mean", description="a bucket's value: the mean load, or the peak of sync-period means")
        lead: Duration = Field(300.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
                               description="capacity for t + lead is set at t")
        sync_period: Duration | None = Field(
            None, validate_default=False, ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
            description="decide (both parts) this often; default: the reactive policy's")

        @field_validator("reactive", mode="before")
        @classmethod
        def _reactive(cls, value: Any) -> Any:
            if isinstance(value, dict) and value.get("policy") == "predictive":
                raise ValueError("the reactive policy cannot itself be predictive")
            if isinstance(value, Spec):
                return value
            try:
                return parse_params(value)
            except NestedError as exc:  # keep the key path inside the reactive mapping
                where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in exc.loc)
                raise ValueError(f"{where[1:]}: {exc.reason}" if where else exc.reason) from None

        @model_validator(mode="after")
        def _units(self) -> Predictive.Params:
            if self.metric != "concurrent_requests" and self.target is None:
                raise ValueError(f"metric {self.metric} needs a target per replica")
            if self.resolution > self.season:
                raise ValueError("resolution must not be longer than the season")
            return self

    def __init__(self, params: Any):
        assert isinstance(params, Predictive.Params)
        super().__init__(params)
        self.p = params
        self.reactive = get_policy(params.reactive.policy)(params.reactive)
        self.sync_period_s = params.sync_period or self.reactive.sync_period_s
        self.window_s = self.reactive.window_s
        self.windows_s = (*self.reactive.windows_s, self.sync_period_s)
        self.scales_from_zero = self.reactive.scales_from_zero
        self.buckets: dict[int, list[float]] = {}  # index -> [load·seconds, seconds, peak]

    def initial_replicas(self) -> int:
        return self.reactive.initial_replicas()

    def scaled_from_zero(self, t: float) -> None:
        self.reactive.scaled_from_zero(t)

    def record(self, obs: Observation) -> None:
        """Add the load of the last sync period to its bucket."""
        m = obs.window(self.sync_period_s)
        if m.span_s <= 0:
            return
        value = per_replica_total(obs, self.p.metric, self.sync_period_s)
        index = math.floor((obs.t - m.span_s / 2) / self.p.resolution)
        acc = self.buckets.setdefault(index, [0.0, 0.0, 0.0])
        acc[0] += value * m.span_s
        acc[1] += m.span_s
        acc[2] = max(acc[2], value)
        oldest = math.floor((obs.t - self.p.season * self.p.seasons - self.p.resolution)
                            / self.p.resolution) - 1
        for old in [k for k in self.buckets if k < oldest]:
            del self.buckets[old]

    def forecast_at(self, t: float) -> float | None:
        """The forecast load at time ``t``: its bucket one season earlier (averaged over
        up to ``seasons`` seasons), or None without that history."""
        p = self.p
        values = []
        for k in range(1, p.seasons + 1):
            acc = self.buckets.get(math.floor((t - k * p.season) / p.resolution))
            if acc is not None and acc[1] > 0:
                values.append(acc[0] / acc[1] if p.statistic == "mean" else acc[2])
        return sum(values) / len(values) if values else None

    def forecast(self, t: float) -> float | None:
        """The highest forecast over [t, t + lead]: capacity removed now could not be back
        before t + lead, so it must cover every bucket until then."""
        p = self.p
        steps = math.floor((t + p.lead) / p.resolution) - math.floor(t / p.resolution)
        points = [t + p.lead] + [t + k * p.resolution for k in range(steps)]
        values = [v for v in (self.forecast_at(x) for x in points) if v is not None]
        return max(values) if values else None

    def forecast_replicas(self, obs: Observation) -> int:
        load = self.forecast(obs.t)
        if load is None:
            return 0
        per_replica = self.p.target
        if per_replica is None:
            per_replica = self.p.target_utilization * obs.capacity_per_replica
        return math.ceil(load / per_replica - 1e-9)

    def decide(self, obs: Observation) -> int:
        self.record(obs)
        reactive = self.reactive.decide(obs)
        return clamp(max(self.forecast_replicas(obs), reactive), obs.min_replicas,
                     obs.max_replicas)
