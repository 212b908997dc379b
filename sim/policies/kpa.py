"""``kpa``: the Knative Pod Autoscaler.

Sources: ``knative/serving`` ``pkg/autoscaler/scaling/autoscaler.go``
(``Scale``), ``pkg/autoscaler/config/config.go`` (defaults),
``pkg/reconciler/autoscaling/resources/target.go`` (``ResolveMetricTarget``),
``pkg/reconciler/autoscaling/kpa/scaler.go`` (``handleScaleToZero``,
``applyBounds``) and ``kpa.go`` (``computeActiveCondition``);
https://knative.dev/docs/serving/autoscaling/.

The metric is the revision's concurrency: requests queued or in service,
summed over replicas (the router's queue standing in for the activator's).
Knative averages 1 s buckets over a 60 s stable and a 6 s panic window; the
control plane averages the exact integral of concurrency over the same
windows, with snapshots at every 2 s tick, which is the mean of those buckets.
``target = max(0.01, total × target_utilization)`` with ``total`` the
container concurrency (0 means unlimited and targets 100), or the ``target``
annotation when it is smaller.  When neither is set, capsim's reading: the
load is counted in replica capacities — the users' demand in output tokens/s
over one replica's saturation throughput
(:func:`~sim.policies.registry.capacity_load`) — and the target is
``target_utilization`` of one replica, because a replica's ``max_concurrency``
is far above the concurrency at which its throughput saturates, and a
concurrency target near it has no stable fleet size (before any request is
served, the concurrency over the replica's ``max_concurrency``).  Not modelled: the activation
timeout of a revision that never becomes ready, and the activator's routing
by excess burst capacity (computed, reported in ``excess_burst_capacity``;
use ``cold_start_mode: queue`` for the activator's buffering at zero).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

from pydantic import Field

from sim import limits as L
from sim.policies.registry import Observation, Policy, capacity_load, clamp, register
from sim.spec import Spec
from sim.units import Duration

TARGET_MIN = 0.01  # autoscaling.TargetMin


def resolve_target(container_concurrency: float, utilization: float,
                   annotation: float | None = None,
                   default_total: float = 100.0) -> tuple[float, float]:
    """``ResolveMetricTarget`` for concurrency: (target per replica, total per replica)."""
    total = container_concurrency if container_concurrency > 0 else default_total
    if annotation is not None:
        total = min(annotation, container_concurrency) if container_concurrency > 0 else annotation
    return max(TARGET_MIN, total * utilization), total


class Decider:
    """``(*autoscaler).Scale``: stable and panic modes, rate limits, scale-down delay."""

    def __init__(self, *, max_scale_up_rate: float = 1000.0, max_scale_down_rate: float = 2.0,
                 panic_threshold: float = 2.0, stable_window_s: float = 60.0,
                 scale_down_delay_s: float = 0.0, target_burst_capacity: float = 200.0,
                 reachable: bool = True):
        self.msur, self.msdr = max_scale_up_rate, max_scale_down_rate
        self.panic_threshold = panic_threshold
        self.stable_window_s = stable_window_s
        self.delay_s = scale_down_delay_s
        self.tbc = target_burst_capacity
        self.reachable = reachable
        self.panic_time: float | None = None
        self.max_panic_pods = 0
        self.delay_window: deque[tuple[float, int]] = deque()

    def start(self, now: float, ready: int) -> None:
        """A new autoscaler starts in panic mode when more than one pod is ready."""
        if ready > 1:
            self.panic_time = now
        self.max_panic_pods = ready

    def scale(self, now: float, ready: int, stable: float, panic: float, target: float,
              total: float) -> tuple[int, float]:
        """(desired pod count, excess burst capacity)."""
        ready_count = max(1.0, float(ready))
        max_up = math.ceil(self.msur * ready_count)
        max_down = math.floor(ready_count / self.msdr) if self.reachable else 0
        dspc = math.ceil(stable / target - 1e-9)
        dppc = math.ceil(panic / target - 1e-9)
        desired_stable = int(min(max(dspc, max_down), max_up))
        desired_panic = int(min(max(dppc, max_down), max_up))
        over = dppc / ready_count >= self.panic_threshold
        if over:
            self.panic_time = now  # enter or extend panic
        elif self.panic_time is not None and self.panic_time + self.stable_window_s < now:
            self.panic_time = None  # the surge has reached the stable window
            self.max_panic_pods = 0
        want = desired_stable
        if self.panic_time is not None:
            want = max(want, desired_panic)
            self.max_panic_pods = max(self.max_panic_pods, want)
            want = self.max_panic_pods  # never scale down in panic
        if self.delay_s > 0:
            self.delay_window.append((now, want))
            while self.delay_window and self.delay_window[0][0] <= now - self.delay_s + 1e-9:
                self.delay_window.popleft()
            want = max(w for _, w in self.delay_window)
        return want, self.excess_burst(ready, total, panic)

    def excess_burst(self, ready: int, total: float, panic: float) -> float:
        """Excess burst capacity: spare concurrency beyond ``target_burst_capacity``."""
        if self.tbc == 0:
            return 0.0
        if self.tbc > 0:
            return math.floor(ready * total - self.tbc - panic)
        return -1.0


@register("kpa")
class Kpa(Policy):
    class Params(Spec):
        policy: Literal["kpa"] = "kpa"
        container_concurrency: int | None = Field(
            None, ge=0, le=L.MAX_CONCURRENCY,
            description="hard limit per replica (none: the load is read in "
                        "replica capacities); 0 = unlimited")
        target: float | None = Field(
            None, gt=0, le=1e12,
            description="autoscaling.knative.dev/target: per-replica concurrency")
        target_utilization: float = Field(
            0.7, gt=0, le=1, description="container-concurrency-target-percentage / 100")
        container_concurrency_target_default: float = Field(
            100.0, gt=0, le=1e6, description="the total when container_concurrency is 0")
        stable_window: Duration = Field(60.0, validate_default=False, ge=6, le=3600,
                                        description="6s to 1h")
        panic_window_percentage: float = Field(
            10.0, ge=1, le=100, description="panic window as % of the stable window")
        panic_threshold_percentage: float = Field(
            200.0, ge=110, le=1000, description="panic when panic pods / ready ≥ this %")
        max_scale_up_rate: float = Field(1000.0, gt=1, le=1e6,
                                         description="at most ceil(rate × ready)")
        max_scale_down_rate: float = Field(2.0, gt=1, le=1e6,
                                           description="at least floor(ready / rate)")
        scale_to_zero_grace_period: Duration = Field(
            30.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="inactive this long (after a stable window at 0) before 0")
        scale_to_zero_pod_retention_period: Duration = Field(
            0.0, validate_default=False, ge=0, le=L.MAX_WINDOW_S,
            description="keep the last pod at least this long")
        scale_down_delay: Duration = Field(
            0.0, validate_default=False, ge=0, le=3600,
            description="scale down to the max wanted over this window")
        enable_scale_to_zero: bool = Field(True, description="else never below 1")
        initial_scale: int = Field(1, ge=0, le=L.MAX_REPLICAS, description="replicas at creation")
        target_burst_capacity: float = Field(
            200.0, ge=-1, le=1e6, description="for the excess burst capacity (reported only)")
        tick_interval: Duration = Field(2.0, validate_default=False,
                                        ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                        description="how often the autoscaler decides")

    def __init__(self, params: Spec):
        assert isinstance(params, Kpa.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.tick_interval
        self.window_s = params.stable_window
        self.panic_window_s = params.stable_window * params.panic_window_percentage / 100
        self.windows_s = (self.panic_window_s,)
        self.decider = Decider(
            max_scale_up_rate=params.max_scale_up_rate,
            max_scale_down_rate=params.max_scale_down_rate,
            panic_threshold=params.panic_threshold_percentage / 100,
            stable_window_s=params.stable_window,
            scale_down_delay_s=params.scale_down_delay,
            target_burst_capacity=params.target_burst_capacity,
        )
        self.started = False
        self.status = "activating"  # the PodAutoscaler's Active condition
        self.status_since = 0.0
        self.initialized = False
        self.excess_burst_capacity = 0.0

    def initial_replicas(self) -> int:
        return self.p.initial_scale

    def scaled_from_zero(self, t: float) -> None:
        """The activator saw a request at zero: the revision is activating."""
        self._mark("activating", t)

    def _mark(self, status: str, t: float) -> None:
        if status != self.status:
            self.status, self.status_since = status, t

    def _min_ready(self, obs: Observation) -> int:
        if not self.initialized:
            return max(self.p.initial_scale, obs.min_replicas)
        return max(obs.min_replicas, 1)

    def handle_scale_to_zero(self, now: float, want: int) -> tuple[int, bool]:
        """``handleScaleToZero``: (scale, whether to apply it); -1 = unknown."""
        p = self.p
        if want != 0:
            return want, True
        if not p.enable_scale_to_zero:
            return 1, True
        if self.status == "activating":
            return -1, False
        if self.status == "active":
            if now - self.status_since >= p.stable_window - 1e-9:
                return 0, False  # mark the PA inactive; the activator joins the path
            return 1, True
        grace = max(p.scale_to_zero_grace_period, p.scale_to_zero_pod_retention_period)
        if now - self.status_since >= grace - 1e-9:
            return 0, True
        return 0, False

    def update_status(self, now: float, want: int, ready: int, min_ready: int) -> None:
        """``computeActiveCondition`` after a reconcile."""
        if ready >= min_ready:
            self.initialized = True
        if want == 0 or min_ready == 0:
            self._mark("inactive", now)
        elif ready < min_ready:
            self._mark("activating" if want > 0 or self.status != "inactive" else "inactive",
                       now)
        elif want > 0 or self.status != "inactive":
            self._mark("active", now)

    def in_capacity_units(self, obs: Observation) -> bool:
        """Whether the load is read in replica capacities: no concurrency is set and the
        sizes of the requests served so far are known."""
        p = self.p
        return (p.container_concurrency is None and p.target is None
                and obs.saturation_tokens_per_s > 0 and obs.mean_output_tokens > 0)

    def decide(self, obs: Observation) -> int:
        p = self.p
        if not self.started:
            self.started = True
            self.decider.start(obs.t, obs.ready)
        cc = (p.container_concurrency if p.container_concurrency is not None
              else obs.capacity_per_replica)
        target, total = resolve_target(cc, p.target_utilization, p.target,
                                       p.container_concurrency_target_default)
        stable = obs.window(self.window_s).concurrent_requests
        panic = obs.window(self.panic_window_s).concurrent_requests
        if self.in_capacity_units(obs):
            # no concurrency given: the load in replica capacities, the target a share of one
            want, _ = self.decider.scale(
                obs.t, obs.ready, capacity_load(obs, self.window_s),
                capacity_load(obs, self.panic_window_s), p.target_utilization, 1.0)
            self.excess_burst_capacity = self.decider.excess_burst(obs.ready, total, panic)
        else:
            want, self.excess_burst_capacity = self.decider.scale(
                obs.t, obs.ready, stable, panic, target, total)
        min_ready = self._min_ready(obs)
        low = obs.min_replicas
        if p.initial_scale > 1 and not self.initialized:
            low = max(low, p.initial_scale)
        want = clamp(want, low, obs.max_replicas)
        scale, apply = self.handle_scale_to_zero(obs.t, want)
        self.update_status(obs.t, scale, obs.ready, min_ready)
        return clamp(scale if apply else obs.desired, obs.min_replicas, obs.max_replicas)
