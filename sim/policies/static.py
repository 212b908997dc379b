"""``static``: a fixed number of replicas, always."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.policies.registry import Observation, Policy, register
from sim.spec import Spec


@register("static")
class Static(Policy):
    class Params(Spec):
        policy: Literal["static"] = "static"
        replicas: int = Field(ge=0, description="replicas kept ready for the whole run")

    params: Params

    def initial_replicas(self) -> int:
        return self.params.replicas

    def decide(self, obs: Observation) -> int:
        return self.params.replicas
