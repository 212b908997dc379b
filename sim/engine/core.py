"""The run loop: SimPy's environment for the control plane, a lean request path.

Time belongs to a :class:`Clock`, a ``simpy.Environment``.  Control-plane
activity (replica lifecycle, autoscaler ticks, the timeline sampler) are SimPy
processes.  The request path stays out of SimPy's process machinery: arrivals
come from arrays generated before the run, and replica completions and client
retries sit in one heap.  The loop takes whichever is earliest — SimPy's next
event, the next arrival, or the heap's top — so every request costs a handful
of heap operations however many tokens it decodes.

Order at equal times: control-plane events first (a replica that becomes ready
at t serves a request arriving at t), then completions and retries, then new
arrivals.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from sim.fleet.deployment import DeploymentState
from sim.fleet.replica import Replica, ServiceModel

# Request status codes in the run's tables.
IN_FLIGHT, OK, FAILED_503, REJECTED_429, UNFINISHED = 0, 1, 2, 3, 4
STATUS_NAMES = {
    IN_FLIGHT: "in_flight",
    OK: "ok",
    FAILED_503: "failed_503",
    REJECTED_429: "rejected_429",
    UNFINISHED: "unfinished",
}

_REPLICA_DUE, _RETRY = 0, 1
_INF = math.inf


class Clock(simpy.Environment):
    """SimPy's environment, whose clock the request path may move forward."""

    def advance(self, t: float) -> None:
        self._now = t


@dataclass(frozen=True)
class ClientPolicy:
    """How clients retry 429 and 503 responses (SPEC §2, fireworks.md §2)."""

    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True

    def delay(self, retry: int, rng: np.random.Generator) -> float:
        """Seconds before retry number ``retry`` (1-based): exponential, capped, jittered."""
        cap = min(self.backoff_base * 2.0 ** (retry - 1), self.backoff_max)
        return float(rng.uniform(0.0, cap)) if self.jitter else cap


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything the engine needs to run one deployment."""

    name: str
    shape: ServiceModel
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    replicas: int
    datacenter: str
    max_queue: int | None = None
    queue_on_cold_start: bool = False


@dataclass
class ReplicaRecord:
    """One replica's life, for billing and the timeline."""

    deployment: int
    datacenter: str
    gpus: int
    ready_s: float
    stopped_s: float = _INF


@dataclass
class TimelineRow:
    t_end: float
    interval_s: float
    deployment: int
    arrivals: int
    completions: int
    ready_replicas: int
    desired_replicas: int
    gpus_allocated: int
    queue_depth: float
    utilization: float
    http_503: int
    http_429: int


