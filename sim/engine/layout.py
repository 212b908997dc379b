"""The request path's array layout, declared once: columns, codes, the state.

Both engines (``fast`` and ``exact``) run on one :class:`KernelState`.  The
column constants below are the engine's private vocabulary: code outside
``sim.engine`` reads the state through :class:`sim.engine.core.Simulation`'s
accessors (``counters``, ``busy_time``, …), never through a column index.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

# Request status codes.
IN_FLIGHT, OK, FAILED_503, REJECTED_429, UNFINISHED, REJECTED_400 = 0, 1, 2, 3, 4, 5
STATUS_NAMES = ("in_flight", "ok", "failed_503", "rejected_429", "unfinished", "rejected_400")

# Engines.
ENGINE_FAST, ENGINE_EXACT = 0, 1
ENGINES = ("fast", "exact")

# Why run_until returned.
STOP_LIMIT, STOP_COLD, STOP_NEED_UNIFORMS, STOP_RETRY_FULL, STOP_DRAINED = 0, 1, 2, 3, 4
STOP_NEED_ROUTER_UNIFORMS = 5

# Counters in KernelState.counters.
(C_NEXT_ARRIVAL, C_OUTSTANDING, C_RETRY_SIZE, C_RETRY_SEQ, C_UNIFORM, C_REPLICA_HEAP,
 C_LAST, C_ENGINE, C_ROUTER_UNIFORM) = range(9)
N_COUNTERS = 9

# Integer fields of a deployment: columns of KernelState.d_i.
(DI_MAXC, DI_KVCAP, DI_MAX_QUEUE, DI_QUEUE_COLD, DI_NOTIFY_COLD, DI_Q_HEAD, DI_Q_TAIL,
 DI_Q_LEN, DI_503, DI_429, DI_ARRIVALS, DI_ATTEMPTS, DI_COMPLETIONS, DI_NREPS, DI_SERVING,
 DI_400, DI_RESENDS, DI_PREEMPTIONS, DI_MNBT, DI_BLOCK, DI_GROW, DI_CONTEXT,
 DI_ROUTER, DI_PREFIX, DI_HASH_BLOCK, DI_RR) = range(26)
N_DI = 26
# Float fields of a deployment: columns of KernelState.d_f.  Token sums are
# floats: an int64 sum of schema-valid token counts could overflow, a float64
# one only loses integer exactness beyond 2**53 tokens.
(DF_CHUNK, DF_M1, DF_C1, DF_Q_AREA, DF_Q_T, DF_SERV_AREA, DF_SERV_T, DF_LAST_ATTEMPT,
 DF_TOKENS_IN, DF_TOKENS_OUT, DF_ATTN, DF_FLOPS, DF_KEEP, DF_OVERHEAD, DF_M1R, DF_C1R, DF_LIN,
 DF_MODE, DF_TOKENS_CACHED, DF_BAL_ABS, DF_BAL_REL) = range(21)
N_DF = 21
# Rows of KernelState.d_PF: Shape.iteration_terms' tables (see there).
T_W, T_WI, T_G, T_CM, T_PT, T_CR, T_MR, T_CRAW = range(8)
TABLE_ROWS = ("W", "Wi", "G", "CM", "PT", "CR", "Mr", "Cr")
# Float fields of a request: columns of KernelState.rq_f (one row per request,
# so that a request's fields share cache lines and a kernel takes one array).
QF_ARRIVAL, QF_ATTEMPT, QF_START, QF_FIRST, QF_FINISH = range(5)
N_QF = 5
# Integer fields of a request: columns of KernelState.rq_i.  `attempts`: client
# attempts (first one + retries); `resends`: times sent again after its replica
# was lost (not attempts); `n503`: attempts answered 503; `link`: next request
# in the FIFO (prefill list or router queue) it is in; `done` (exact engine):
# tokens of its prefill computed (prompt, then resumed); `gen` (exact engine):
# output tokens produced before a preemption; `pf_tok` (fast engine): prompt
# tokens its prefill computes (the uncached).
(QI_DEP, QI_IN, QI_OUT, QI_STATUS, QI_ATTEMPTS, QI_RESENDS, QI_503, QI_REPLICA, QI_LINK,
 QI_DONE, QI_GEN, QI_PF_TOK) = range(12)
# Prefix fields of a request, columns of rq_i too.  Its chain of block ids is
# blk_ids[off : off + n]; `sess` its dense session (−1: none); it pins its first
# `pinned` blocks in its replica's cache; `hit` prompt tokens were cached when it
# was last admitted; `cached` is what its first prefill counted as cached.
PX_OFF, PX_N, PX_SESS, PX_PINNED, PX_HIT, PX_CACHED = range(12, 18)
N_QI = 18
#: the request fields by name: (array, column), for code that reads whole columns
REQUEST_COLUMNS = {
    "arrival": ("rq_f", QF_ARRIVAL), "attempt_t": ("rq_f", QF_ATTEMPT),
    "start_t": ("rq_f", QF_START), "first_t": ("rq_f", QF_FIRST),
    "finish_t": ("rq_f", QF_FINISH),
    "dep": ("rq_i", QI_DEP), "inp": ("rq_i", QI_IN), "out": ("rq_i", QI_OUT),
    "status": ("rq_i", QI_STATUS), "attempts": ("rq_i", QI_ATTEMPTS),
    "resends": ("rq_i", QI_RESENDS), "n503": ("rq_i", QI_503),
    "replica": ("rq_i", QI_REPLICA), "link": ("rq_i", QI_LINK), "done": ("rq_i", QI_DONE),
    "gen": ("rq_i", QI_GEN), "pf_tok": ("rq_i", QI_PF_TOK),
    "sess": ("rq_i", PX_SESS), "cached": ("rq_i", PX_CACHED),
}
# Integer fields of a replica: columns of KernelState.r_i.
(RI_DEP, RI_N, RI_KV_RES, RI_PF_HEAD, RI_PF_TAIL, RI_HEAP_OFF, RI_HEAP_N, RI_DRAINING,
 RI_RUN_K, RI_RUN_P) = range(10)
N_RI = 10
# Float fields of a replica: columns of KernelState.r_f.
(RF_KV, RF_PF_LEFT, RF_VTIME, RF_RATE_D, RF_RATE_P, RF_LAST, RF_BUSY, RF_BUSY_SINCE,
 RF_CTX, RF_RUN_T0, RF_RUN_KV0, RF_RUN_PKV, RF_PF_PEND, RF_PF_NEW, RF_PF_START, RF_PF_X,
 RF_PF_XV) = range(17)
N_RF = 17

# Parameters of one deployment's engine, as DeploymentPlan gives them.
KV_RESERVE, KV_GROW = 0, 1
KV_ADMISSIONS = ("reserve", "grow")


@dataclass
class KernelState:
    """All request-path state, as arrays the kernel reads and writes."""

    # requests (n, sorted by arrival): workload, then outcomes
    rq_f: np.ndarray  # (n, N_QF) f8, see QF_*
    rq_i: np.ndarray  # (n, N_QI) i8, see QI_* and PX_*
    blk_ids: np.ndarray  # i8 block ids of every request's chain
    # deployments (d)
    d_i: np.ndarray  # (d, N_DI) i8, see DI_*
    d_f: np.ndarray  # (d, N_DF) f8, see DF_*
    d_M: np.ndarray  # (d, maxc+1) f8 decode step table
    d_C: np.ndarray
    d_PF: np.ndarray  # (d, len(TABLE_ROWS), mnbt+maxc+1) f8 iteration_time tables, see T_*
    d_reps: np.ndarray  # (d, cap) ready replica ids that take new requests
    # replicas (r)
    r_i: np.ndarray  # (r, N_RI) i8, see RI_*
    r_f: np.ndarray  # (r, N_RF) f8, see RF_*
    hv: np.ndarray  # f8 decode heaps: finishing virtual time
    hr: np.ndarray  # i8 decode heaps: request
    # indexed heap of replicas by next completion time
    ih_key: np.ndarray
    ih_item: np.ndarray
    ih_pos: np.ndarray
    # retry heap
    rt_t: np.ndarray
    rt_seq: np.ndarray
    rt_req: np.ndarray
    # prefix caches (sim.engine.prefix_cache) and routing (sim.engine.routers)
    pc_r: np.ndarray
    pc_s: np.ndarray
    pc_tab: np.ndarray
    sess_rep: np.ndarray  # i8 replica of each (dense) session's last request, −1: none
    scratch: np.ndarray  # (2, width of d_reps) i8: a router's admit and hit columns
    ru: np.ndarray  # pre-drawn U(0,1) for the random router
    # client policy and jitter
    uniforms: np.ndarray  # pre-drawn U(0,1) for full jitter
    client: np.ndarray  # f8 [max_retries, backoff_base, backoff_max, jitter(0/1)]
    counters: np.ndarray  # i8, see C_*

    def args(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name in STATE_FIELDS)

    def column(self, name: str) -> np.ndarray:
        """Request field ``name`` (:data:`REQUEST_COLUMNS`) of every request: a view."""
        array, col = REQUEST_COLUMNS[name]
        view: np.ndarray = getattr(self, array)[:, col]
        return view

    @property
    def arrival(self) -> np.ndarray:
        return self.column("arrival")

    @property
    def attempt_t(self) -> np.ndarray:
        return self.column("attempt_t")

    @property
    def start_t(self) -> np.ndarray:
        return self.column("start_t")

    @property
    def first_t(self) -> np.ndarray:
        return self.column("first_t")

    @property
    def finish_t(self) -> np.ndarray:
        return self.column("finish_t")

    @property
    def status(self) -> np.ndarray:
        return self.column("status")

    @property
    def attempts(self) -> np.ndarray:
        return self.column("attempts")

    @property
    def replica(self) -> np.ndarray:
        return self.column("replica")


STATE_FIELDS = tuple(f.name for f in fields(KernelState))
