"""The control plane: replicas from request to stop, placement, scaling, faults.

Everything here is a SimPy process or a callback of the run loop; the request
path (:class:`sim.engine.ports.RequestPath`) only sees replicas once they are ready.

Replica stages: ``pending`` (waiting for GPUs) → ``scheduling`` →
``downloading`` (weights: the shape's weight bytes / download rate) →
``initializing`` → ``ready`` → ``draining`` (no new requests; in-flight ones
finish) → ``stopped``.  A replica removed before it is ready stops at once; a
crash or an outage stops it wherever it is, and its in-flight requests go back
to the router as immediate retries.

Deployment states follow the provider's API: ``CREATING`` until the replicas
it starts with are ready (at once when it starts with none), then ``READY``;
``DELETING`` then ``DELETED`` when a deployment with ``min_replicas: 0`` has
had no traffic for 7 days.  Display labels (the provider's
deployment guide): ``Inactive`` when
READY with ``max_replicas == 0`` and no ready replica; ``Scaled to 0`` when
READY with ``min_replicas == 0 < max_replicas``, desired 0 and no ready replica.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from sim.engine.ports import RequestPath
from sim.fleet.inventory import Inventory
from sim.policies.registry import LIVE_STAGES, Observation, Policy, WindowMetrics

STAGES = ("pending", "scheduling", "downloading", "initializing", "ready", "draining", "stopped")
STARTING = ("pending", "scheduling", "downloading", "initializing")
AUTO_DELETE_S = 7 * 86400.0  # the provider: min_replicas 0 deleted after 7 days idle

Sampler = Callable[[np.random.Generator], float]


@dataclass
class ColdStart:
    """Seconds of each cold-start phase, drawn per replica."""

    scheduling: Sampler
    download_rate: Sampler  # bytes/s
    initialization: Sampler


@dataclass
class DeploymentControlPlan:
    """What the control plane needs to run one deployment."""

    name: str
    accelerator: str
    gpus: int
    weight_bytes: float
    candidates: list[str]  # datacenters replicas may use (one when pinned)
    pinned: bool
    min_replicas: int
    max_replicas: int
    policy: Policy
    cold_start: ColdStart
    initially_ready: bool
    rng: np.random.Generator
    #: output tokens/s of one replica at saturation for (prompt, output) sizes (None: unknown)
    saturation: Callable[[float, float], float] | None = None


@dataclass(eq=False)
class ReplicaLife:
    """One replica, from request to stop: what billing and the timeline read."""

    id: int
    deployment: int
    gpus: int
    stage: str = "pending"
    datacenter: str = ""
    requested_s: float = 0.0
    allocated_s: float = math.nan
    ready_s: float = math.nan
    stopped_s: float = math.nan
    kernel: int = -1  # index in the request path once ready
    crashed: bool = False
    cold_start: bool = True
    process: simpy.Process | None = None
    granted: simpy.Event | None = None


@dataclass(eq=False)
class DeploymentControl:
    plan: DeploymentControlPlan
    index: int
    desired: int = 0
    state: str = "CREATING"
    replicas: list[ReplicaLife] = field(default_factory=list)
    pinned_dc: str | None = None
    metrics: list[tuple[float, ...]] = field(default_factory=list)
    saturation_cache: dict[tuple[int, int], float] = field(default_factory=dict)
    pending_area: float = 0.0
    pending_t: float = 0.0
    cold_starts: int = 0
    crashes: int = 0

    def live(self) -> list[ReplicaLife]:
        """Replicas that count towards the desired number (not draining or stopped)."""
        return [r for r in self.replicas if r.stage in STARTING or r.stage == "ready"]

    def count(self, stage: str) -> int:
        return sum(1 for r in self.replicas if r.stage == stage)


class ControlPlane:
    """Placement, lifecycles and scaling of every deployment of a run."""

    def __init__(
        self,
        plans: list[DeploymentControlPlan],
        inventory: Inventory,
        *,
        replica_mtbf_s: float | None = None,
        fault_rng: np.random.Generator | None = None,
    ):
        self.deps = [DeploymentControl(plan=p, index=i) for i, p in enumerate(plans)]
        self.inventory = inventory
        self.mtbf = replica_mtbf_s
        self.fault_rng = fault_rng or np.random.default_rng(0)
        self.lives: list[ReplicaLife] = []
        self.pending: list[ReplicaLife] = []
        self.sim: RequestPath | None = None

    # -- set-up --------------------------------------------------------------
    def start(self, sim: RequestPath) -> None:
        """Create the initial replicas and start the controllers (at t = 0)."""
        self.sim = sim
        env = sim.env
        for dep in self.deps:
            plan = dep.plan
            if plan.pinned:
                dep.pinned_dc = self.inventory.choose(plan.candidates, plan.accelerator, 0)
            initial = _clamp(plan.policy.initial_replicas(), plan.min_replicas, plan.max_replicas)
            dep.desired = initial
            for _ in range(initial):
                self._new_replica(dep, warm=plan.initially_ready)
            if initial == 0:
                dep.state = "READY"
            self._update_notify(dep)
            env.process(self._controller(dep))
        self._place_pending()

    # -- placement -----------------------------------------------------------
    def _candidates(self, dep: DeploymentControl) -> list[str]:
        if dep.plan.pinned:
            return [dep.pinned_dc] if dep.pinned_dc else []
        return dep.plan.candidates

    def _place_pending(self) -> None:
        """Give GPUs to pending replicas, oldest first, wherever they fit."""
        assert self.sim is not None
        still = []
        for life in self.pending:
            dep = self.deps[life.deployment]
            plan = dep.plan
            dc = self.inventory.choose(self._candidates(dep), plan.accelerator, plan.gpus)
            if dc is None:
                still.append(life)
                continue
            self._touch_pending(dep)
            self.inventory.allocate(dc, plan.accelerator, plan.gpus, dep.index)
            life.datacenter = dc
            life.allocated_s = self.sim.env.now
            if life.granted is not None and not life.granted.triggered:
                life.granted.succeed()
        self.pending = still

    def _touch_pending(self, dep: DeploymentControl) -> None:
        assert self.sim is not None
        now = self.sim.env.now
        waiting = sum(1 for life in self.pending if life.deployment == dep.index)
        dep.pending_area += waiting * (now - dep.pending_t)
        dep.pending_t = now

    # -- lifecycle -----------------------------------------------------------
    def _new_replica(self, dep: DeploymentControl, *, warm: bool = False) -> ReplicaLife:
        assert self.sim is not None
        env = self.sim.env
        life = ReplicaLife(id=len(self.lives), deployment=dep.index, gpus=dep.plan.gpus,
                           requested_s=env.now, cold_start=not warm)
        self.lives.append(life)
        dep.replicas.append(life)
        self._touch_pending(dep)
        life.granted = env.event()
        self.pending.append(life)
        life.process = env.process(self._life(dep, life))
        return life

    def _life(self, dep: DeploymentControl, life: ReplicaLife) -> simpy.events.ProcessGenerator:
        assert self.sim is not None
        env = self.sim.env
        plan = dep.plan
        try:
            assert life.granted is not None
            if not life.granted.triggered:
                yield life.granted
            if env.now > life.requested_s:
                life.cold_start = True  # it waited for GPUs: it was not already running
            if life.cold_start:
                dep.cold_starts += 1
                cs = plan.cold_start
                life.stage = "scheduling"
                yield env.timeout(cs.scheduling(plan.rng))
                life.stage = "downloading"
                yield env.timeout(plan.weight_bytes / cs.download_rate(plan.rng))
                life.stage = "initializing"
                yield env.timeout(cs.initialization(plan.rng))
            life.stage = "ready"
            life.ready_s = env.now
            life.kernel = self.sim.ready_replica(dep.index, life.datacenter)
            self._update_state(dep)
            self._update_notify(dep)
            if self.mtbf is not None:
                yield env.timeout(float(self.fault_rng.exponential(self.mtbf)))
                self.crash(life)
        except simpy.Interrupt:
            return

    def _stop(self, life: ReplicaLife) -> None:
        """The replica has stopped: free its GPUs, record the time."""
        assert self.sim is not None
        dep = self.deps[life.deployment]
        if life in self.pending:
            self._touch_pending(dep)
            self.pending.remove(life)
        elif life.datacenter:
            self.inventory.release(life.datacenter, dep.plan.accelerator, life.gpus, dep.index)
        life.stage = "stopped"
        life.stopped_s = self.sim.env.now
        # a stopped replica leaves its deployment's list (``lives`` keeps it for
        # billing): controllers scan the list every tick, and a week of cold
        # starts would otherwise make each scan longer and the run quadratic
        dep.replicas = [r for r in dep.replicas if r is not life]
        if dep.state == "DELETING" and all(r.stage == "stopped" for r in dep.replicas):
            dep.state = "DELETED"
        if life.process is not None and life.process.is_alive and (
            self.sim.env.active_process is not life.process
        ):
            life.process.interrupt()
        self._update_notify(dep)
        self._place_pending()

    def remove(self, life: ReplicaLife) -> None:
        """Scale in: a starting replica stops now, a ready one drains first."""
        assert self.sim is not None
        if life.stage == "ready":
            life.stage = "draining"
            if self.sim.drain_replica(life.kernel):
                self._stop(life)
            self._update_notify(self.deps[life.deployment])
        elif life.stage in STARTING:
            self._stop(life)

    def on_drained(self, kernel_index: int) -> None:
        """The request path reports a draining replica is empty."""
        for life in self.lives:
            if life.kernel == kernel_index and life.stage == "draining":
                self._stop(life)
                return

    def crash(self, life: ReplicaLife) -> None:
        """Lose ``life`` now; its deployment replaces it as its controller sees fit."""
        assert self.sim is not None
        if life.stage == "stopped":
            return
        dep = self.deps[life.deployment]
        if life.stage in ("ready", "draining"):
            self.sim.crash_replica(life.kernel)
        life.crashed = True
        dep.crashes += 1
        self._stop(life)
        self.reconcile(dep)

    def outage(self, datacenter: str, duration_s: float) -> simpy.events.ProcessGenerator:
        """A datacenter is down for ``duration_s``: its replicas are lost."""
        assert self.sim is not None
        self.inventory.set_down(datacenter, True)
        for life in list(self.lives):
            placed = life not in self.pending
            if life.datacenter == datacenter and life.stage != "stopped" and placed:
                self.crash(life)
        yield self.sim.env.timeout(duration_s)
        self.inventory.set_down(datacenter, False)
        self._place_pending()

    def background(self, datacenter: str, accelerator: str, gpus: int) -> None:
        self.inventory.set_background(datacenter, accelerator, gpus)
        self._place_pending()

    # -- scaling -------------------------------------------------------------
    def reconcile(self, dep: DeploymentControl) -> None:
        """Create or remove replicas until the live ones match ``dep.desired``."""
        if dep.state in ("DELETING", "DELETED"):
            return
        live = dep.live()
        missing = dep.desired - len(live)
        for _ in range(missing):
            self._new_replica(dep)
        if missing < 0:
            # least progress first: pending, then the latest starters, then ready ones
            order = {"pending": 0, "scheduling": 1, "downloading": 2, "initializing": 3,
                     "ready": 4}
            victims = sorted(live, key=lambda r: (order[r.stage], -r.requested_s))
            for life in victims[:-missing]:
                self.remove(life)
        self._place_pending()
        self._update_notify(dep)

    def on_cold(self, dep_index: int) -> None:
        """A request met no ready replica: a deployment at zero starts one at once."""
        dep = self.deps[dep_index]
        policy = dep.plan.policy
        if (dep.state in ("DELETING", "DELETED") or dep.plan.max_replicas < 1
                or not policy.scales_from_zero):
            self._update_notify(dep)
            return
        if dep.desired < 1:
            dep.desired = 1
            dep.plan.policy.scaled_from_zero(self._now())
            self.reconcile(dep)
        self._update_notify(dep)

    def _now(self) -> float:
        assert self.sim is not None
        return float(self.sim.env.now)

    def _update_notify(self, dep: DeploymentControl) -> None:
        """Ask the request path to report a cold request only while it matters."""
        assert self.sim is not None
        starting = any(r.stage in STARTING for r in dep.replicas)
        ready = any(r.stage == "ready" for r in dep.replicas)
        self.sim.set_notify_cold(dep.index, not ready and not starting)

    def _update_state(self, dep: DeploymentControl) -> None:
        if dep.state == "CREATING" and (dep.desired == 0 or dep.count("ready") >= dep.desired):
            dep.state = "READY"

    def observe(
        self, dep: DeploymentControl, window_s: float, windows: tuple[float, ...] = ()
    ) -> Observation:
        """What a controller sees now: metrics averaged over its last ``window_s``
        (and over each of ``windows``), live replicas by stage, the time.

        The request path integrates requests queued or in service exactly, so a
        window average is a difference of two cumulative snapshots over their
        time apart.  Snapshots are taken at the controller's ticks: a window
        that is a whole number of sync periods is covered exactly, and equals
        the mean of the 1 s buckets Knative averages.  Windows reaching before
        t = 0 are clipped to the run.
        """
        assert self.sim is not None
        sim = self.sim
        now = sim.env.now
        d = dep.index
        cur = sim.cumulative(d, now)
        if not dep.metrics and now > 0:
            dep.metrics.append((0.0,) * len(cur))  # the run starts with nothing
        dep.metrics.append(cur)
        lengths = sorted({window_s, *windows})
        dep.metrics = [s for s in dep.metrics if s[0] >= now - lengths[-1] - 1e-9]
        averaged = {w: _window_average(dep.metrics, cur, w) for w in lengths}
        main = averaged[window_s]
        stages = dict.fromkeys(LIVE_STAGES, 0)
        for life in dep.replicas:
            if life.stage != "stopped":
                stages[life.stage] += 1
        sizes = sim.mean_sizes(d)
        return Observation(
            t=now,
            ready=stages["ready"],
            starting=sum(stages[s] for s in STARTING),
            desired=dep.desired,
            min_replicas=dep.plan.min_replicas,
            max_replicas=dep.plan.max_replicas,
            requests_per_s=main.requests_per_s,
            concurrent_requests=main.concurrent_requests,
            prompt_tokens_per_s=main.prompt_tokens_per_s,
            output_tokens_per_s=main.output_tokens_per_s,
            capacity_per_replica=sim.capacity_per_replica(d),
            arrivals_per_s=main.arrivals_per_s,
            mean_output_tokens=sizes[1] if sizes else 0.0,
            saturation_tokens_per_s=self._saturation(dep, sizes),
            idle_s=now - sim.last_attempt(d),
            stages=stages,
            windows=averaged,
        )

    @staticmethod
    def _saturation(dep: DeploymentControl, sizes: tuple[float, float] | None) -> float:
        """One replica's saturation throughput at ``sizes``, computed once per 1 % of size."""
        if sizes is None or dep.plan.saturation is None:
            return 0.0
        # sizes drift slowly: a log-spaced 1 % grid keeps the cache small
        key = (round(100 * math.log(max(sizes[0], 1.0))),
               round(100 * math.log(max(sizes[1], 1.0))))
        rate = dep.saturation_cache.get(key)
        if rate is None:
            rate = dep.saturation_cache[key] = float(
                dep.plan.saturation(math.exp(key[0] / 100), math.exp(key[1] / 100)))
        return rate

    def _controller(self, dep: DeploymentControl) -> simpy.events.ProcessGenerator:
        assert self.sim is not None
        env = self.sim.env
        policy = dep.plan.policy
        while True:
            yield env.timeout(policy.sync_period_s)
            if dep.state == "DELETED":
                return
            plan = dep.plan
            idle = env.now - self.sim.last_attempt(dep.index)
            if plan.min_replicas == 0 and idle >= AUTO_DELETE_S and dep.state == "READY":
                self._delete(dep)
                continue
            obs = self.observe(dep, policy.window_s, tuple(policy.windows_s))
            want = _clamp(policy.decide(obs), plan.min_replicas, plan.max_replicas)
            if want != dep.desired:
                dep.desired = want
                self.reconcile(dep)
            self._update_state(dep)

    def _delete(self, dep: DeploymentControl) -> None:
        dep.state = "DELETING"
        dep.desired = 0
        for life in dep.live():
            self.remove(life)
        if all(r.stage == "stopped" for r in dep.replicas):
            dep.state = "DELETED"
        self._update_notify(dep)

    # -- reading ---------------------------------------------------------------
    def label(self, dep: DeploymentControl) -> str:
        """The console's display label (the provider's documented rules), or the state."""
        ready = dep.count("ready")
        plan = dep.plan
        if dep.state == "READY" and plan.max_replicas == 0 and ready == 0:
            return "Inactive"
        if (dep.state == "READY" and plan.min_replicas == 0 and plan.max_replicas > 0
                and dep.desired == 0 and ready == 0):
            return "Scaled to 0"
        return dep.state

    def finish(self) -> None:
        """End of run: account pending time and close the books of live replicas."""
        for dep in self.deps:
            self._touch_pending(dep)
            if dep.state == "DELETING" and all(r.stage == "stopped" for r in dep.replicas):
                dep.state = "DELETED"


def _window_average(
    snapshots: list[tuple[float, ...]], cur: tuple[float, ...], window_s: float
) -> WindowMetrics:
    """Averages between the oldest snapshot within ``window_s`` of ``cur`` and ``cur``."""
    start = cur
    for snap in snapshots:
        if snap[0] >= cur[0] - window_s - 1e-9:
            start = snap
            break
    span = cur[0] - start[0]
    if span <= 0:
        return WindowMetrics()
    rates = [(c - s) / span for c, s in zip(cur, start, strict=True)]
    return WindowMetrics(span_s=span, requests_per_s=rates[1], concurrent_requests=rates[2],
                         prompt_tokens_per_s=rates[3], output_tokens_per_s=rates[4],
                         arrivals_per_s=rates[5])


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))
