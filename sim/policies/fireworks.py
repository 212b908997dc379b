"""``fireworks``: the provider's autoscaler, as its documentation describes it.

Sources: https://docs.fireworks.ai/deployments/autoscaling and the API spec
(https://docs.fireworks.ai/api-reference/create-deployment).
Per load target, ``desired_i = ceil(observed total_i / per-replica target_i)``;
the desire is the maximum over targets.
The desire is at least one replica while any runs: only ``scale_to_zero_window``
takes a deployment to zero; at zero, the first request starts one.  Scaling up
happens once a higher desire has held for ``scale_up_window`` (the minimum
desire over that window exceeds the current target); scaling down once a lower
desire has held for ``scale_down_window`` since the target last changed; to
zero after ``scale_to_zero_window`` without requests (only when
``min_replicas`` is 0).  Scaling from zero on the first request is the
platform's and is not delayed by the windows.

``scaling_schedules`` (API ``scalingSchedules``: at most 5, "the highest value
wins") raise the minimum while they are active: each is a cron expression, a
duration and a minimum, like Google Compute Engine's autoscaler schedules
(``schedule``, ``duration_sec``, ``min_required_replicas``, ``time_zone``),
whose shape the provider's field follows.  A raised minimum binds at once;
when it drops, the usual scale-down rule applies.

Not published by the provider, stated here as capsim's reading:

* ``default`` load is the users' demand in output tokens per second — first
  attempts per second × the mean output tokens of the requests served so
  far — over what one replica generates at saturation for the mean sizes
  served so far (``Shape.max_throughput``): a load target of 0.8 keeps each
  replica at 80 % of the throughput it can reach.  Before the first request
  is served the sizes are unknown, and the load is the mean number of
  requests queued or in service over what one replica holds at once;
* metrics are averaged over the last 60 s and the controller decides every
  10 s (``sync_period``, ``metrics_window``; both may be set);
* a schedule is active for ``duration`` from each firing of its cron
  expression, on a wall clock reading ``start_time`` at t = 0.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sim import limits as L
from sim.policies.registry import Observation, Policy, capacity_load, clamp, register
from sim.policies.schedule import DEFAULT_START, CronWindow, aware, check_cron, check_zone
from sim.spec import Spec
from sim.units import Duration

HOUR = 3600.0


class LoadTargets(Spec):
    default: float | None = Field(
        0.8, gt=0, le=1,
        description="fraction of a replica's saturation throughput at the observed sizes")
    tokens_generated_per_second: float | None = Field(None, gt=0, le=1e12,
                                                      description="per replica")
    prompt_tokens_per_second: float | None = Field(None, gt=0, le=1e12, description="per replica")
    requests_per_second: float | None = Field(None, gt=0, le=1e12, description="per replica")
    concurrent_requests: float | None = Field(None, gt=0, le=1e12, description="per replica")


class ScalingSchedule(Spec):
    """A cron schedule that raises the minimum replica count while it is active."""

    name: str = Field(min_length=1)
    schedule: str = Field(description="cron: minute hour day-of-month month day-of-week")
    duration: Duration = Field(gt=0, le=L.MAX_WINDOW_S, description="how long each firing lasts")
    min_replicas: int = Field(ge=0, le=L.MAX_REPLICAS, description="the minimum while active")
    time_zone: str = Field("UTC", description="IANA time zone of the cron expression")

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


@register("fireworks")
class Fireworks(Policy):
    class Params(Spec):
        policy: Literal["fireworks"] = "fireworks"
        load_targets: LoadTargets = Field(
            default_factory=LoadTargets,
            description="per-replica targets; the replicas asked for are the max over them")
        scale_up_window: Duration = Field(
            30.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="a higher desire must hold this long; ≤ 1h")
        scale_down_window: Duration = Field(
            600.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="a lower desire must hold this long since the last change; ≤ 1h")
        scale_to_zero_window: Duration = Field(
            HOUR, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="≥ 5m; applies when min_replicas is 0"
        )
        initial_replicas: int | None = Field(
            None, ge=0, le=L.MAX_REPLICAS, description="replicas at t = 0 (default: min_replicas)"
        )
        sync_period: Duration = Field(10.0, validate_default=False,
                                      ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                      description="how often the controller decides (capsim's)")
        metrics_window: Duration = Field(60.0, validate_default=False,
                                         ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                         description="metrics averaged over this (capsim's)")
        scaling_schedules: list[ScalingSchedule] = Field(
            default_factory=list, max_length=5,
            description="at most 5; while active they raise the minimum, the highest wins",
        )
        start_time: datetime = Field(
            DEFAULT_START, description="wall-clock time at t = 0, for the schedules"
        )

        @field_validator("start_time")
        @classmethod
        def _aware(cls, value: datetime) -> datetime:
            return aware(value)

        @model_validator(mode="after")
        def _bounds(self) -> Fireworks.Params:
            # the provider's API bounds (fw-ai-external/python-sdk types/autoscaling_policy.py)
            for key in ("scale_up_window", "scale_down_window"):
                value = getattr(self, key)
                if not 0 <= value <= HOUR:
                    raise ValueError(f"{key} must be between 0s and 1h (got {value:g}s)")
            if self.scale_to_zero_window < 300:
                raise ValueError(
                    f"scale_to_zero_window must be at least 5m (got {self.scale_to_zero_window:g}s)"
                )
            names = [s.name for s in self.scaling_schedules]
            if len(set(names)) != len(names):
                raise ValueError("scaling_schedules need distinct names")
            return self

    def __init__(self, params: Spec):
        assert isinstance(params, Fireworks.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.sync_period
        self.window_s = params.metrics_window
        self.history: deque[tuple[float, int]] = deque()  # (t, raw desire)
        self.changed_at = 0.0
        self.current = 0
        self.schedules = [
            (CronWindow(s.schedule, s.duration, params.start_time, s.time_zone), s.min_replicas)
            for s in params.scaling_schedules
        ]

    def initial_replicas(self) -> int:
        start = self.p.initial_replicas if self.p.initial_replicas is not None else 0
        return max(start, self.scheduled_minimum(0.0))

    def raw_desire(self, obs: Observation) -> int:
        """max over load targets of ceil(observed total / per-replica target)."""
        targets = self.p.load_targets
        wants = [0]
        observed = {
            "tokens_generated_per_second": obs.output_tokens_per_s,
            "prompt_tokens_per_second": obs.prompt_tokens_per_s,
            "requests_per_second": obs.requests_per_s,
            "concurrent_requests": obs.concurrent_requests,
        }
        for key, total in observed.items():
            per_replica = getattr(targets, key)
            if per_replica is not None:
                wants.append(math.ceil(total / per_replica - 1e-9))
        if targets.default is not None:
            wants.append(math.ceil(capacity_load(obs) / targets.default - 1e-9))
        return max(wants)

    def scheduled_minimum(self, t: float) -> int:
        """The highest minimum of the schedules active at ``t`` (0 when none is)."""
        return max((low for window, low in self.schedules if window.active(t)), default=0)

    def scaled_from_zero(self, t: float) -> None:
        self.current = 1
        self.changed_at = t

    def decide(self, obs: Observation) -> int:
        p = self.p
        if self.current != obs.desired:
            self.current = obs.desired  # the platform changed it (scale from zero, start)
            self.changed_at = obs.t
        floor = clamp(max(obs.min_replicas, self.scheduled_minimum(obs.t)), 0, obs.max_replicas)
        # load alone never takes a running deployment to zero (that is the scale-to-zero
        # window's call), nor starts one at zero (the platform does, on a request)
        low = 1 if obs.desired > 0 else 0
        raw = clamp(self.raw_desire(obs), max(obs.min_replicas, low), obs.max_replicas)
        self.history.append((obs.t, raw))
        horizon = max(p.scale_up_window, p.scale_down_window)
        while self.history and self.history[0][0] < obs.t - horizon - 1e-9:
            self.history.popleft()
        target = obs.desired
        if floor == 0 and obs.idle_s >= p.scale_to_zero_window:
            target = 0
        else:
            up = [w for t, w in self.history if t >= obs.t - p.scale_up_window - 1e-9]
            down = [w for t, w in self.history if t >= obs.t - p.scale_down_window - 1e-9]
            held_up = min(up)
            if held_up > target and self._covers(p.scale_up_window, obs.t):
                target = held_up
            elif (max(down) < target and obs.t - self.changed_at >= p.scale_down_window
                  and self._covers(p.scale_down_window, obs.t)):
                target = max(down)
        target = clamp(max(target, floor), obs.min_replicas, obs.max_replicas)
        if target != self.current:
            self.current = target
            self.changed_at = obs.t
        return target

    def _covers(self, window: float, now: float) -> bool:
        """Whether the history spans the whole window (the desire has *held* for it)."""
        return bool(self.history) and self.history[0][0] <= now - window + 1e-9
