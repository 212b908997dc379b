"""``hpa``: the Kubernetes Horizontal Pod Autoscaler (``autoscaling/v2``).

Source: ``kubernetes/kubernetes`` ``pkg/controller/podautoscaler/``
(``replica_calculator.go``: ``calcPlainMetricReplicas``, ``groupPods``,
``GetExternalPerPodMetricReplicas``; ``horizontal.go``:
``stabilizeRecommendationWithBehaviors``,
``convertDesiredReplicasWithBehaviorRate``,
``calculateScaleUpLimitWithScalingRules``,
``calculateScaleDownLimitWithBehaviors``), and
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/.
Defaults are the controller manager's and the API's: sync period 15 s,
tolerance 0.1, scale-up {Percent 100 and Pods 4
per 15 s, selectPolicy Max, no stabilization}, scale-down {Percent 100 per
15 s, 300 s stabilization}.

Each metric is a *Pods* metric with an average-value target: the
deployment-wide value over ``metrics_window`` shared by the ready replicas
(the router balances them).  ``utilization`` is the share of a replica's
capacity the load asks for — the users' demand in output tokens/s over what a
replica generates at saturation (:func:`~sim.policies.registry.capacity_load`)
— the analogue of CPU utilization (kubectl autoscale's default target is 80 %).  Replicas map to
pod phases as a controller sees them: ``pending`` and ``scheduling``
(waiting for a node, pulling the image) are Pending pods, which are ignored;
``downloading`` and ``initializing`` replicas run but export no metric yet,
so they are *missing* (counted at the target when scaling down, at 0 when
scaling up); ``draining`` ones are being deleted, hence ignored.  The HPA
never goes below one replica (``minReplicas`` ≥ 1 unless the alpha
``HPAScaleToZero`` gate: use ``keda`` for scale to zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

from sim import limits as L
from sim.policies.registry import Observation, Policy, capacity_load, clamp, register
from sim.spec import Spec
from sim.units import Duration

Metric = Literal[
    "utilization", "concurrent_requests", "requests_per_second",
    "prompt_tokens_per_second", "tokens_generated_per_second",
]


class ScalingPolicy(Spec):
    """One rate limit: change by ``value`` pods or percent per ``period``."""

    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0, le=100_000)
    period: Duration = Field(ge=L.MIN_PERIOD_S, le=1800, description="periodSeconds, 1s to 30m")


class ScaleUpRules(Spec):
    stabilization_window: Duration = Field(0.0, validate_default=False, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: [ScalingPolicy(type="Percent", value=100, period="15s"),
                                 ScalingPolicy(type="Pods", value=4, period="15s")],
        min_length=1,
    )


class ScaleDownRules(Spec):
    stabilization_window: Duration = Field(300.0, validate_default=False, ge=0, le=3600)
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    policies: list[ScalingPolicy] = Field(
        default_factory=lambda: [ScalingPolicy(type="Percent", value=100, period="15s")],
        min_length=1,
    )


class Behavior(Spec):
    scale_up: ScaleUpRules = Field(default_factory=ScaleUpRules)
    scale_down: ScaleDownRules = Field(default_factory=ScaleDownRules)


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)


def pods_metric_replicas(
    values: Sequence[float],
    target: float,
    current: int,
    *,
    missing: int = 0,
    unready: int = 0,
    tolerance: float = 0.1,
) -> int:
    """Replicas for one Pods/Resource metric (``calcPlainMetricReplicas``).

    ``values`` are the samples of the pods counted ready, ``missing`` running
    pods without a sample, ``unready`` pods whose samples are ignored (CPU
    only); Pending and deleted pods are left out by the caller.
    """
    if not values:
        raise ValueError("no pod reports the metric")
    ratio = sum(values) / len(values) / target
    scale_up_with_unready = unready > 0 and ratio > 1.0
    if not scale_up_with_unready and missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return _ceil(ratio * len(values))
    filled = list(values)
    if missing:
        filled += [target if ratio < 1.0 else 0.0] * missing
    if scale_up_with_unready:
        filled += [0.0] * unready
    new_ratio = sum(filled) / len(filled) / target
    if (abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio)
            or (ratio > 1.0 > new_ratio)):
        return current
    new = _ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def external_metric_replicas(usage: float, target_per_pod: float, current: int,
                             tolerance: float = 0.1) -> int:
    """Replicas for an External metric with an AverageValue target (what KEDA uses)."""
    if current == 0:
        return _ceil(usage / target_per_pod) if usage > 0 else 0
    ratio = usage / (target_per_pod * current)
    if abs(1.0 - ratio) > tolerance:
        return _ceil(usage / target_per_pod)
    return current


class Normalizer:
    """The behavior path of ``horizontal.go``: stabilization windows, then rate limits.

    Keeps the unstabilized recommendations and the scale events, as the
    controller does per HPA.
    """

    def __init__(self, behavior: Behavior):
        self.up = behavior.scale_up
        self.down = behavior.scale_down
        self.recommendations: list[tuple[float, int]] = []
        self.up_events: list[tuple[float, int]] = []
        self.down_events: list[tuple[float, int]] = []

    def stabilize(self, now: float, current: int, desired: int) -> int:
        """``stabilizeRecommendationWithBehaviors``: min over the up window, max over the
        down window (each including ``desired``), applied to ``current``."""
        up_cut = now - self.up.stabilization_window
        down_cut = now - self.down.stabilization_window
        up_rec = down_rec = desired
        for t, rec in self.recommendations:
            if t > up_cut + 1e-9:
                up_rec = min(up_rec, rec)
            if t > down_cut + 1e-9:
                down_rec = max(down_rec, rec)
        recommendation = max(current, up_rec)
        recommendation = min(recommendation, down_rec)
        keep = min(up_cut, down_cut)
        self.recommendations = [(t, r) for t, r in self.recommendations if t > keep + 1e-9]
        self.recommendations.append((now, desired))
        return recommendation

    @staticmethod
    def _change(events: list[tuple[float, int]], now: float, period: float) -> int:
        return sum(change for t, change in events if t > now - period + 1e-9)

    def scale_up_limit(self, now: float, current: int) -> int:
        rules = self.up
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = (current - self._change(self.up_events, now, policy.period)
                     + self._change(self.down_events, now, policy.period))
            if policy.type == "Pods":
                proposals.append(start + policy.value)
            else:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        return min(proposals) if rules.select_policy == "Min" else max(proposals)

    def scale_down_limit(self, now: float, current: int) -> int:
        rules = self.down
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = (current - self._change(self.up_events, now, policy.period)
                     + self._change(self.down_events, now, policy.period))
            if policy.type == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        return max(proposals) if rules.select_policy == "Min" else min(proposals)

    def rate_limit(self, now: float, current: int, desired: int, low: int, high: int) -> int:
        """``convertDesiredReplicasWithBehaviorRate``."""
        if desired > current:
            allowed = min(high, max(self.scale_up_limit(now, current), current))
            return min(desired, allowed)
        if desired < current:
            allowed = max(low, min(self.scale_down_limit(now, current), current))
            return max(desired, allowed)
        return desired

    def normalize(self, now: float, current: int, desired: int, low: int, high: int) -> int:
        return self.rate_limit(now, current, self.stabilize(now, current, desired), low, high)

    def record(self, now: float, before: int, after: int) -> None:
        """``storeScaleEvent``: remember a change for the rate limits' periods."""
        if after > before:
            longest = max(p.period for p in self.up.policies)
            self.up_events = [e for e in self.up_events if e[0] > now - longest + 1e-9]
            self.up_events.append((now, after - before))
        elif after < before:
            longest = max(p.period for p in self.down.policies)
            self.down_events = [e for e in self.down_events if e[0] > now - longest + 1e-9]
            self.down_events.append((now, before - after))


