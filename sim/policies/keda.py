"""``keda``: KEDA's ScaledObject — activation and scale to zero, then an HPA.

Sources: KEDA docs (``scaledobject-spec.md``, ``concepts/scaling-deployments.md``)
and the scale executor (``kedacore/keda`` ``pkg/scaling/executor``).
Every ``polling_interval`` the operator checks its triggers: a trigger is
*active* when its value exceeds ``activation_threshold`` (strictly).  Active:
a deployment at zero goes to max(min_replicas, 1).  Inactive for
``cooldown_period`` since the last activity (or, never active,
``initial_cooldown_period`` after creation) with ``min_replicas`` 0: to zero.
Between 1 and N a KEDA-generated HPA (15 s sync, tolerance, behavior) scales
on each trigger as an External metric with an AverageValue target:
``ceil(value / threshold)``.

A trigger's value is the deployment-wide metric averaged over
``metrics_window`` (e.g. a Prometheus query over the gateway's metrics).  The
platform's start of a replica for a request that met none counts as activity
(what KEDA's HTTP add-on interceptor reports).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from sim import limits as L
from sim.policies.hpa import (
    Behavior,
    Hpa,
    Metric,
    Normalizer,
    external_metric_replicas,
    per_replica_total,
)
from sim.policies.registry import Observation, Policy, clamp, register
from sim.spec import Spec
from sim.units import Duration


class Trigger(Spec):
    metric: Metric = Field(description="the deployment-wide value KEDA reads")
    threshold: float = Field(gt=0, le=1e12, description="target value per replica (AverageValue)")
    activation_threshold: float = Field(
        0.0, ge=0, le=1e12, description="active when the value is above this (strictly)"
    )


@register("keda")
class Keda(Hpa):
    class Params(Spec):
        policy: Literal["keda"] = "keda"
        triggers: list[Trigger] = Field(
            min_length=1,
            description="[{metric, threshold (per replica), activation_threshold (0)}]; "
                        "active if any is active")
        polling_interval: Duration = Field(30.0, validate_default=False,
                                           ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                           description="how often the operator checks triggers")
        cooldown_period: Duration = Field(
            300.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="inactivity before N → 0"
        )
        initial_cooldown_period: Duration = Field(
            0.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="after creation, before a never-active target may go to zero")
        tolerance: float = Field(0.1, ge=0, lt=1, description="the HPA's")
        behavior: Behavior = Field(default_factory=Behavior, description="the HPA's")
        sync_period: Duration = Field(15.0, validate_default=False,
                                      ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                      description="the HPA's")
        metrics_window: Duration = Field(30.0, validate_default=False,
                                         ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                         description="trigger values average this (capsim's)")
        initial_replicas: int | None = Field(None, ge=0, le=L.MAX_REPLICAS,
                                             description="default: min_replicas")

    def __init__(self, params: Spec):
        assert isinstance(params, Keda.Params)
        Policy.__init__(self, params)
        self.k = params
        self.sync_period_s = params.sync_period
        self.window_s = params.metrics_window
        self.normalizer = Normalizer(params.behavior)
        self.last_active: float | None = None
        self.last_poll = -math.inf
        self.created = 0.0  # the ScaledObject exists from t = 0

    def initial_replicas(self) -> int:
        return self.k.initial_replicas if self.k.initial_replicas is not None else 0

    def scaled_from_zero(self, t: float) -> None:
        self.last_active = t

    def values(self, obs: Observation) -> list[float]:
        return [per_replica_total(obs, trig.metric) for trig in self.k.triggers]

    def operator(self, obs: Observation, values: list[float]) -> int | None:
        """The operator's poll: a new replica count (0 ↔ 1) or None to leave it."""
        k = self.k
        if obs.t - self.last_poll < k.polling_interval - 1e-9:
            return None
        self.last_poll = obs.t
        active = any(v > trig.activation_threshold for v, trig in zip(values, k.triggers,
                                                                          strict=True))
        if active:
            self.last_active = obs.t
            if obs.desired == 0:
                return clamp(max(obs.min_replicas, 1), 0, obs.max_replicas)
            return None
        if obs.desired > 0 and obs.min_replicas == 0:
            if self.last_active is not None:
                cooled = self.last_active + k.cooldown_period < obs.t
            else:
                cooled = self.created + k.initial_cooldown_period < obs.t
            if cooled:
                return 0
        return None

    def decide(self, obs: Observation) -> int:
        values = self.values(obs)
        scaled = self.operator(obs, values)
        if scaled is not None:
            return clamp(scaled, obs.min_replicas, obs.max_replicas)
        live = obs.ready + obs.starting
        proposal = max(
            external_metric_replicas(v, trig.threshold, live, self.k.tolerance)
            for v, trig in zip(values, self.k.triggers, strict=True)
        )
        return clamp(self.reconcile(obs, proposal), obs.min_replicas, obs.max_replicas)
