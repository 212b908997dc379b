"""``static``: a fixed number of replicas, always."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim import limits as L
from sim.policies.registry import Observation, Policy, clamp, register
from sim.spec import Spec


@register("static")
class Static(Policy):
    class Params(Spec):
        policy: Literal["static"] = "static"
        replicas: int = Field(ge=0, le=L.MAX_REPLICAS,
                              description="replicas kept ready for the whole run")

    sync_period_s = 3600.0  # nothing to decide; crashes are replaced when they happen
    scales_from_zero = False  # N replicas, always: even N = 0

    def __init__(self, params: Spec):
        assert isinstance(params, Static.Params)
        super().__init__(params)
        self.replicas = params.replicas

    def initial_replicas(self) -> int:
        return self.replicas

    def decide(self, obs: Observation) -> int:
        return clamp(self.replicas, obs.min_replicas, obs.max_replicas)