def per_replica_total(obs: Observation, metric: str, window_s: float | None = None) -> float:
    """The deployment-wide value of ``metric`` (``utilization`` in replica capacities:
    :func:`~sim.policies.registry.capacity_load`)."""
    m = obs.window(window_s) if window_s is not None else obs
    if metric == "utilization":
        return capacity_load(obs, window_s)
    return {
        "concurrent_requests": m.concurrent_requests,
        "requests_per_second": m.requests_per_s,
        "prompt_tokens_per_second": m.prompt_tokens_per_s,
        "tokens_generated_per_second": m.output_tokens_per_s,
    }[metric]


def _default_metrics() -> dict[Metric, float]:
    return {"utilization": 0.8}


@register("hpa")
class Hpa(Policy):
    class Params(Spec):
        policy: Literal["hpa"] = "hpa"
        metrics: dict[Metric, Annotated[float, Field(gt=0, le=1e12)]] = Field(
            default_factory=_default_metrics, min_length=1,
            description="target average value per replica for each metric; the max over metrics",
        )
        tolerance: float = Field(0.1, ge=0, lt=1, description="no change within this ratio")
        behavior: Behavior = Field(
            default_factory=Behavior,
            description="scale_up / scale_down: stabilization_window, select_policy "
                        "(Max, Min, Disabled), policies [{type: Pods|Percent, value, period}]")
        sync_period: Duration = Field(15.0, validate_default=False,
                                      ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                      description="--horizontal-pod-autoscaler-sync-period")
        metrics_window: Duration = Field(
            30.0, validate_default=False, ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
            description="each sample averages this (a 30 s scrape; capsim's)"
        )
        initial_replicas: int | None = Field(None, ge=0, le=L.MAX_REPLICAS,
                                             description="default: 1")

    def __init__(self, params: Spec):
        assert isinstance(params, Hpa.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.sync_period
        self.window_s = params.metrics_window
        self.normalizer = Normalizer(params.behavior)

    def initial_replicas(self) -> int:
        return self.p.initial_replicas if self.p.initial_replicas is not None else 1

    def metric_replicas(self, obs: Observation) -> int | None:
        """Max over metrics of the replicas each asks for; None if no pod reports one."""
        values_from = obs.ready
        if values_from == 0:
            return None
        missing = obs.stage("downloading") + obs.stage("initializing")
        proposals = []
        for name, target in self.p.metrics.items():
            per_pod = per_replica_total(obs, name) / values_from
            proposals.append(pods_metric_replicas(
                [per_pod] * values_from, target, obs.desired, missing=missing,
                tolerance=self.p.tolerance))
        return max(proposals)

    def floor(self, obs: Observation) -> int:
        return clamp(max(1, obs.min_replicas), 0, obs.max_replicas)

    def reconcile(self, obs: Observation, proposal: int | None) -> int:
        """``reconcileAutoscaler`` from the replicas the metrics ask for."""
        current, low, high = obs.desired, self.floor(obs), obs.max_replicas
        if current == 0 and low != 0:
            return 0  # autoscaling is disabled while the target is at zero
        if current > high:
            new = high
        elif current < low:
            new = low
        elif proposal is None:
            return current  # no metrics: the HPA does not scale
        else:
            new = self.normalizer.normalize(obs.t, current, proposal, low, high)
        if new != current:
            self.normalizer.record(obs.t, current, new)
        return new

    def decide(self, obs: Observation) -> int:
        new = self.reconcile(obs, self.metric_replicas(obs))
        return clamp(new, obs.min_replicas, obs.max_replicas)
