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

Bounded memory (``chunk_s``): the request arrays the kernel works on hold one
window of arrivals at a time plus the requests still in flight.  At each
window edge finished requests are handed to ``on_finished`` and dropped, the
in-flight ones are moved to the front of the next window's arrays (every
request index held in a list or heap is renumbered, keeping their order, so
every tie breaks as before) and the next window's arrivals are appended.
Results do not depend on the window length, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import simpy

from sim.engine import kernel as K
from sim.engine import layout as L
from sim.engine import prefix_cache as pc
from sim.engine import routers
from sim.engine.layout import KernelState
from sim.engine.ports import ServiceShape
from sim.fleet.control import STAGES, ControlPlane
from sim.metrics.stream import Finished
from sim.workload.base import index_ranges

STATUS_NAMES = L.STATUS_NAMES
ENGINES = L.ENGINES
KV_ADMISSIONS = L.KV_ADMISSIONS
_INF = math.inf
_UNIFORM_BLOCK = 4096
_FINISHED = frozenset(Finished.__dataclass_fields__) - {"index"}  # the request's columns


class Clock(simpy.Environment):
    """SimPy's environment, whose clock the request path may move forward."""

    def advance(self, t: float) -> None:
        self._now = t


@dataclass(frozen=True)
class ClientPolicy:
    """How clients retry 429 and 503 responses (docs/control-plane.md: no replica ready).

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


class WorkloadSource(Protocol):
    """Requests arriving in ``[t0, t1)``, asked for in consecutive ranges from 0."""

    def take(self, t0: float, t1: float) -> Any:
        """An object with ``arrival_s``, ``input_tokens``, ``output_tokens`` arrays."""


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything the engine needs to run one deployment.

    Its requests are the arrays ``arrival_s``, ``input_tokens`` and
    ``output_tokens``, or, when ``source`` is given, whatever the source
    yields window by window (the arrays are then ignored).
    """

    name: str
    shape: ServiceShape
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    replicas: int
    datacenter: str
    max_queue: int | None = None
    queue_on_cold_start: bool = False
    source: WorkloadSource | None = None
    # Engine limits (defaults: vLLM's, see docs/catalog.md): tokens per
    # iteration (None: the shape's prefill chunk), KV block size, admission.
    max_num_batched_tokens: int | None = None
    kv_block_tokens: int = 16
    kv_admission: str = "reserve"
    context_tokens: int | None = None  # the model's context length (None: unlimited)
    # Routing and prefix caching (sim.engine.routers, sim.engine.prefix_cache).
    router: str = "least_loaded"
    balance_abs: float = 64.0
    balance_rel: float = 1.5
    prefix_caching: bool = True
    block_tokens: int = 512  # tokens per block of the workload's chains of block ids


@dataclass
class TimelineRow:
    t_end: float
    interval_s: float
    deployment: int
    arrivals: int
    completions: int
    desired_replicas: int
    pending_replicas: int
    scheduling_replicas: int
    downloading_replicas: int
    initializing_replicas: int
    ready_replicas: int
    draining_replicas: int
    gpus_allocated: int
    queue_depth: float
    busy_fraction: float
    http_503: int
    http_429: int
    prefix_cache_hit_rate: float  # prompt tokens cached / prefilled in the interval
    state: str
    label: str


@dataclass
class AllocationRow:
    t_end: float
    datacenter: str
    accelerator: str
    holder: str  # a deployment's name, or "background" (other tenants)
    gpus: int


