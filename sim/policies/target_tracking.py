"""``target_tracking``: AWS Application Auto Scaling target tracking (SageMaker, ECS).

Sources: Application Auto Scaling user guide ("How target tracking scaling
works", "Define cooldown periods"), SageMaker endpoint autoscaling
(https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html).
AWS does not publish the formula; capsim uses the proportional model the guide describes, on the
deployment-wide load: ``desired = ceil(total metric / target per
instance)`` (= ceil(instances × metric per instance / target)).

The managed CloudWatch alarms sample the metric per in-service instance once
per ``period`` (1 min): scale-out when ``scale_out_datapoints`` (3)
consecutive datapoints are above the target, scale-in when
``scale_in_datapoints`` (15) are below ``scale_in_ratio`` (0.9) of it; an
alarm keeps invoking the policy every period while it holds.  Cooldowns
(default 300 s, as for SageMaker variants and ECS), as the guide describes
them:

* scale-out cooldown: after a scale-out, the capacity it added counts as part
  of the desired capacity — capacity grows again only if a larger scale-out
  is triggered (it then adds only the difference) or the cooldown ends;
* scale-in cooldown: scale-ins are blocked until it ends; a scale-out during it
  proceeds at once and cancels it.

Missing datapoints (no instance in service) leave the alarms as they are.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Literal

from pydantic import Field

from sim import limits as L
from sim.policies.hpa import Metric, per_replica_total
from sim.policies.registry import Observation, Policy, clamp, register
from sim.spec import Spec
from sim.units import Duration


class Cooldowns:
    """Application Auto Scaling's scale-out and scale-in cooldowns."""

    def __init__(self, scale_out_s: float, scale_in_s: float):
        self.out_s, self.in_s = scale_out_s, scale_in_s
        self.out_until = -math.inf
        self.out_base = 0  # capacity before the scale-out that started the cooldown
        self.in_until = -math.inf

    def scale_out(self, now: float, current: int, *, to: int | None = None,
                  step: int | None = None) -> int:
        """Capacity after a scale-out to ``to`` (target tracking) or by ``step`` (step
        scaling, relative to the capacity before a cooldown's initiating scale-out)."""
        cooling = now < self.out_until - 1e-9
        base = self.out_base if cooling else current
        new = to if to is not None else base + (step or 0)
        if new <= current:
            return current  # the capacity already added covers it
        if not cooling:
            self.out_base = current
        self.out_until = now + self.out_s
        self.in_until = -math.inf  # a scale-out cancels the scale-in cooldown
        return new

    def scale_in(self, now: float, current: int, *, to: int | None = None,
                 step: int | None = None) -> int:
        """Capacity after a scale-in to ``to`` or by ``step`` (negative), unless cooling."""
        if now < self.in_until - 1e-9:
            return current
        new = to if to is not None else current + (step or 0)
        if new >= current:
            return current
        self.in_until = now + self.in_s
        return new


@register("target_tracking")
class TargetTracking(Policy):
    class Params(Spec):
        policy: Literal["target_tracking"] = "target_tracking"
        metric: Metric = Field("utilization", description="tracked per in-service instance")
        target_value: Annotated[float, Field(gt=0, le=1e12)] = Field(
            0.7, description="per instance (AWS has no default; capsim's: 70 % utilization)")
        scale_out_cooldown: Duration = Field(300.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
                                             description="ScaleOutCooldown")
        scale_in_cooldown: Duration = Field(300.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
                                            description="ScaleInCooldown")
        disable_scale_in: bool = Field(False, description="DisableScaleIn")
        period: Duration = Field(60.0, validate_default=False, ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                 description="one datapoint per period")
        scale_out_datapoints: int = Field(3, ge=1, le=10_000, description="AlarmHigh: N of N above")
        scale_in_datapoints: int = Field(15, ge=1, le=10_000, description="AlarmLow: N of N below")
        scale_in_ratio: float = Field(0.9, gt=0, le=1,
                                      description="scale-in alarm below this × target")
        initial_replicas: int | None = Field(None, ge=0, le=L.MAX_REPLICAS,
                                             description="default: min_replicas")

    def __init__(self, params: Spec):
        assert isinstance(params, TargetTracking.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.period
        self.window_s = params.period
        self.cooldowns = Cooldowns(params.scale_out_cooldown, params.scale_in_cooldown)
        keep = max(params.scale_out_datapoints, params.scale_in_datapoints)
        self.datapoints: deque[float] = deque(maxlen=keep)

    def initial_replicas(self) -> int:
        return self.p.initial_replicas if self.p.initial_replicas is not None else 0

    def alarms(self) -> tuple[bool, bool]:
        """(AlarmHigh, AlarmLow) over the recorded datapoints."""
        p, points = self.p, list(self.datapoints)
        high = (len(points) >= p.scale_out_datapoints
                and all(v > p.target_value for v in points[-p.scale_out_datapoints:]))
        low = (len(points) >= p.scale_in_datapoints
               and all(v < p.scale_in_ratio * p.target_value
                       for v in points[-p.scale_in_datapoints:]))
        return high, low

    def decide(self, obs: Observation) -> int:
        p = self.p
        total = per_replica_total(obs, p.metric)
        if obs.ready > 0:
            self.datapoints.append(total / obs.ready)
        current = obs.desired
        proposal = clamp(math.ceil(total / p.target_value - 1e-9), obs.min_replicas,
                         obs.max_replicas)
        high, low = self.alarms()
        new = current
        if high and proposal > current:
            new = self.cooldowns.scale_out(obs.t, current, to=proposal)
        elif low and proposal < current and not p.disable_scale_in:
            new = self.cooldowns.scale_in(obs.t, current, to=proposal)
        return clamp(new, obs.min_replicas, obs.max_replicas)
