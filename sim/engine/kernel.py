"""The request path: arrivals, routing, batching, retries — on arrays.

This is the engine's inner loop.  It is written in the subset of Python that
numba compiles; where numba is not installed (or ``CAPSIM_NO_JIT=1``), the very
same functions run as plain Python and give identical results (see
:mod:`sim.engine.jit`).

State lives in :class:`~sim.engine.layout.KernelState` (numpy arrays).
:func:`run_until` processes request events strictly before ``t_limit`` — the
time of the next control-plane (SimPy) event — and returns why it stopped.

Routing, admission, the router queue and client retries are the same for
both engines; what a replica does with the requests it admitted is either
:mod:`sim.engine.fast` (processor sharing, a handful of events per request)
or :mod:`sim.engine.exact` (every iteration, as vLLM v1 schedules them).
The deployment's router (:mod:`sim.engine.routers`) picks the replica; each
replica's prefix cache (:mod:`sim.engine.prefix_cache`) is consulted when a
request is admitted (:func:`sim.engine.service.admit`), filled when a prompt's
prefill ends and unpinned when a request leaves.

Requests a real server refuses: when prompt + output exceed the model's
context length, or one replica's whole KV cache, the request ends at once as
``rejected_400`` (HTTP 400) — never queued, never retried.
"""

from __future__ import annotations

import numpy as np

from sim.engine import exact, fast, routers
from sim.engine.heaps import ih_update, rt_pop, rt_push
from sim.engine.jit import JIT, njit
from sim.engine.layout import (
    C_ENGINE,
    C_LAST,
    C_NEXT_ARRIVAL,
    C_OUTSTANDING,
    C_REPLICA_HEAP,
    C_RETRY_SIZE,
    C_ROUTER_UNIFORM,
    C_UNIFORM,
    DF_LAST_ATTEMPT,
    DI_400,
    DI_429,
    DI_503,
    DI_ARRIVALS,
    DI_ATTEMPTS,
    DI_BLOCK,
    DI_CONTEXT,
    DI_KVCAP,
    DI_MAX_QUEUE,
    DI_NOTIFY_COLD,
    DI_NREPS,
    DI_Q_LEN,
    DI_QUEUE_COLD,
    DI_ROUTER,
    ENGINE_EXACT,
    FAILED_503,
    QF_ARRIVAL,
    QF_ATTEMPT,
    QF_FINISH,
    QI_503,
    QI_ATTEMPTS,
    QI_DEP,
    QI_IN,
    QI_LINK,
    QI_OUT,
    QI_RESENDS,
    QI_STATUS,
    REJECTED_400,
    REJECTED_429,
    RI_DEP,
    RI_DRAINING,
    RI_N,
    STOP_COLD,
    STOP_DRAINED,
    STOP_LIMIT,
    STOP_NEED_ROUTER_UNIFORMS,
    STOP_NEED_UNIFORMS,
    STOP_RETRY_FULL,
    KernelState,
)
from sim.engine.routers import route
from sim.engine.service import admit, blocks_of, enqueue, fill, kv_need, pick

__all__ = ["JIT", "KernelState", "fill_and_reschedule", "ih_update", "retry_now", "run_until"]

INF = np.inf
# ``link`` of a request the control plane sends again after losing its replica:
# it reaches the router again without being a new client attempt.
RESEND = -2


