"""The run loop: SimPy's environment for the control plane, a compiled request path.

Time belongs to a :class:`Clock`, a ``simpy.Environment``.  Control-plane
activity (replica lifecycle, autoscaler ticks, the timeline sampler) are SimPy
processes.  The request path — arrivals from arrays generated before the run,
routing, batching, client retries — runs in :mod:`sim.engine.kernel` up to the
time of SimPy's next event; then that event runs; and so on.  Every request
costs a handful of heap operations however many tokens it decodes.

Order at equal times: control-plane events first (a replica that becomes ready
at t serves a request arriving at t), then replica completions, then retries,
then new arrivals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from sim.engine import kernel as K
from sim.engine.kernel import KernelState

STATUS_NAMES = K.STATUS_NAMES
_INF = math.inf
_UNIFORM_BLOCK = 4096


class Clock(simpy.Environment):
    """SimPy's environment, whose clock the request path may move forward."""

    def advance(self, t: float) -> None:
        self._now = t


class ServiceShape(Protocol):
    """What the engine needs of a shape, as ``sim.perf.Shape`` provides it."""

    gpus: int
    max_concurrency: int
    kv_capacity_tokens: int
    prefill_chunk: int

    def prefill_seconds(self, input_tokens: Any) -> Any:
        """Seconds of exclusive prefill for each prompt length (array in, array out)."""

    def step_table(self, max_batch: int) -> tuple[Any, float, Any, float]:
        """``(M, m1, C, c1)``: step(b, kv) = max(M[b] + kv·m1, C[b] + kv·c1)."""