class Simulation:
    """One run over fixed workloads.  Build, call :meth:`run`, read the tables."""

    def __init__(
        self,
        plans: list[DeploymentPlan],
        *,
        horizon_s: float,
        clients: ClientPolicy,
        jitter_rng: np.random.Generator,
        timeline_interval_s: float = 60.0,
        drain_limit_s: float | None = None,
    ):
        self.env = Clock()
        self.plans = plans
        self.horizon = horizon_s
        self.drain_limit = drain_limit_s if drain_limit_s is not None else max(horizon_s, 3600.0)
        self.clients = clients
        self.jitter_rng = jitter_rng
        self.interval = timeline_interval_s
        self.deps = [
            DeploymentState(
                index=i,
                name=p.name,
                shape=p.shape,
                max_queue=p.max_queue,
                queue_on_cold_start=p.queue_on_cold_start,
            )
            for i, p in enumerate(plans)
        ]
        self._build_request_table()
        self.heap: list[tuple[float, int, int, object, int]] = []
        self._seq = itertools.count()
        self.outstanding = self.n
        self.replica_records: list[ReplicaRecord] = []
        self.timeline: list[TimelineRow] = []
        self._replica_ids = itertools.count()
        self._last_sample_t = 0.0
        self._last_snapshot: dict[int, tuple[float, ...]] = {}

    # -- set-up ------------------------------------------------------------
    def _build_request_table(self) -> None:
        times = np.concatenate([p.arrival_s for p in self.plans]) if self.plans else np.zeros(0)
        dep = np.concatenate(
            [np.full(len(p.arrival_s), i, dtype=np.int64) for i, p in enumerate(self.plans)]
        ) if self.plans else np.zeros(0, dtype=np.int64)
        inp = np.concatenate([p.input_tokens for p in self.plans]) if self.plans else dep
        out = np.concatenate([p.output_tokens for p in self.plans]) if self.plans else dep
        order = np.argsort(times, kind="stable")  # ties: deployment order, then trace order
        self.n = n = len(times)
        self.arrival = times[order].astype(np.float64)
        self.dep_of = dep[order].astype(np.int64)
        self.inp = inp[order].astype(np.int64)
        self.out = out[order].astype(np.int64)
        # Hot-path columns as Python lists: element access is several times
        # cheaper than on numpy arrays.  Converted back once, at the end.
        self._arr = self.arrival.tolist()
        self._dep = self.dep_of.tolist()
        self._in = self.inp.tolist()
        self._out = self.out.tolist()
        nan = math.nan
        self.attempt_s = [nan] * n  # arrival of the latest attempt
        self.start_s = [nan] * n  # admitted to a replica
        self.first_token_s = [nan] * n
        self.finish_s = [nan] * n
        self.status = [IN_FLIGHT] * n
        self.attempts = [0] * n
        self.replica_of = [-1] * n
        self.replicas_by_id: list[Replica] = []

    def add_replica(self, dep: DeploymentState, datacenter: str) -> Replica:
        """Bring a ready replica into ``dep`` at the current time."""
        t = self.env.now
        rep = Replica(next(self._replica_ids), dep, dep.shape, datacenter)
        self.replicas_by_id.append(rep)
        dep.add_replica(rep, t)
        self.replica_records.append(
            ReplicaRecord(deployment=dep.index, datacenter=datacenter, gpus=dep.shape.gpus, ready_s=t)
        )
        self._fill(rep, t)
        self._schedule(rep)
        return rep

    # -- the request path --------------------------------------------------
    def _schedule(self, rep: Replica) -> None:
        old = rep.due
        due = rep.reschedule()
        if due != old:
            rep.version += 1
            if due < _INF:
                heapq.heappush(self.heap, (due, next(self._seq), _REPLICA_DUE, rep, rep.version))

    def _attempt(self, req: int, t: float) -> None:
        """A request (or a retry of it) reaches its deployment's router at ``t``."""
        dep = self.deps[self._dep[req]]
        self.attempts[req] += 1
        self.attempt_s[req] = t
        if not dep.replicas and not dep.queue_on_cold_start:
            dep.http_503 += 1
            self._retry_or_fail(req, t, FAILED_503)
            return
        if not dep.queue:
            rep = dep.pick_replica(self._in[req] + self._out[req])
            if rep is not None:
                rep.advance(t)
                self._admit(rep, req, t)
                self._schedule(rep)
                return
        if dep.max_queue is not None and len(dep.queue) >= dep.max_queue:
            dep.http_429 += 1
            self._retry_or_fail(req, t, REJECTED_429)
            return
        dep.touch_queue(t)
        dep.queue.append(req)

    def _admit(self, rep: Replica, req: int, t: float) -> None:
        self.start_s[req] = t
        self.replica_of[req] = rep.id
        rep.admit(req, t, self._in[req], self._out[req])

    def _retry_or_fail(self, req: int, t: float, status: int) -> None:
        retry = self.attempts[req]  # the retry number this would be
        if retry <= self.clients.max_retries:
            due = t + self.clients.delay(retry, self.jitter_rng)
            heapq.heappush(self.heap, (due, next(self._seq), _RETRY, req, 0))
        else:
            self.status[req] = status
            self.finish_s[req] = t
            self.outstanding -= 1

    def _on_replica(self, rep: Replica, t: float) -> None:
        """A prefill or a decode finished on ``rep`` at ``t``."""
        rep.due = _INF  # its heap entry has just been consumed
        rep.advance(t)
        while (req := rep.pop_prefilled(self._in)) is not None:
            self.first_token_s[req] = t
            if self._out[req] > 1:
                rep.start_decode(req, self._out[req] - 1)
            else:
                self._finish(rep, req, t)
        while (req := rep.pop_decoded()) is not None:
            self._finish(rep, req, t)
        self._fill(rep, t)
        self._schedule(rep)

    def _finish(self, rep: Replica, req: int, t: float) -> None:
        self.finish_s[req] = t
        self.status[req] = OK
        rep.release(t, self._in[req], self._out[req])
        rep.deployment.completions += 1
        self.outstanding -= 1

    def _fill(self, rep: Replica, t: float) -> None:
        """Admit queued requests of ``rep``'s deployment while ``rep`` has room (FCFS)."""
        dep = rep.deployment
        queue = dep.queue
        if not queue:
            return
        dep.touch_queue(t)
        while queue and rep.fits(self._in[queue[0]] + self._out[queue[0]]):
            self._admit(rep, queue.popleft(), t)

    # -- the control plane -------------------------------------------------
    def _sampler(self) -> simpy.events.ProcessGenerator:
        while True:
            yield self.env.timeout(self.interval)
            self._sample(self.env.now)

    def _sample(self, t: float) -> None:
        """Append one timeline row per deployment for the interval ending at ``t``."""
        span = t - self._last_sample_t
        if span <= 0:
            return
        for d in self.deps:
            d.touch_queue(t)
            d.touch_ready(t)
            now = (d.first_arrivals, d.completions, d.queue_area, d.ready_area,
                   d.busy_time(t), d.http_503, d.http_429)
            prev = self._last_snapshot.get(d.index, (0, 0, 0.0, 0.0, 0.0, 0, 0))
            delta = [a - b for a, b in zip(now, prev, strict=True)]
            ready_area = delta[3]
            self.timeline.append(
                TimelineRow(
                    t_end=t,
                    interval_s=span,
                    deployment=d.index,
                    arrivals=int(delta[0]),
                    completions=int(delta[1]),
                    ready_replicas=len(d.replicas),
                    desired_replicas=len(d.replicas),
                    gpus_allocated=len(d.replicas) * d.shape.gpus,
                    queue_depth=delta[2] / span,
                    utilization=delta[4] / ready_area if ready_area > 0 else 0.0,
                    http_503=int(delta[5]),
                    http_429=int(delta[6]),
                )
            )
            self._last_snapshot[d.index] = now
        self._last_sample_t = t

    # -- the loop ----------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> None:
        env = self.env
        for dep, plan in zip(self.deps, self.plans, strict=True):
            for _ in range(plan.replicas):
                self.add_replica(dep, plan.datacenter)
        env.process(self._sampler())

        arrivals, dep_of = self._arr, self._dep
        deps = self.deps
        heap = self.heap
        heappop = heapq.heappop
        n = self.n
        i = 0
        horizon, stop = self.horizon, self.horizon + self.drain_limit
        next_report = 0.0
        report_every = max(self.horizon / 200.0, 1e-9)
        ta = arrivals[0] if n else _INF
        while True:
            th = heap[0][0] if heap else _INF
            t = ta if ta < th else th
            tc = env.peek()
            if tc <= t:
                if (tc > horizon and self.outstanding == 0) or tc > stop:
                    break
                env.step()
                continue
            if t > stop:
                break
            env.advance(t)
            if th <= ta:
                _, _, kind, obj, version = heappop(heap)
                if kind == _REPLICA_DUE:
                    rep: Replica = obj  # type: ignore[assignment]
                    if version == rep.version:
                        self._on_replica(rep, t)
                else:
                    self._attempt(obj, t)  # type: ignore[arg-type]
            else:
                deps[dep_of[i]].first_arrivals += 1
                self._attempt(i, t)
                i += 1
                ta = arrivals[i] if i < n else _INF
            if progress is not None and t >= next_report:
                progress(min(t, horizon))
                next_report = t + report_every
        self._close(env.now)
        if progress is not None:
            progress(horizon)

    def _close(self, t: float) -> None:
        """Stop the clock at ``t``: replicas stop, unfinished requests are marked."""
        self._sample(t)
        for dep in self.deps:
            dep.touch_queue(t)
            dep.touch_ready(t)
        for rec in self.replica_records:
            rec.stopped_s = min(rec.stopped_s, t)
        for req in range(self.n):
            if self.status[req] == IN_FLIGHT:
                self.status[req] = UNFINISHED
        self.end_s = t