class RowBuffers:
    """Memory that the state's request rows reuse from one window to the next.

    :meth:`take` returns the first ``n`` rows of a buffer, grown by half when
    too small; the previous window's rows are overwritten, so read (or copy)
    them first.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def take(self, name: str, n: int, width: int, dtype: type) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or len(buf) < n:
            size = max(n, 3 * len(buf) // 2) if buf is not None else n
            buf = self._buffers[name] = np.empty((size, width), dtype)
        rows: np.ndarray = buf[:n]
        return rows


class Simulation:
    """One run over fixed workloads.  Build, call :meth:`run`, read the tables.

    Without a control plane every deployment's ``replicas`` are ready at t = 0
    in its ``datacenter`` and stay (the engine tests and the benchmark use
    this); with one, replicas come and go as it decides.
    """

    def __init__(
        self,
        plans: list[DeploymentPlan],
        *,
        horizon_s: float,
        clients: ClientPolicy,
        jitter_rng: np.random.Generator,
        timeline_interval_s: float = 60.0,
        drain_limit_s: float | None = None,
        control: ControlPlane | None = None,
        chunk_s: float | None = None,
        on_finished: Callable[[Finished], None] | None = None,
        engine: str = "fast",
        router_rng: np.random.Generator | None = None,
    ):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        self.engine = engine
        self.env = Clock()
        self.plans = plans
        self.names = [p.name for p in plans]
        self.horizon = horizon_s
        self.drain_limit = drain_limit_s if drain_limit_s is not None else max(horizon_s, 3600.0)
        self.jitter_rng = jitter_rng
        self.interval = timeline_interval_s
        self.control = control
        if chunk_s is not None and not chunk_s > 0:
            raise ValueError(f"chunk_s must be > 0, got {chunk_s!r}")
        self.chunk_s = chunk_s
        self.on_finished = on_finished
        self.router_rng = router_rng if router_rng is not None else np.random.default_rng(0)
        self.caches = pc.PrefixCacheState.empty()
        self._cache_pool: dict[int, list[tuple[int, int, int]]] = {}  # slots -> free regions
        self.sessions = routers.SessionIndex()
        self.has_prefixes = [False] * len(plans)  # a window carried chains of block ids
        self._loaded_until = 0.0  # arrivals before this time are in (or through) the state
        self._loaded = 0  # requests loaded so far: the next one's index in arrival order
        self._index = np.zeros(0, np.int64)  # arrival-order index of each state row
        self._rows = RowBuffers()  # the memory behind the state's request rows
        self._last_finish = -_INF
        self.n_replicas = 0
        self.state = self._initial_state(plans, clients)
        self.kernel_dc: list[str] = []  # datacenter of each ready replica, by kernel index
        self.timeline: list[TimelineRow] = []
        self.allocation: list[AllocationRow] = []
        self.ready_area = np.zeros(len(plans))
        self._ready_t = np.zeros(len(plans))
        self.max_ready = np.zeros(len(plans), dtype=np.int64)
        self._last_sample_t = 0.0
        self._last_snapshot: dict[int, tuple[float, ...]] = {}
        self._held: set[tuple[str, str, str]] = set()  # (datacenter, type, holder) ever held
        self.end_s = 0.0

    # -- set-up ------------------------------------------------------------
    def _initial_state(self, plans: list[DeploymentPlan], clients: ClientPolicy) -> KernelState:
        n_dep = len(plans)
        exact = self.engine == "exact"
        d_i = np.zeros((n_dep, L.N_DI), np.int64)
        d_f = np.zeros((n_dep, L.N_DF))
        maxc = np.array([p.shape.max_concurrency for p in plans], np.int64)
        budget = [self._budget(p) for p in plans]
        width = int(maxc.max()) + 1
        d_M = np.zeros((n_dep, width))
        d_C = np.zeros((n_dep, width))
        pf_width = max(budget) + 1
        d_PF = np.ones((n_dep, len(L.TABLE_ROWS), pf_width + width))
        for i, p in enumerate(plans):
            terms = p.shape.iteration_terms(int(maxc[i]), budget[i])
            d_M[i, : len(terms["M"])] = terms["M"]
            d_C[i, : len(terms["C"])] = terms["C"]
            d_f[i, L.DF_M1], d_f[i, L.DF_C1] = terms["m1"], terms["c1"]
            for row, name in enumerate(L.TABLE_ROWS):
                d_PF[i, row, : len(terms[name])] = terms[name]
            d_f[i, L.DF_ATTN] = terms["attn"]
            d_f[i, L.DF_FLOPS] = terms["flops"]
            d_f[i, L.DF_KEEP] = terms["keep"]
            d_f[i, L.DF_OVERHEAD] = terms["overhead_s"]
            d_f[i, L.DF_M1R], d_f[i, L.DF_C1R] = terms["m1r"], terms["c1r"]
            d_f[i, L.DF_LIN], d_f[i, L.DF_MODE] = terms["lin"], float(terms["mode"])
            if p.kv_admission not in KV_ADMISSIONS:
                raise ValueError(f"kv_admission must be one of {KV_ADMISSIONS}")
            d_f[i, L.DF_CHUNK] = float(budget[i])
            d_f[i, L.DF_LAST_ATTEMPT] = 0.0
            d_i[i, L.DI_MAXC] = maxc[i]
            d_i[i, L.DI_KVCAP] = p.shape.kv_capacity_tokens
            d_i[i, L.DI_MAX_QUEUE] = -1 if p.max_queue is None else p.max_queue
            d_i[i, L.DI_QUEUE_COLD] = int(p.queue_on_cold_start)
            d_i[i, L.DI_Q_HEAD] = d_i[i, L.DI_Q_TAIL] = -1
            d_i[i, L.DI_MNBT] = budget[i]
            d_i[i, L.DI_BLOCK] = p.kv_block_tokens
            d_i[i, L.DI_GROW] = int(exact and p.kv_admission == "grow")
            d_i[i, L.DI_CONTEXT] = p.context_tokens or 0
            d_i[i, L.DI_ROUTER] = routers.NAMES.index(p.router)
            d_i[i, L.DI_PREFIX] = int(p.prefix_caching)
            d_i[i, L.DI_HASH_BLOCK] = p.block_tokens
            d_f[i, L.DF_BAL_ABS], d_f[i, L.DF_BAL_REL] = p.balance_abs, p.balance_rel
        empty_i = np.zeros(0, np.int64)
        randomly = any(p.router == "random" for p in plans)
        caches = self.caches
        state = KernelState(
            rq_f=np.zeros((0, L.N_QF)), rq_i=np.zeros((0, L.N_QI), np.int64),
            blk_ids=empty_i,
            d_i=d_i, d_f=d_f, d_M=d_M, d_C=d_C, d_PF=d_PF,
            d_reps=np.full((n_dep, 4), -1, np.int64),
            r_i=np.zeros((0, L.N_RI), np.int64), r_f=np.zeros((0, L.N_RF)),
            hv=np.zeros(0), hr=np.zeros(0, np.int64),
            ih_key=np.zeros(0), ih_item=np.zeros(0, np.int64), ih_pos=np.zeros(0, np.int64),
            rt_t=np.zeros(1024), rt_seq=np.zeros(1024, np.int64),
            rt_req=np.zeros(1024, np.int64),
            pc_r=caches.pc_r, pc_s=caches.slots, pc_tab=caches.tab,
            sess_rep=np.zeros(0, np.int64), scratch=np.zeros((2, 4), np.int64),
            ru=self.router_rng.random(_UNIFORM_BLOCK) if randomly else np.zeros(1),
            uniforms=self.jitter_rng.random(_UNIFORM_BLOCK) if clients.jitter else np.zeros(0),
            client=clients.as_array(), counters=np.zeros(L.N_COUNTERS, np.int64),
        )
        state.counters[L.C_ENGINE] = L.ENGINES.index(self.engine)
        self.state = state
        self._load_window(self._window_end(0.0))
        return state

    @staticmethod
    def _budget(plan: DeploymentPlan) -> int:
        """Tokens per iteration: ``max_num_batched_tokens``; by default the shape's
        prefill chunk, raised to max_concurrency (every running request decodes)."""
        budget = plan.max_num_batched_tokens or max(
            plan.shape.prefill_chunk, plan.shape.max_concurrency)
        if budget < plan.shape.max_concurrency:
            raise ValueError(
                f"max_num_batched_tokens ({budget}) must be at least max_concurrency "
                f"({plan.shape.max_concurrency}): every running request decodes each iteration"
            )
        return int(budget)

    # -- windows of arrivals ------------------------------------------------
    def _window_end(self, t: float) -> float:
        """End of the window of arrivals that starts at ``t``: infinity for the last one."""
        if self.chunk_s is None:
            return _INF
        end = t + self.chunk_s
        return end if end < self.horizon else _INF

    def _window(self, t0: float, t1: float) -> dict[str, np.ndarray]:
        """Requests arriving in ``[t0, t1)``, in arrival order (ties: deployment, then trace):
        their columns, and ``blk_ids``, their chains of block ids end to end."""
        times, inp, out = [], [], []
        n_blocks: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        sess: list[np.ndarray] = []
        for d, p in enumerate(self.plans):
            if p.source is not None:
                w = p.source.take(t0, t1)
                times.append(w.arrival_s)
                inp.append(w.input_tokens)
                out.append(w.output_tokens)
                self._prefixes(d, p, w, n_blocks, ids, sess)
            else:
                a, b = np.searchsorted(p.arrival_s, [t0, t1], side="left")
                times.append(p.arrival_s[a:b])
                inp.append(p.input_tokens[a:b])
                out.append(p.output_tokens[a:b])
                self._prefixes(d, p, None, n_blocks, ids, sess, int(b - a))
        arrival = np.concatenate(times).astype(np.float64)
        # one deployment's arrivals are already in order: no sort, no copies
        order = np.argsort(arrival, kind="stable") if len(times) > 1 else None

        def pick(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
            joined: np.ndarray = np.concatenate(arrays).astype(dtype, copy=False)
            return joined if order is None else joined[order]

        counts = np.concatenate(n_blocks).astype(np.int64)
        flat_ids = np.concatenate(ids).astype(np.int64)
        off = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if order is not None:  # the chains follow their requests' new order
            counts, off = counts[order], off[order]
            flat_ids = flat_ids[index_ranges(off, counts)]
            off = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return {
            "arrival": arrival if order is None else arrival[order],
            "dep": pick([np.full(len(t), d, np.int64) for d, t in enumerate(times)], np.int64),
            "inp": pick(inp, np.int64), "out": pick(out, np.int64), "off": off, "n": counts,
            "sess": pick(sess, np.int64), "blk_ids": flat_ids,
        }

    def _prefixes(self, d: int, p: DeploymentPlan, w: Any, n_blocks: list[np.ndarray],
                  ids: list[np.ndarray], sess: list[np.ndarray], n: int = 0) -> None:
        """Append a window's chains of block ids and sessions for deployment ``d``.

        Chains are kept only where the deployment caches prefixes.
        """
        n = len(w.arrival_s) if w is not None else n
        chains = w is not None and getattr(w, "n_blocks", None) is not None and p.prefix_caching
        if chains and n:
            if int(w.block_tokens) != p.block_tokens:
                raise ValueError(f"{p.name}: chains of {w.block_tokens}-token blocks, "
                                 f"expected {p.block_tokens}")
            self.has_prefixes[d] = True
            n_blocks.append(np.asarray(w.n_blocks, np.int64))
            ids.append(np.asarray(w.block_ids, np.int64))
        else:
            n_blocks.append(np.zeros(n, np.int64))
            ids.append(np.zeros(0, np.int64))
        s = getattr(w, "session", None) if w is not None else None
        if s is None:
            sess.append(np.full(n, -1, np.int64))
        else:
            s = np.asarray(s, np.int64)
            keyed = np.where(s >= 0, s * len(self.plans) + d, -1)
            sess.append(self.sessions.dense(keyed))

    def _load_window(self, t1: float) -> None:
        """Hand finished requests over, keep those in flight, append arrivals up to ``t1``.

        Every request loaded so far has arrived (the kernel has reached the
        window's end), so a row of the state is either finished or in flight.
        """
        s = self.state
        n_old = len(s.arrival)
        if s.counters[L.C_NEXT_ARRIVAL] != n_old:
            raise RuntimeError("a window of arrivals was replaced before all of it arrived")
        keep = s.status == L.IN_FLIGHT
        self._harvest(~keep)
        new = self._window(self._loaded_until, t1)
        n_new = len(new["arrival"])
        kept = np.flatnonzero(keep)
        n_keep = len(kept)
        # renumber: kept request kept[j] becomes j; finished ones -1 (never referenced)
        renumber = np.full(n_old + 1, -1, np.int64)  # renumber[-1] = renumber[n_old] = -1
        renumber[kept] = np.arange(n_keep)
        kept_i, kept_f = s.rq_i[kept], s.rq_f[kept]  # copies: the rows are rewritten below
        link = kept_i[:, L.QI_LINK]
        kept_i[:, L.QI_LINK] = np.where(link >= 0, renumber[link], link)  # markers (< -1) kept
        # chains of block ids: the kept requests' first, then the new ones
        gather = index_ranges(kept_i[:, L.PX_OFF], kept_i[:, L.PX_N])
        s.blk_ids = np.concatenate([s.blk_ids[gather], new["blk_ids"]])
        kept_i[:, L.PX_OFF] = np.cumsum(kept_i[:, L.PX_N]) - kept_i[:, L.PX_N]
        if len(self.sessions) > len(s.sess_rep):
            grown = np.full(max(len(self.sessions), 2 * len(s.sess_rep)), -1, np.int64)
            grown[: len(s.sess_rep)] = s.sess_rep
            s.sess_rep = grown
        # the kept rows, then the new ones, in the same memory every window: a
        # fresh array each window would cost a page fault per 4 KiB written
        s.rq_i = self._rows.take("rq_i", n_keep + n_new, L.N_QI, np.int64)
        s.rq_f = self._rows.take("rq_f", n_keep + n_new, L.N_QF, np.float64)
        s.rq_i[:n_keep], s.rq_f[:n_keep] = kept_i, kept_f
        new_i, new_f = s.rq_i[n_keep:], s.rq_f[n_keep:]
        new_f[:] = np.nan
        new_f[:, L.QF_ARRIVAL] = new["arrival"]
        new_i[:] = 0
        new_i[:, L.QI_DEP], new_i[:, L.QI_IN], new_i[:, L.QI_OUT] = (
            new["dep"], new["inp"], new["out"])
        new_i[:, L.QI_REPLICA] = new_i[:, L.QI_LINK] = -1
        new_i[:, L.PX_OFF], new_i[:, L.PX_N] = new["off"] + len(gather), new["n"]
        new_i[:, L.PX_SESS] = new["sess"]
        self._index = np.concatenate(
            [self._index[kept], self._loaded + np.arange(n_new, dtype=np.int64)]
        )
        # request indices held by queues, prefill lists and heaps
        for col in (L.DI_Q_HEAD, L.DI_Q_TAIL):
            s.d_i[:, col] = renumber[s.d_i[:, col]]
        n_rep = self.n_replicas
        for col in (L.RI_PF_HEAD, L.RI_PF_TAIL):
            s.r_i[:n_rep, col] = renumber[s.r_i[:n_rep, col]]
        for r in range(n_rep):
            off, n_dec = int(s.r_i[r, L.RI_HEAP_OFF]), int(s.r_i[r, L.RI_HEAP_N])
            s.hr[off : off + n_dec] = renumber[s.hr[off : off + n_dec]]
        size = int(s.counters[L.C_RETRY_SIZE])
        s.rt_req[:size] = renumber[s.rt_req[:size]]
        s.counters[L.C_NEXT_ARRIVAL] = n_keep
        s.counters[L.C_OUTSTANDING] += n_new
        self._loaded += n_new
        self._loaded_until = t1

    def _harvest(self, done: np.ndarray) -> None:
        """Hand the requests of rows ``done`` to ``on_finished``."""
        s = self.state
        done = np.flatnonzero(done)
        if not len(done):
            return
        finished = s.finish_t[done]
        finished = finished[~np.isnan(finished)]
        if len(finished):
            self._last_finish = max(self._last_finish, float(finished.max()))
        if self.on_finished is not None:
            # one gather per column (each comes out contiguous; a transposed copy of
            # the rows would be several times slower)
            arrays = {"rq_f": s.rq_f, "rq_i": s.rq_i}
            self.on_finished(Finished(
                **{name: arrays[array][done, col]
                   for name, (array, col) in L.REQUEST_COLUMNS.items() if name in _FINISHED},
                index=self._index[done],
            ))

    # -- the control plane's hands on the request path ---------------------
    def ready_replica(self, dep: int, datacenter: str) -> int:
        """A replica of ``dep`` starts serving now; its index in the request path."""
        s = self.state
        r = self.n_replicas
        if r >= len(s.r_i):
            self._grow_replicas(max(8, 2 * len(s.r_i)))
        maxc = int(s.d_i[dep, L.DI_MAXC])
        # each replica's decode heap follows the previous one's in hv/hr
        off = 0
        if r:
            off = int(s.r_i[r - 1, L.RI_HEAP_OFF] + s.d_i[s.r_i[r - 1, L.RI_DEP], L.DI_MAXC])
        if off + maxc > len(s.hv):
            size = max(2 * len(s.hv), off + maxc)
            s.hv = np.resize(s.hv, size)
            s.hr = np.resize(s.hr, size)
        t = self.env.now
        s.r_i[r] = 0
        s.r_f[r] = 0.0
        s.r_i[r, L.RI_DEP] = dep
        s.r_i[r, L.RI_PF_HEAD] = s.r_i[r, L.RI_PF_TAIL] = -1
        s.r_i[r, L.RI_HEAP_OFF] = off
        s.r_f[r, L.RF_LAST] = s.r_f[r, L.RF_BUSY_SINCE] = t
        # a new entry at the end of the indexed heap, key infinity: no sifting needed
        s.ih_key[r] = _INF
        s.ih_item[r] = r
        s.ih_pos[r] = r
        self.n_replicas = r + 1
        s.counters[L.C_REPLICA_HEAP] = self.n_replicas
        self.kernel_dc.append(datacenter)
        self._touch_ready(dep, t)
        n = int(s.d_i[dep, L.DI_NREPS])
        if n >= s.d_reps.shape[1]:
            wider = np.full((s.d_reps.shape[0], 2 * s.d_reps.shape[1]), -1, np.int64)
            wider[:, : s.d_reps.shape[1]] = s.d_reps
            s.d_reps = wider
        s.d_reps[dep, n] = r
        s.d_i[dep, L.DI_NREPS] = n + 1
        if s.scratch.shape[1] < s.d_reps.shape[1]:
            s.scratch = np.zeros((2, s.d_reps.shape[1]), np.int64)
        self._give_cache(r, dep)
        self.max_ready[dep] = max(self.max_ready[dep], n + 1)
        K.fill_and_reschedule(r, t, *s.args())
        return r

    # -- prefix caches ------------------------------------------------------
    def _give_cache(self, r: int, dep: int) -> None:
        """An empty prefix cache for replica ``r`` (a stopped replica's region if one fits)."""
        plan = self.plans[dep]
        c = self.caches
        if r >= len(c.pc_r):
            grown = np.zeros((max(8, 2 * len(c.pc_r), r + 1), pc.N_PC), np.int64)
            grown[: len(c.pc_r)] = c.pc_r
            c.pc_r = grown
        c.pc_r[r] = 0
        if plan.prefix_caching:
            # room for as many full blocks as the KV cache holds, plus one partial
            # block per request it may run
            slots = (plan.shape.kv_capacity_tokens // plan.block_tokens
                     + plan.shape.max_concurrency + 16)
            pool = self._cache_pool.get(slots)
            if pool:
                slot_off, tab_off, mask = pool.pop()
                c.pc_r[r, pc.PC_SLOT_OFF], c.pc_r[r, pc.PC_SLOTS] = slot_off, slots
                c.pc_r[r, pc.PC_TAB_OFF], c.pc_r[r, pc.PC_TAB_MASK] = tab_off, mask
                pc.clear(r, *c.args())
            else:
                c.add_replica(r, slots)
        s = self.state
        s.pc_r, s.pc_s, s.pc_tab = c.pc_r, c.slots, c.tab

    def _drop_cache(self, r: int) -> None:
        """Replica ``r`` stopped: its cache is lost, its region free for another."""
        c = self.caches
        if r < len(c.pc_r) and c.pc_r[r, pc.PC_SLOTS] > 0:
            row = c.pc_r[r]
            pc.clear(r, *c.args())
            self._cache_pool.setdefault(int(row[pc.PC_SLOTS]), []).append(
                (int(row[pc.PC_SLOT_OFF]), int(row[pc.PC_TAB_OFF]), int(row[pc.PC_TAB_MASK])))
            row[pc.PC_SLOTS] = 0

    def cached_tokens(self, dep: int) -> float:
        """Prompt tokens of ``dep`` served from prefix caches so far (of ``tokens``' first)."""
        return float(self.state.d_f[dep, L.DF_TOKENS_CACHED])

    def _unroute(self, r: int) -> None:
        """Take replica ``r`` out of its deployment's routing list."""
        s = self.state
        dep = int(s.r_i[r, L.RI_DEP])
        n = int(s.d_i[dep, L.DI_NREPS])
        row = list(s.d_reps[dep, :n])
        if r in row:
            self._touch_ready(dep, self.env.now)
            row.remove(r)
            s.d_reps[dep, : n - 1] = row
            s.d_reps[dep, n - 1] = -1
            s.d_i[dep, L.DI_NREPS] = n - 1

    def drain_replica(self, r: int) -> bool:
        """Stop routing to ``r``; True if it is already empty (stopped now)."""
        s = self.state
        self._unroute(r)
        if s.r_i[r, L.RI_N] > 0:  # busy time counts while it is ready, as ready time does
            s.r_f[r, L.RF_BUSY] += self.env.now - s.r_f[r, L.RF_BUSY_SINCE]
        s.r_i[r, L.RI_DRAINING] = 1
        empty = bool(s.r_i[r, L.RI_N] == 0)
        if empty:
            self._drop_cache(r)
        return empty

    def crash_replica(self, r: int) -> int:
        """Lose replica ``r`` now; its in-flight requests reach the router again at once."""
        s = self.state
        t = self.env.now
        self._unroute(r)
        lost = []
        q = int(s.r_i[r, L.RI_PF_HEAD])
        while q >= 0:
            lost.append(q)
            q = int(s.rq_i[q, L.QI_LINK])
        off, n_dec = int(s.r_i[r, L.RI_HEAP_OFF]), int(s.r_i[r, L.RI_HEAP_N])
        lost.extend(int(q) for q in s.hr[off : off + n_dec])
        dep = int(s.r_i[r, L.RI_DEP])
        if s.r_i[r, L.RI_N] > 0 and s.r_i[r, L.RI_DRAINING] == 0:
            s.r_f[r, L.RF_BUSY] += t - s.r_f[r, L.RF_BUSY_SINCE]
        # the level monitor of requests in service loses them
        s.d_f[dep, L.DF_SERV_AREA] += s.d_i[dep, L.DI_SERVING] * (t - s.d_f[dep, L.DF_SERV_T])
        s.d_f[dep, L.DF_SERV_T] = t
        s.d_i[dep, L.DI_SERVING] -= len(lost)
        s.r_i[r, L.RI_N] = s.r_i[r, L.RI_KV_RES] = s.r_i[r, L.RI_HEAP_N] = 0
        s.r_i[r, L.RI_PF_HEAD] = s.r_i[r, L.RI_PF_TAIL] = -1
        s.r_i[r, L.RI_DRAINING] = 1
        s.r_i[r, L.RI_RUN_K] = 0
        s.r_f[r, L.RF_KV] = s.r_f[r, L.RF_CTX] = 0.0
        K.ih_update(s.ih_key, s.ih_item, s.ih_pos, self.n_replicas, r, _INF)
        self._drop_cache(r)
        for q in sorted(lost):
            s.rq_f[q, L.QF_START] = s.rq_f[q, L.QF_FIRST] = np.nan
            s.rq_i[q, L.QI_REPLICA] = -1
            s.rq_i[q, L.QI_DONE] = s.rq_i[q, L.QI_GEN] = 0  # sent again from scratch
            s.rq_i[q, [L.PX_PINNED, L.PX_HIT, L.PX_CACHED]] = 0
            if s.counters[L.C_RETRY_SIZE] >= len(s.rt_t):
                self._grow_retries()
            K.retry_now(q, t, s.rt_t, s.rt_seq, s.rt_req, s.rq_i, s.counters)
        s.d_i[dep, L.DI_RESENDS] += len(lost)
        return len(lost)

    def counters(self, dep: int) -> dict[str, int]:
        """Per-deployment request counters: HTTP answers, resends, preemptions, arrivals."""
        row = self.state.d_i[dep]
        return {
            "arrivals": int(row[L.DI_ARRIVALS]), "attempts": int(row[L.DI_ATTEMPTS]),
            "completions": int(row[L.DI_COMPLETIONS]),
            "http_400": int(row[L.DI_400]), "http_429": int(row[L.DI_429]),
            "http_503": int(row[L.DI_503]), "resends": int(row[L.DI_RESENDS]),
            "preemptions": int(row[L.DI_PREEMPTIONS]),
        }

    def tokens(self, dep: int) -> tuple[float, float]:
        """(prompt tokens prefilled, output tokens of finished requests) of ``dep`` so far."""
        row = self.state.d_f[dep]
        return float(row[L.DF_TOKENS_IN]), float(row[L.DF_TOKENS_OUT])

    def set_notify_cold(self, dep: int, on: bool) -> None:
        self.state.d_i[dep, L.DI_NOTIFY_COLD] = int(on)

    def last_attempt(self, dep: int) -> float:
        return float(self.state.d_f[dep, L.DF_LAST_ATTEMPT])

    def cumulative(self, dep: int, t: float) -> tuple[float, ...]:
        """(t, attempts, ∫ requests queued or in service dt, prompt tokens, output tokens,
        first attempts)."""
        s = self.state
        inflight = self.queue_area(dep, t) + float(
            s.d_f[dep, L.DF_SERV_AREA] + s.d_i[dep, L.DI_SERVING] * (t - s.d_f[dep, L.DF_SERV_T])
        )
        return (t, float(s.d_i[dep, L.DI_ATTEMPTS]), inflight,
                float(s.d_f[dep, L.DF_TOKENS_IN]), float(s.d_f[dep, L.DF_TOKENS_OUT]),
                float(s.d_i[dep, L.DI_ARRIVALS]))

    def mean_sizes(self, dep: int) -> tuple[float, float] | None:
        """(prompt, output) tokens per request served so far; None before the first finishes.

        Prompt tokens count when a prefill ends and output tokens when a request
        finishes, both over requests finished: requests still decoding make the
        prompt mean slightly high early in a run.
        """
        s = self.state
        done = int(s.d_i[dep, L.DI_COMPLETIONS])
        if done == 0:
            return None
        return (float(s.d_f[dep, L.DF_TOKENS_IN]) / done,
                float(s.d_f[dep, L.DF_TOKENS_OUT]) / done)

    def capacity_per_replica(self, dep: int) -> float:
        """Requests one replica holds at once: max_concurrency, or fewer of the sizes
        seen so far when the KV cache binds."""
        s = self.state
        maxc = float(s.d_i[dep, L.DI_MAXC])
        done = s.d_i[dep, L.DI_COMPLETIONS]
        if done == 0:
            return maxc
        tokens = (s.d_f[dep, L.DF_TOKENS_IN] + s.d_f[dep, L.DF_TOKENS_OUT]) / done
        return max(1.0, min(maxc, float(s.d_i[dep, L.DI_KVCAP]) // max(tokens, 1.0)))

    def _grow_replicas(self, cap: int) -> None:
        s = self.state
        for name in ("r_i", "r_f", "ih_key", "ih_item", "ih_pos"):
            old = getattr(s, name)
            new = np.zeros((cap, *old.shape[1:]), old.dtype)
            new[: len(old)] = old
            setattr(s, name, new)

    def _grow_retries(self) -> None:
        s = self.state
        size = 2 * len(s.rt_t)
        s.rt_t, s.rt_seq, s.rt_req = (np.resize(a, size) for a in (s.rt_t, s.rt_seq, s.rt_req))

    def _touch_ready(self, dep: int, t: float) -> None:
        self.ready_area[dep] += self.state.d_i[dep, L.DI_NREPS] * (t - self._ready_t[dep])
        self._ready_t[dep] = t

    # -- monitors ----------------------------------------------------------
    def queue_area(self, dep: int, t: float) -> float:
        s = self.state
        return float(s.d_f[dep, L.DF_Q_AREA] + s.d_i[dep, L.DI_Q_LEN] * (t - s.d_f[dep, L.DF_Q_T]))

    def busy_time(self, dep: int, t: float) -> float:
        """Replica-seconds of ``dep`` with at least one request in service, up to ``t``."""
        s = self.state
        n = self.n_replicas
        mine = s.r_i[:n, L.RI_DEP] == dep
        busy = s.r_f[:n, L.RF_BUSY][mine]
        # a draining replica is no longer ready: its busy time closed when it drained
        active = (s.r_i[:n, L.RI_N][mine] > 0) & (s.r_i[:n, L.RI_DRAINING][mine] == 0)
        since = s.r_f[:n, L.RF_BUSY_SINCE][mine]
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
                float(s.d_i[d, L.DI_ARRIVALS]), float(s.d_i[d, L.DI_COMPLETIONS]),
                self.queue_area(d, t), float(self.ready_area[d]), self.busy_time(d, t),
                float(s.d_i[d, L.DI_503]), float(s.d_i[d, L.DI_429]),
                float(s.d_f[d, L.DF_TOKENS_IN]), float(s.d_f[d, L.DF_TOKENS_CACHED]),
            )
            prev = self._last_snapshot.get(d, (0.0,) * len(now))
            delta = [a - b for a, b in zip(now, prev, strict=True)]
            ready = int(s.d_i[d, L.DI_NREPS])
            stages = dict.fromkeys(STAGES, 0)
            desired, state, label = ready, "READY", "READY"
            gpus = ready * self.plans[d].shape.gpus
            if self.control is not None:
                ctl = self.control.deps[d]
                for life in ctl.replicas:
                    stages[life.stage] += 1
                desired, state, label = ctl.desired, ctl.state, self.control.label(ctl)
                # GPUs the inventory has granted it — as the allocation table records
                # them: a replica granted GPUs at this instant (an outage ending, GPUs
                # freed) holds them although its life has not left "pending" yet.
                gpus = sum(g for (_dc, _acc, holder), g in self.control.inventory.held_by
                           .items() if holder == d)
            else:
                stages["ready"] = ready
            self.timeline.append(
                TimelineRow(
                    t_end=t, interval_s=span, deployment=d,
                    arrivals=round(delta[0]), completions=round(delta[1]),
                    desired_replicas=desired,
                    pending_replicas=stages["pending"],
                    scheduling_replicas=stages["scheduling"],
                    downloading_replicas=stages["downloading"],
                    initializing_replicas=stages["initializing"],
                    ready_replicas=stages["ready"],
                    draining_replicas=stages["draining"],
                    gpus_allocated=gpus,
                    queue_depth=delta[2] / span,
                    busy_fraction=delta[4] / delta[3] if delta[3] > 0 else 0.0,
                    http_503=round(delta[5]), http_429=round(delta[6]),
                    prefix_cache_hit_rate=delta[8] / delta[7] if delta[7] > 0 else 0.0,
                    state=state, label=label,
                )
            )
            self._last_snapshot[d] = now
        if self.control is not None:
            # a holder that once held GPUs somewhere gets a row there every interval, 0
            # included: a deployment scaled to zero reads 0, not a gap
            inv = self.control.inventory
            for (dc, acc, dep), gpus in inv.held_by.items():
                if gpus:
                    self._held.add((dc, acc, self.names[dep]))
            for (dc, acc), gpus in inv.background.items():
                if gpus:
                    self._held.add((dc, acc, "background"))
            index = {name: i for i, name in enumerate(self.names)}
            for dc, acc, name in sorted(self._held):
                held = (inv.background.get((dc, acc), 0) if name == "background"
                        else inv.held_by.get((dc, acc, index[name]), 0))
                self.allocation.append(AllocationRow(t, dc, acc, name, int(held)))
        self._last_sample_t = t

    # -- the loop ----------------------------------------------------------
    def run(self, progress: Callable[[float], None] | None = None) -> None:
        env = self.env
        if self.control is None:
            for dep, plan in enumerate(self.plans):
                for _ in range(plan.replicas):
                    self.ready_replica(dep, plan.datacenter)
        else:
            self.control.start(self)
        env.process(self._sampler())
        s = self.state
        horizon, stop = self.horizon, self.horizon + self.drain_limit
        while True:
            tc = env.peek()
            window = self._loaded_until
            limit = min(tc, stop, window)
            reason, t = K.run_until(limit, *s.args())
            if reason == L.STOP_NEED_UNIFORMS:
                s.uniforms = self.jitter_rng.random(_UNIFORM_BLOCK)
                s.counters[L.C_UNIFORM] = 0
                continue
            if reason == L.STOP_NEED_ROUTER_UNIFORMS:
                s.ru = self.router_rng.random(_UNIFORM_BLOCK)
                s.counters[L.C_ROUTER_UNIFORM] = 0
                continue
            if reason == L.STOP_RETRY_FULL:
                self._grow_retries()
                continue
            if reason in (L.STOP_COLD, L.STOP_DRAINED):
                env.advance(t)
                if self.control is not None:
                    which = int(s.counters[L.C_LAST])
                    if reason == L.STOP_COLD:
                        self.control.on_cold(which)
                    else:
                        self._drop_cache(which)
                        self.control.on_drained(which)
                continue
            if window <= min(tc, stop):
                # every request event before the window's end is done: next window
                self._load_window(self._window_end(window))
                continue
            # every request event before the next control event is done
            if tc > stop or (tc > horizon and s.counters[L.C_OUTSTANDING] == 0):
                break
            env.step()
            if progress is not None:
                progress(min(env.now, horizon))
        if tc > stop:
            end = stop
        else:
            finished = s.finish_t[~np.isnan(s.finish_t)]
            last = max(self._last_finish, float(finished.max()) if len(finished) else 0.0)
            end = max(env.now, horizon, last)
        self._close(end)

    def _close(self, t: float) -> None:
        """Stop the clock at ``t``: replicas stop, unfinished requests are marked."""
        self.env.advance(t)
        self._sample(t)
        for d in range(len(self.plans)):
            self._touch_ready(d, t)
        if self.control is not None:
            self.control.finish()
        s = self.state
        s.status[s.status == L.IN_FLIGHT] = L.UNFINISHED
        self._harvest(np.ones(len(s.status), dtype=bool))
        self.end_s = t
