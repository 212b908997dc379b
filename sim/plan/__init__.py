"""``capsim plan``: the cheapest configuration that holds the SLO.

A scenario with a ``plan:`` section names what may change — shapes, replica
counts, autoscaling policies, regions — and its ``slo`` (plus
``plan.constraints``) what holding means::

    from sim.plan import plan, write_plan
    result = plan("scenarios/plan/chat.yaml")
    result.best.config.describe(), result.best.mean("cost_per_hour")
    write_plan(result, "results/chat-plan")

The search prunes analytically (:mod:`sim.plan.bounds`), simulates
(:mod:`sim.plan.search`) and confirms the best few on fresh seeds.  How-to:
``docs/howto/size-deployment.md``.
"""

from sim.plan.bounds import Bound, Traffic, bound, idle_ttft, measure_traffic
from sim.plan.output import answer_line, pareto_figure, plan_document, print_plan, write_plan
from sim.plan.search import (
    Config,
    Evaluation,
    PlanResult,
    Run,
    judge,
    p99_ttft,
    plan,
    split_plan,
)
from sim.plan.spec import Constraints, PlanSpec, PolicyCandidate, ReplicaRange

__all__ = [
    "Bound",
    "Config",
    "Constraints",
    "Evaluation",
    "PlanResult",
    "PlanSpec",
    "PolicyCandidate",
    "ReplicaRange",
    "Run",
    "Traffic",
    "answer_line",
    "bound",
    "idle_ttft",
    "judge",
    "measure_traffic",
    "p99_ttft",
    "pareto_figure",
    "plan",
    "plan_document",
    "print_plan",
    "split_plan",
    "write_plan",
]
