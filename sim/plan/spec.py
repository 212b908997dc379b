"""The ``plan:`` section of a scenario: what the planner may change, and what "holds" means.

::

    plan:
      deployment: chat                  # default: the scenario's only deployment
      shapes: [minimal, throughput, {accelerator: H200_141GB, count: 2, precision: FP8}]
      replicas: {min: 1, max: 32}
      policies: [static, fireworks]     # autoscaled candidates: min/max replicas searched
      regions: [US, EUROPE]
      seeds: 3                          # fresh seeds the best candidates are confirmed on
      objective: cost                   # or ttft: the lowest p99 TTFT within budget_usd_per_hour
      constraints: {max_503_share: 0.001}

The scenario's ``slo`` is the latency objective; ``constraints`` add the rest.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sim.perf import ShapeSpec
from sim.policies.registry import parse_params
from sim.spec import Spec

# The load target a policy's coordinate search varies when the plan names none:
# the key inside the policy's parameters, and the values tried.
DEFAULT_TARGETS: dict[str, dict[str, list[float]]] = {
    "fireworks": {"load_targets.default": [0.5, 0.65, 0.8, 0.95]},
    "ray_serve": {"target_ongoing_requests": [1.0, 2.0, 4.0, 8.0]},
}


class ReplicaRange(Spec):
    """Replica counts the search may use."""

    min: int = Field(1, ge=0, description="fewest replicas of a static fleet (and minimum floor)")
    max: int = Field(16, ge=1, description="most replicas any candidate may use")

    @model_validator(mode="after")
    def _ordered(self) -> ReplicaRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class PolicyCandidate(Spec):
    """An autoscaler to try: its parameters, and the targets its coordinate search tries."""

    policy: str = Field(description="a policy name: static, fireworks, hpa, kpa, …")
    params: dict[str, Any] = Field(
        default_factory=dict, description="fixed parameters of the policy (its autoscaler keys)"
    )
    targets: dict[str, list[float]] | None = Field(
        None, description="key inside the policy's parameters → values tried "
                          "(default: the policy's load target, where capsim knows one)",
    )

    @model_validator(mode="after")
    def _valid(self) -> PolicyCandidate:
        if self.policy == "static":
            if self.params or self.targets:
                raise ValueError("static takes no params or targets: the search sets replicas")
        else:
            parse_params({"policy": self.policy, **self.params})  # unknown names, keys fail
        for key, values in (self.targets or {}).items():
            if not values:
                raise ValueError(f"targets.{key} needs at least one value")
        return self

    @property
    def label(self) -> str:
        return self.policy

    @property
    def is_static(self) -> bool:
        return self.policy == "static"

    def target_values(self) -> dict[str, list[float]]:
        if self.targets is not None:
            return dict(self.targets)
        return dict(DEFAULT_TARGETS.get(self.policy, {}))


class Constraints(Spec):
    """What a candidate must also do to hold, beyond the scenario's ``slo``."""

    min_slo_attainment: float = Field(
        0.99, gt=0, le=1, description="share of requests that must meet every objective"
    )
    min_served_share: float = Field(
        0.99, gt=0, le=1, description="share of requests that must finish ok"
    )
    max_503_share: float | None = Field(
        None, ge=0, le=1, description="most HTTP 503 responses per request"
    )


class PlanSpec(Spec):
    deployment: str | None = Field(None, description="default: the scenario's only deployment")
    shapes: list[str | ShapeSpec] | None = Field(
        None, min_length=1, description="preset names or shapes (default: the deployment's)"
    )
    replicas: ReplicaRange = Field(default_factory=ReplicaRange)
    policies: list[str | PolicyCandidate] = Field(
        default_factory=lambda: list[str | PolicyCandidate](["static"]), min_length=1,
        description="static fleets and autoscalers to try",
    )
    regions: list[str] | None = Field(
        None, min_length=1, description="regions to try (default: the deployment's)"
    )
    seeds: int = Field(3, ge=2, le=50, description="fresh seeds the best few are confirmed on")
    confirm: int = Field(3, ge=1, le=20, description="how many of the best are confirmed")
    objective: Literal["cost", "ttft"] = Field(
        "cost", description="cost: cheapest that holds; ttft: lowest p99 TTFT within the budget"
    )
    budget_usd_per_hour: float | None = Field(
        None, gt=0, description="with objective ttft: the most a candidate may cost per hour"
    )
    constraints: Constraints = Field(default_factory=Constraints)

    @field_validator("policies", mode="after")
    @classmethod
    def _policies(cls, values: list[str | PolicyCandidate]) -> list[str | PolicyCandidate]:
        out: list[str | PolicyCandidate] = []
        for v in values:
            out.append(PolicyCandidate(policy=v) if isinstance(v, str) else v)
        labels = [p.label for p in out if isinstance(p, PolicyCandidate)]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"policy {dupes[0]!r} is listed twice")
        return out

    @model_validator(mode="after")
    def _budget(self) -> PlanSpec:
        if self.objective == "ttft" and self.budget_usd_per_hour is None:
            raise ValueError("objective ttft needs budget_usd_per_hour")
        return self

    def candidates(self) -> list[PolicyCandidate]:
        return [p for p in self.policies if isinstance(p, PolicyCandidate)]