@njit(cache=True)
def run_until(t_limit: float, rq_f: np.ndarray, rq_i: np.ndarray, blk_ids: np.ndarray,
              d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray,
              d_reps: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray,
              ih_key: np.ndarray, ih_item: np.ndarray, ih_pos: np.ndarray, rt_t: np.ndarray,
              rt_seq: np.ndarray, rt_req: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray,
              pc_tab: np.ndarray, sess_rep: np.ndarray, scratch: np.ndarray, ru: np.ndarray,
              uniforms: np.ndarray, client: np.ndarray, counters: np.ndarray
              ) -> tuple[int, float]:
    """Process request events with time < ``t_limit``; return (reason, time reached)."""
    n_req = rq_f.shape[0]
    n_rep_heap = counters[C_REPLICA_HEAP]
    is_exact = counters[C_ENGINE] == ENGINE_EXACT
    max_retries = int(client[0])
    t = 0.0
    while True:
        i_next = counters[C_NEXT_ARRIVAL]
        ta = rq_f[i_next, QF_ARRIVAL] if i_next < n_req else INF
        tr = ih_key[0] if n_rep_heap > 0 else INF
        tq = rt_t[0] if counters[C_RETRY_SIZE] > 0 else INF
        if tr <= tq and tr <= ta:
            t = tr
            kind = 0
        elif tq <= ta:
            t = tq
            kind = 1
        else:
            t = ta
            kind = 2
        if t >= t_limit:
            return STOP_LIMIT, t

        if kind == 0:
            # ---- replica r's next event ----------------------------------
            r = ih_item[0]
            d = r_i[r, RI_DEP]
            if is_exact:
                exact.event(r, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr, ih_key,
                            ih_item, ih_pos, counters, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s,
                            pc_tab)
            else:
                fast.event(r, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr, ih_key,
                           ih_item, ih_pos, counters, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s,
                           pc_tab)
            if r_i[r, RI_DRAINING] == 1 and r_i[r, RI_N] == 0:
                counters[C_LAST] = r
                return STOP_DRAINED, t
            continue

        # ---- an attempt reaches the router: a retry or a new arrival ----
        # Room for the retry it may cause, before any state changes.
        if counters[C_RETRY_SIZE] >= rt_t.shape[0]:
            return STOP_RETRY_FULL, t
        if client[3] > 0.0 and counters[C_UNIFORM] >= uniforms.shape[0]:
            return STOP_NEED_UNIFORMS, t
        if counters[C_ROUTER_UNIFORM] >= ru.shape[0]:
            return STOP_NEED_ROUTER_UNIFORMS, t
        resend = False
        if kind == 1:
            q = rt_pop(rt_t, rt_seq, rt_req, counters)
            if rq_i[q, QI_LINK] == RESEND:
                resend = True
                rq_i[q, QI_LINK] = -1
        else:
            q = i_next
            counters[C_NEXT_ARRIVAL] = i_next + 1
            d_i[rq_i[q, QI_DEP], DI_ARRIVALS] += 1
        d = rq_i[q, QI_DEP]
        if not resend:
            rq_i[q, QI_ATTEMPTS] += 1
            rq_f[q, QF_ATTEMPT] = t
            d_i[d, DI_ATTEMPTS] += 1
            d_f[d, DF_LAST_ATTEMPT] = t
        if kind == 2 and _refused(d, q, rq_i, d_i):
            # HTTP 400: more tokens than the model's context or one replica's KV cache
            d_i[d, DI_400] += 1
            rq_i[q, QI_STATUS] = REJECTED_400
            rq_f[q, QF_FINISH] = t
            counters[C_OUTSTANDING] -= 1
            continue
        cold = d_i[d, DI_NREPS] == 0
        if cold and d_i[d, DI_QUEUE_COLD] == 0:
            # no ready replica: 503 DEPLOYMENT_SCALING_UP, not queued
            d_i[d, DI_503] += 1
            rq_i[q, QI_503] += 1
            _retry_or_fail(q, t, FAILED_503, max_retries, client, uniforms, rq_i, rq_f, rt_t,
                           rt_seq, rt_req, counters)
            if d_i[d, DI_NOTIFY_COLD] == 1:
                counters[C_LAST] = d
                return STOP_COLD, t
            continue
        if d_i[d, DI_Q_LEN] == 0 and not cold:
            need = kv_need(d, q, rq_i, d_i)
            if d_i[d, DI_ROUTER] == routers.LEAST_LOADED:
                best = pick(d, need, d_i, d_reps, r_i)
            else:
                best = route(q, d, need, rq_i, blk_ids, d_i, d_f, d_reps, r_i, pc_r, pc_s, pc_tab,
                             sess_rep, scratch, ru, counters)
            if best >= 0:
                if is_exact:
                    admit(q, best, t, need, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r,
                          pc_s, pc_tab)
                    exact.touch(best, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr,
                                ih_key, ih_item, ih_pos, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s,
                                pc_tab)
                else:
                    fast.advance(best, t, r_i, r_f)
                    admit(q, best, t, need, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r,
                          pc_s, pc_tab)
                    fast.admitted(best, q, t, rq_i, r_i, r_f)
                    fast.reschedule(best, d, t, d_M, d_C, d_PF, d_f, rq_i, r_i, r_f, hv, ih_key,
                                    ih_item, ih_pos, n_rep_heap)
                continue
        if d_i[d, DI_MAX_QUEUE] >= 0 and d_i[d, DI_Q_LEN] >= d_i[d, DI_MAX_QUEUE]:
            d_i[d, DI_429] += 1
            _retry_or_fail(q, t, REJECTED_429, max_retries, client, uniforms, rq_i, rq_f, rt_t,
                           rt_seq, rt_req, counters)
            continue
        enqueue(q, d, t, False, rq_i, d_i, d_f)
        if cold and d_i[d, DI_NOTIFY_COLD] == 1:
            counters[C_LAST] = d
            return STOP_COLD, t