@dataclass(frozen=True)
class ClientPolicy:
    """How clients retry 429 and 503 responses (SPEC §2, fireworks.md §2).

    The delay before retry ``k`` (1-based) is ``min(base · 2^(k−1), max)``,
    times a uniform draw in [0, 1) with full jitter.
    """

    max_retries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: bool = True

    def as_array(self) -> np.ndarray:
        return np.array(
            [self.max_retries, self.backoff_base, self.backoff_max, 1.0 if self.jitter else 0.0]
        )


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything the engine needs to run one deployment."""

    name: str
    shape: ServiceShape
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
        self.names = [p.name for p in plans]
        self.horizon = horizon_s
        self.drain_limit = drain_limit_s if drain_limit_s is not None else max(horizon_s, 3600.0)
        self.jitter_rng = jitter_rng
        self.interval = timeline_interval_s
        self.state = self._initial_state(plans, clients)
        self.n_replicas = 0
        self.replica_records: list[ReplicaRecord] = []
        self.timeline: list[TimelineRow] = []
        self.ready_area = np.zeros(len(plans))
        self._ready_t = np.zeros(len(plans))
        self.max_ready = np.zeros(len(plans), dtype=np.int64)
        self._last_sample_t = 0.0
        self._last_snapshot: dict[int, tuple[float, ...]] = {}
        self.end_s = 0.0

    # -- set-up ------------------------------------------------------------
    def _initial_state(self, plans: list[DeploymentPlan], clients: ClientPolicy) -> KernelState:
        n_dep = len(plans)
        times = np.concatenate([p.arrival_s for p in plans]).astype(np.float64)
        dep = np.concatenate([np.full(len(p.arrival_s), i, np.int64) for i, p in enumerate(plans)])
        inp = np.concatenate([p.input_tokens for p in plans]).astype(np.int64)
        out = np.concatenate([p.output_tokens for p in plans]).astype(np.int64)
        work = np.concatenate(
            [np.asarray(p.shape.prefill_seconds(p.input_tokens), np.float64) for p in plans]
        )
        order = np.argsort(times, kind="stable")  # ties: deployment order, then trace order
        n = len(times)
        maxc = np.array([p.shape.max_concurrency for p in plans], np.int64)
        width = int(maxc.max()) + 1
        d_M = np.zeros((n_dep, width))
        d_C = np.zeros((n_dep, width))
        d_m1 = np.zeros(n_dep)
        d_c1 = np.zeros(n_dep)
        for i, p in enumerate(plans):
            M, m1, C, c1 = p.shape.step_table(int(maxc[i]))
            d_M[i, : len(M)] = M
            d_C[i, : len(C)] = C
            d_m1[i], d_c1[i] = m1, c1
        nan = np.full(n, np.nan)
        ints = np.zeros(n_dep, np.int64)
        floats = np.zeros(n_dep)
        none = np.full(n_dep, -1, np.int64)
        counters = np.zeros(K.N_COUNTERS, np.int64)
        counters[K.C_OUTSTANDING] = n
        return KernelState(
            arrival=times[order],
            dep=dep[order],
            inp=inp[order],
            out=out[order],
            pf_work=work[order],
            attempt_t=nan.copy(),
            start_t=nan.copy(),
            first_t=nan.copy(),
            finish_t=nan.copy(),
            status=np.zeros(n, np.int64),
            attempts=np.zeros(n, np.int64),
            replica=np.full(n, -1, np.int64),
            link=np.full(n, -1, np.int64),
            d_maxc=maxc,
            d_kvcap=np.array([p.shape.kv_capacity_tokens for p in plans], np.int64),
            d_chunk=np.array([float(p.shape.prefill_chunk) for p in plans]),
            d_M=d_M,
            d_C=d_C,
            d_m1=d_m1,
            d_c1=d_c1,
            d_max_queue=np.array(
                [-1 if p.max_queue is None else p.max_queue for p in plans], np.int64
            ),
            d_queue_cold=np.array([int(p.queue_on_cold_start) for p in plans], np.int64),
            d_notify_503=ints.copy(),
            d_q_head=none.copy(),
            d_q_tail=none.copy(),
            d_q_len=ints.copy(),
            d_q_area=floats.copy(),
            d_q_t=floats.copy(),
            d_http_503=ints.copy(),
            d_http_429=ints.copy(),
            d_arrivals=ints.copy(),
            d_completions=ints.copy(),
            d_tokens_in=ints.copy(),
            d_tokens_out=ints.copy(),
            d_reps=np.full((n_dep, 4), -1, np.int64),
            d_nreps=ints.copy(),
            r_dep=np.zeros(0, np.int64),
            r_n=np.zeros(0, np.int64),
            r_kv_res=np.zeros(0, np.int64),
            r_kv=np.zeros(0),
            r_pf_head=np.zeros(0, np.int64),
            r_pf_tail=np.zeros(0, np.int64),
            r_pf_left=np.zeros(0),
            r_vtime=np.zeros(0),
            r_rate_d=np.zeros(0),
            r_rate_p=np.zeros(0),
            r_last=np.zeros(0),
            r_busy=np.zeros(0),
            r_busy_since=np.zeros(0),
            r_heap_off=np.zeros(0, np.int64),
            r_heap_n=np.zeros(0, np.int64),
            hv=np.zeros(0),
            hr=np.zeros(0, np.int64),
            ih_key=np.zeros(0),
            ih_item=np.zeros(0, np.int64),
            ih_pos=np.zeros(0, np.int64),
            rt_t=np.zeros(1024),
            rt_seq=np.zeros(1024, np.int64),
            rt_req=np.zeros(1024, np.int64),
            uniforms=self.jitter_rng.random(_UNIFORM_BLOCK) if clients.jitter else np.zeros(0),
            client=clients.as_array(),
            counters=counters,
        )

    # -- the control plane's hands on the request path ---------------------
    def add_replica(self, dep: int, datacenter: str) -> int:
        """Bring a ready replica into deployment ``dep`` at the current time; its id."""
        s = self.state
        r = self.n_replicas
        if r >= len(s.r_dep):
            self._grow_replicas(max(8, 2 * len(s.r_dep)))
        if s.d_nreps[dep] >= s.d_reps.shape[1]:
            wider = np.full((s.d_reps.shape[0], 2 * s.d_reps.shape[1]), -1, np.int64)
            wider[:, : s.d_reps.shape[1]] = s.d_reps
            s.d_reps = wider
        maxc = int(s.d_maxc[dep])
        off = int(s.r_heap_off[r - 1] + s.d_maxc[s.r_dep[r - 1]]) if r else 0
        if off + maxc > len(s.hv):
            size = max(2 * len(s.hv), off + maxc)
            s.hv = np.resize(s.hv, size)
            s.hr = np.resize(s.hr, size)
        t = self.env.now
        s.r_dep[r] = dep
        s.r_n[r] = s.r_kv_res[r] = s.r_heap_n[r] = 0
        s.r_kv[r] = s.r_pf_left[r] = s.r_vtime[r] = 0.0
        s.r_rate_d[r] = s.r_rate_p[r] = s.r_busy[r] = 0.0
        s.r_pf_head[r] = s.r_pf_tail[r] = -1
        s.r_last[r] = s.r_busy_since[r] = t
        s.r_heap_off[r] = off
        # a new entry at the end of the indexed heap, key infinity: no sifting needed
        s.ih_key[r] = _INF
        s.ih_item[r] = r
        s.ih_pos[r] = r
        self.n_replicas = r + 1
        s.counters[K.C_REPLICA_HEAP] = self.n_replicas
        self._touch_ready(dep, t)
        s.d_reps[dep, s.d_nreps[dep]] = r
        s.d_nreps[dep] += 1
        self.max_ready[dep] = max(self.max_ready[dep], s.d_nreps[dep])
        self.replica_records.append(
            ReplicaRecord(
                deployment=dep, datacenter=datacenter, gpus=self.plans[dep].shape.gpus, ready_s=t
            )
        )
        return r

    def _grow_replicas(self, cap: int) -> None:
        s = self.state
        for name in (
            "r_dep",
            "r_n",
            "r_kv_res",
            "r_kv",
            "r_pf_head",
            "r_pf_tail",
            "r_pf_left",
            "r_vtime",
            "r_rate_d",
            "r_rate_p",
            "r_last",
            "r_busy",
            "r_busy_since",
            "r_heap_off",
            "r_heap_n",
            "ih_key",
            "ih_item",
            "ih_pos",
        ):
            old = getattr(s, name)
            new = np.zeros(cap, old.dtype)
            new[: len(old)] = old
            setattr(s, name, new)

    def _touch_ready(self, dep: int, t: float) -> None:
        self.ready_area[dep] += self.state.d_nreps[dep] * (t - self._ready_t[dep])
        self._ready_t[dep] = t

    # -- monitors ----------------------------------------------------------
    def queue_area(self, dep: int, t: float) -> float:
        s = self.state
        return float(s.d_q_area[dep] + s.d_q_len[dep] * (t - s.d_q_t[dep]))

    def busy_time(self, dep: int, t: float) -> float:
        """Replica-seconds of ``dep`` with at least one request in service, up to ``t``."""
        s = self.state
        mine = s.r_dep[: self.n_replicas] == dep
        busy = s.r_busy[: self.n_replicas][mine]
        active = s.r_n[: self.n_replicas][mine] > 0
        since = s.r_busy_since[: self.n_replicas][mine]
        return float(busy.sum() + (t - since[active]).sum())

    def _sampler(self) -> simpy.events.ProcessGenerator:
        while True:
            yield self.env.timeout(self.interval)
            self._sample(self.env.now)

    def _sample(self, t: float) -> None:
        """Append one timeline row per deployment for the interval ending at ``t``."""
        span = t - self._last_sample_t
        if span <= 0:
            return
        s = self.state
        for d in range(len(self.plans)):
            self._touch_ready(d, t)
            now = (
                float(s.d_arrivals[d]),
                float(s.d_completions[d]),
                self.queue_area(d, t),
                float(self.ready_area[d]),
                self.busy_time(d, t),
                float(s.d_http_503[d]),
                float(s.d_http_429[d]),
            )
            prev = self._last_snapshot.get(d, (0.0,) * len(now))
            delta = [a - b for a, b in zip(now, prev, strict=True)]
            ready = int(s.d_nreps[d])
            self.timeline.append(
                TimelineRow(
                    t_end=t,
                    interval_s=span,
                    deployment=d,
                    arrivals=round(delta[0]),
                    completions=round(delta[1]),
                    ready_replicas=ready,
                    desired_replicas=ready,
                    gpus_allocated=ready * self.plans[d].shape.gpus,
                    queue_depth=delta[2] / span,
                    utilization=delta[4] / delta[3] if delta[3] > 0 else 0.0,
                    http_503=round(delta[5]),
                    http_429=round(delta[6]),
                )
            )
            self._last_snapshot[d] = now
        self._last_sample_t = t

    # -- the loop ----------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> None:
        env = self.env
        for dep, plan in enumerate(self.plans):
            for _ in range(plan.replicas):
                self.add_replica(dep, plan.datacenter)
        env.process(self._sampler())
        s = self.state
        horizon, stop = self.horizon, self.horizon + self.drain_limit
        while True:
            tc = env.peek()
            limit = min(tc, stop)
            reason, t = K.run_until(limit, *s.args())
            if reason == K.STOP_NEED_UNIFORMS:
                s.uniforms = self.jitter_rng.random(_UNIFORM_BLOCK)
                s.counters[K.C_UNIFORM] = 0
                continue
            if reason == K.STOP_RETRY_FULL:
                size = 2 * len(s.rt_t)
                s.rt_t, s.rt_seq, s.rt_req = (
                    np.resize(a, size) for a in (s.rt_t, s.rt_seq, s.rt_req)
                )
                continue
            if reason == K.STOP_503:
                env.advance(t)
                continue
            # every request event before the next control event is done
            if tc > stop or (tc > horizon and s.counters[K.C_OUTSTANDING] == 0):
                break
            env.step()
            if progress is not None:
                progress(min(env.now, horizon))
        if tc > stop:
            end = stop
        else:
            finished = s.finish_t[~np.isnan(s.finish_t)]
            end = max(env.now, horizon, float(finished.max()) if len(finished) else 0.0)
        self._close(end)

    def _close(self, t: float) -> None:
        """Stop the clock at ``t``: replicas stop, unfinished requests are marked."""
        self.env.advance(t)
        self._sample(t)
        for d in range(len(self.plans)):
            self._touch_ready(d, t)
        for rec in self.replica_records:
            rec.stopped_s = min(rec.stopped_s, t)
        s = self.state
        s.status[s.status == K.IN_FLIGHT] = K.UNFINISHED
        self.end_s = t
