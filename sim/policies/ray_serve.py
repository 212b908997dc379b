"""``ray_serve``: Ray Serve's default autoscaling policy.

Source: ``ray-project/ray`` ``python/ray/serve/autoscaling_policy.py``
(``_core_replica_queue_length_policy``, ``_apply_scaling_factors``,
``_apply_bounds``, ``_apply_delay_logic``, ``_get_cold_start_scale_up_replicas``)
and ``AutoscalingConfig`` defaults
(https://docs.ray.io/en/latest/serve/advanced-guides/advanced-autoscaling.html).
``total`` is the requests queued or in service over all replicas,
averaged over ``look_back_period``; ``desired = total / target_ongoing_requests``;
the upscaling/downscaling factor moves the running count part of the way;
the result is clamped to [min, max] and must be wanted for ``upscale_delay``
(``downscale_delay``; ``downscale_to_zero_delay`` for 1 → 0) of consecutive
control-loop ticks before it becomes the target.  At zero running replicas
the cold-start path scales up at once.

Ray's controller ticks every 0.1 s (``CONTROL_LOOP_INTERVAL_S``).  capsim
evaluates every ``sync_period`` (default 1 s) and counts each evaluation as
the 0.1 s ticks since the previous one, as if the decision had held for all
of them; the first tick of a new direction counts once.  A delay that is a
whole number of sync periods is then applied exactly when Ray would apply it.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from sim import limits as L
from sim.policies.registry import Observation, Policy, clamp, register
from sim.spec import Spec
from sim.units import Duration

CONTROL_LOOP_INTERVAL_S = 0.1


def apply_scaling_factors(desired: float, current: int, upscaling_factor: float,
                          downscaling_factor: float) -> int:
    """``_apply_scaling_factors``."""
    delta = desired - current
    factor = upscaling_factor if delta > 0 else downscaling_factor
    scaled = math.ceil(current + factor * delta - 1e-9)
    if math.ceil(desired - 1e-9) < current and scaled == current:
        scaled -= 1  # stuck because of the factor while downscaling
    return scaled


class DelayCounter:
    """``_apply_delay_logic``: the decision counter, in 0.1 s control-loop ticks."""

    def __init__(self, upscale_delay_s: float, downscale_delay_s: float,
                 downscale_to_zero_delay_s: float | None):
        self.up_ticks = int(upscale_delay_s / CONTROL_LOOP_INTERVAL_S + 1e-9)
        self.down_ticks = int(downscale_delay_s / CONTROL_LOOP_INTERVAL_S + 1e-9)
        self.zero_ticks = (None if downscale_to_zero_delay_s is None
                           else int(downscale_to_zero_delay_s / CONTROL_LOOP_INTERVAL_S + 1e-9))
        self.counter = 0

    def apply(self, desired: int, target: int, ticks: int = 1) -> int:
        """The new target after ``ticks`` control-loop ticks wanting ``desired``."""
        decision = target
        if desired > target:
            self.counter = 1 if self.counter <= 0 else self.counter + ticks
            if self.counter > self.up_ticks:
                self.counter = 0
                decision = desired
        elif desired < target:
            self.counter = -1 if self.counter >= 0 else self.counter - ticks
            if target == 1:
                delay = self.zero_ticks if self.zero_ticks is not None else self.down_ticks
            else:
                delay = self.down_ticks
                desired = max(1, desired)
            if self.counter < -delay:
                self.counter = 0
                decision = desired
        else:
            self.counter = 0
        return decision


@register("ray_serve")
class RayServe(Policy):
    class Params(Spec):
        policy: Literal["ray_serve"] = "ray_serve"
        target_ongoing_requests: float = Field(2.0, gt=0, le=1e6, description="per replica")
        look_back_period: Duration = Field(30.0, validate_default=False,
                                           ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                           description="ongoing requests averaged over this")
        smoothing_factor: float = Field(1.0, gt=0, le=100, description="the part of the gap moved")
        upscaling_factor: float | None = Field(None, gt=0, le=100, description="default: smoothing")
        downscaling_factor: float | None = Field(None, gt=0, le=100,
                                                 description="default: smoothing")
        upscale_delay: Duration = Field(30.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
                                        description="consecutive ticks wanting more")
        downscale_delay: Duration = Field(600.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
                                          description="consecutive ticks wanting fewer")
        downscale_to_zero_delay: Duration | None = Field(
            None, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="1 → 0; default: downscale_delay")
        initial_replicas: int | None = Field(None, ge=0, le=L.MAX_REPLICAS,
                                             description="default: min_replicas")
        sync_period: Duration = Field(
            1.0, validate_default=False, ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
            description="capsim's evaluation period; Ray's loop ticks every 0.1 s")

    def __init__(self, params: Spec):
        assert isinstance(params, RayServe.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.sync_period
        self.window_s = params.look_back_period
        self.up_factor = params.upscaling_factor or params.smoothing_factor
        self.down_factor = params.downscaling_factor or params.smoothing_factor
        self.delay = DelayCounter(params.upscale_delay, params.downscale_delay,
                                  params.downscale_to_zero_delay)
        self.last_t: float | None = None

    def initial_replicas(self) -> int:
        return self.p.initial_replicas if self.p.initial_replicas is not None else 0

    def decision(self, total: float, running: int, target: int, low: int, high: int,
                 ticks: int = 1) -> int:
        """One evaluation: the new target from the load and the running replicas."""
        if running == 0:  # cold-start fast path: no delay
            if total > 0:
                return max(math.ceil(1 * self.up_factor - 1e-9), target)
            return target
        desired = total / self.p.target_ongoing_requests  # = running · total/(target·running)
        scaled = apply_scaling_factors(desired, running, self.up_factor, self.down_factor)
        bounded = clamp(scaled, low, high)
        return self.delay.apply(bounded, target, ticks)

    def decide(self, obs: Observation) -> int:
        ticks = 1 if self.last_t is None else max(
            1, round((obs.t - self.last_t) / CONTROL_LOOP_INTERVAL_S))
        self.last_t = obs.t
        new = self.decision(obs.concurrent_requests, obs.ready, obs.desired,
                            obs.min_replicas, obs.max_replicas, ticks)
        return clamp(new, obs.min_replicas, obs.max_replicas)