@njit(cache=True)
def _refused(d: int, q: int, rq_i: np.ndarray, d_i: np.ndarray) -> bool:
    """Would a real server answer 400: beyond the context length or one replica's KV?"""
    tokens = rq_i[q, QI_IN] + rq_i[q, QI_OUT]
    context = d_i[d, DI_CONTEXT]
    if context > 0 and tokens > context:
        return True
    return blocks_of(tokens, d_i[d, DI_BLOCK]) > d_i[d, DI_KVCAP]


@njit(cache=True)
def fill_and_reschedule(r: int, t: float, rq_f: np.ndarray, rq_i: np.ndarray, blk_ids: np.ndarray,
                        d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray,
                        d_PF: np.ndarray, d_reps: np.ndarray, r_i: np.ndarray, r_f: np.ndarray,
                        hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
                        ih_pos: np.ndarray, rt_t: np.ndarray, rt_seq: np.ndarray,
                        rt_req: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray,
                        sess_rep: np.ndarray, scratch: np.ndarray, ru: np.ndarray,
                        uniforms: np.ndarray, client: np.ndarray, counters: np.ndarray) -> None:
    """A replica has just become ready at ``t``: take queued requests, schedule."""
    d = r_i[r, RI_DEP]
    n_rep_heap = counters[C_REPLICA_HEAP]
    if counters[C_ENGINE] == ENGINE_EXACT:
        fill(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
        exact.schedule(r, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr, ih_key,
                       ih_item, ih_pos, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    else:
        fast.advance(r, t, r_i, r_f)
        fast.fill_fast(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s,
                       pc_tab)
        fast.reschedule(r, d, t, d_M, d_C, d_PF, d_f, rq_i, r_i, r_f, hv, ih_key, ih_item, ih_pos,
                        n_rep_heap)


@njit(cache=True)
def retry_now(q: int, t: float, rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray,
              rq_i: np.ndarray, counters: np.ndarray) -> None:
    """Send request ``q`` to its router again at ``t`` after its replica was lost.

    A resend is not a client attempt: ``attempts`` stays, ``resends`` counts it.
    """
    rq_i[q, QI_RESENDS] += 1
    rq_i[q, QI_LINK] = RESEND
    rt_push(rt_t, rt_seq, rt_req, counters, t, q)


@njit(cache=True)
def _retry_or_fail(q: int, t: float, code: int, max_retries: int, client: np.ndarray,
                   uniforms: np.ndarray, rq_i: np.ndarray, rq_f: np.ndarray, rt_t: np.ndarray,
                   rt_seq: np.ndarray, rt_req: np.ndarray, counters: np.ndarray) -> None:
    """Schedule the client's retry of ``q`` or give up with ``code``.

    The caller has checked there is room in the retry heap and a uniform left.
    """
    retry = rq_i[q, QI_ATTEMPTS]  # the number this retry would have
    if retry > max_retries:
        rq_i[q, QI_STATUS] = code
        rq_f[q, QF_FINISH] = t
        counters[C_OUTSTANDING] -= 1
        return
    cap = client[1]
    for _ in range(retry - 1):
        cap *= 2.0
        if cap >= client[2]:
            break
    if cap > client[2]:
        cap = client[2]
    if client[3] > 0.0:
        k = counters[C_UNIFORM]
        counters[C_UNIFORM] = k + 1
        cap = cap * uniforms[k]
    rt_push(rt_t, rt_seq, rt_req, counters, t + cap, q)
