"""The request path: arrivals, routing, continuous batching, retries — on arrays.

This is the engine's inner loop.  It is written in the subset of Python that
numba compiles; where numba is not installed (or ``CAPSIM_NO_JIT=1``), the very
same functions run as plain Python and give identical results (the kernel only
adds, multiplies, divides and compares floats: no transcendental functions,
no random draws — jitter comes in as pre-drawn uniforms).

State lives in :class:`KernelState` (numpy arrays).  :func:`run_until`
processes request events strictly before ``t_limit`` — the time of the next
control-plane (SimPy) event — and returns why it stopped.

Service model of a replica (the one ``sim.perf.Shape.throughput`` assumes):

* Admitted requests are prefilled first come, first served; a request's
  prefill needs ``pf_work`` seconds of the replica alone.  Its first token
  exists when the prefill ends; it then decodes ``output_tokens - 1`` tokens.
* The ``n`` decoding requests each produce one token per decode iteration of
  ``step(n, kv) = max(M[n] + kv·m1, C[n] + kv·c1)`` seconds (the shape's
  roofline, tabulated), ``kv`` = Σ over admitted requests of input + output/2.
* While a prefill is pending, each iteration also carries one chunk of
  ``prefill_chunk`` prompt tokens (chunked prefill): the iteration lasts
  ``step + chunk_time`` — costs add.  Prompts are packed into chunks as a
  fluid: a 100-token prompt uses 100/2048 of a chunk and the next prompt the
  rest, so TTFT may undercount by up to one decode step for short prompts.
* Decoding requests advance together: one virtual clock per replica (tokens
  produced per decoding request) and a heap of finishing virtual times.
* Admission: at most ``max_concurrency`` requests and reserved KV
  ``Σ(input + output) ≤ kv_capacity``; an idle replica always admits one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from sim.engine import prefix_cache as pc
from sim.engine import routers
from sim.engine.jit import JIT as JIT
from sim.engine.jit import njit

INF = np.inf

# Request status codes.
IN_FLIGHT, OK, FAILED_503, REJECTED_429, UNFINISHED = 0, 1, 2, 3, 4
STATUS_NAMES = ("in_flight", "ok", "failed_503", "rejected_429", "unfinished")

# Why run_until returned.
STOP_LIMIT, STOP_COLD, STOP_NEED_UNIFORMS, STOP_RETRY_FULL, STOP_DRAINED = 0, 1, 2, 3, 4
STOP_NEED_ROUTER_UNIFORMS = 5

# Counters in KernelState.counters.
C_NEXT_ARRIVAL, C_OUTSTANDING, C_RETRY_SIZE, C_RETRY_SEQ, C_UNIFORM, C_REPLICA_HEAP = range(6)
C_LAST = 6  # the deployment (STOP_COLD) or replica (STOP_DRAINED) concerned
C_ROUTER_UNIFORM = 7  # next unused uniform of the random router
N_COUNTERS = 8

# Integer fields of a deployment: columns of KernelState.d_i.
(DI_MAXC, DI_KVCAP, DI_MAX_QUEUE, DI_QUEUE_COLD, DI_NOTIFY_COLD, DI_Q_HEAD, DI_Q_TAIL,
 DI_Q_LEN, DI_503, DI_429, DI_ARRIVALS, DI_ATTEMPTS, DI_COMPLETIONS, DI_TOKENS_IN,
 DI_TOKENS_OUT, DI_NREPS, DI_SERVING, DI_ROUTER, DI_PREFIX, DI_BLOCK, DI_RR,
 DI_TOKENS_CACHED) = range(22)
N_DI = 22
# Float fields of a deployment: columns of KernelState.d_f.
(DF_CHUNK, DF_M1, DF_C1, DF_Q_AREA, DF_Q_T, DF_SERV_AREA, DF_SERV_T, DF_LAST_ATTEMPT,
 DF_BAL_ABS, DF_BAL_REL) = range(10)
N_DF = 10
# Prefix fields of a request: columns of KernelState.rq_px.  Its chain of block ids
# is blk_ids[off : off + n]; it pins its first `pinned` blocks in its replica's
# cache; `hit` prompt tokens of it were cached when it was admitted.
PX_OFF, PX_N, PX_SESS, PX_PINNED, PX_HIT = range(5)
N_PX = 5
# Integer fields of a replica: columns of KernelState.r_i.
RI_DEP, RI_N, RI_KV_RES, RI_PF_HEAD, RI_PF_TAIL, RI_HEAP_OFF, RI_HEAP_N, RI_DRAINING = range(8)
N_RI = 8
# Float fields of a replica: columns of KernelState.r_f.
RF_KV, RF_PF_LEFT, RF_VTIME, RF_RATE_D, RF_RATE_P, RF_LAST, RF_BUSY, RF_BUSY_SINCE = range(8)
N_RF = 8

# A phase has finished when its remaining work would take at most this
# fraction of the clock's value: float rounding of event times leaves crumbs.
TIME_EPS = 1e-11




@dataclass
class KernelState:
    """All request-path state, as arrays the kernel reads and writes."""

    # requests (n): workload, then outcomes
    arrival: np.ndarray  # f8, sorted
    dep: np.ndarray  # i8
    inp: np.ndarray  # i8
    out: np.ndarray  # i8
    pf_work: np.ndarray  # f8 seconds of exclusive prefill
    attempt_t: np.ndarray
    start_t: np.ndarray
    first_t: np.ndarray
    finish_t: np.ndarray
    status: np.ndarray
    attempts: np.ndarray
    replica: np.ndarray
    link: np.ndarray  # i8 next request in the FIFO (prefill queue or router queue) it is in
    rq_px: np.ndarray  # (n, N_PX) i8 prefix fields, see PX_*
    pf_hit: np.ndarray  # f8 seconds of exclusive prefill a cache hit saved
    blk_ids: np.ndarray  # i8 block ids of every request's chain
    blk_pf: np.ndarray  # f8 exclusive prefill seconds of the prompt up to each block's end
    # deployments (d)
    d_i: np.ndarray  # (d, N_DI) i8, see DI_*
    d_f: np.ndarray  # (d, N_DF) f8, see DF_*
    d_M: np.ndarray  # (d, maxc+1) f8 decode step table
    d_C: np.ndarray
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
    # prefix caches (sim.engine.prefix_cache) and routing
    pc_r: np.ndarray
    pc_key: np.ndarray
    pc_tok: np.ndarray
    pc_ref: np.ndarray
    pc_prev: np.ndarray
    pc_next: np.ndarray
    pc_tab: np.ndarray
    sess_rep: np.ndarray  # i8 replica of each (dense) session's last request, −1: none
    scratch: np.ndarray  # (2, width of d_reps) i8: a router's admit and hit columns
    ru: np.ndarray  # pre-drawn U(0,1) for the random router
    # client policy and jitter
    uniforms: np.ndarray  # pre-drawn U(0,1) for full jitter
    client: np.ndarray  # f8 [max_retries, backoff_base, backoff_max, jitter(0/1)]
    counters: np.ndarray  # i8, see C_*

    def args(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, name) for name in _STATE_FIELDS)


_STATE_FIELDS = tuple(f.name for f in fields(KernelState))


# --------------------------------------------------------------------------
# indexed min-heap of replicas keyed by next completion time
# --------------------------------------------------------------------------
@njit(cache=True)
def _ih_less(key: np.ndarray, item: np.ndarray, a: int, b: int) -> bool:
    ka = key[a]
    kb = key[b]
    return ka < kb or (ka == kb and item[a] < item[b])


@njit(cache=True)
def _ih_swap(key: np.ndarray, item: np.ndarray, pos: np.ndarray, a: int, b: int) -> None:
    ka = key[a]
    key[a] = key[b]
    key[b] = ka
    ia = item[a]
    item[a] = item[b]
    item[b] = ia
    pos[item[a]] = a
    pos[item[b]] = b


@njit(cache=True)
def ih_update(key: np.ndarray, item: np.ndarray, pos: np.ndarray, size: int, rep: int,
              value: float) -> None:
    """Set replica ``rep``'s key to ``value`` and restore the heap order."""
    i = pos[rep]
    key[i] = value
    while i > 0:
        parent = (i - 1) // 2
        if _ih_less(key, item, i, parent):
            _ih_swap(key, item, pos, i, parent)
            i = parent
        else:
            break
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        right = left + 1
        if right < size and _ih_less(key, item, right, left):
            child = right
        if _ih_less(key, item, child, i):
            _ih_swap(key, item, pos, i, child)
            i = child
        else:
            break


# --------------------------------------------------------------------------
# the retry heap: (time, sequence) → request
# --------------------------------------------------------------------------
@njit(cache=True)
def _rt_push(rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray, counters: np.ndarray,
             t: float, req: int) -> None:
    i = counters[C_RETRY_SIZE]
    seq = counters[C_RETRY_SEQ]
    counters[C_RETRY_SIZE] = i + 1
    counters[C_RETRY_SEQ] = seq + 1
    while i > 0:
        parent = (i - 1) // 2
        if rt_t[parent] < t or (rt_t[parent] == t and rt_seq[parent] < seq):
            break
        rt_t[i] = rt_t[parent]
        rt_seq[i] = rt_seq[parent]
        rt_req[i] = rt_req[parent]
        i = parent
    rt_t[i] = t
    rt_seq[i] = seq
    rt_req[i] = req


@njit(cache=True)
def _rt_pop(rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray, counters: np.ndarray) -> int:
    top = rt_req[0]
    size = counters[C_RETRY_SIZE] - 1
    counters[C_RETRY_SIZE] = size
    if size == 0:
        return top
    t = rt_t[size]
    seq = rt_seq[size]
    req = rt_req[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and (
            rt_t[child + 1] < rt_t[child]
            or (rt_t[child + 1] == rt_t[child] and rt_seq[child + 1] < rt_seq[child])
        ):
            child += 1
        if rt_t[child] < t or (rt_t[child] == t and rt_seq[child] < seq):
            rt_t[i] = rt_t[child]
            rt_seq[i] = rt_seq[child]
            rt_req[i] = rt_req[child]
            i = child
        else:
            break
    rt_t[i] = t
    rt_seq[i] = seq
    rt_req[i] = req
    return top


# --------------------------------------------------------------------------
# per-replica decode heaps: (finishing virtual time, request)
# --------------------------------------------------------------------------
@njit(cache=True)
def _dh_push(hv: np.ndarray, hr: np.ndarray, off: int, n: int, v: float, req: int) -> None:
    i = n
    while i > 0:
        parent = (i - 1) // 2
        pv = hv[off + parent]
        if pv < v or (pv == v and hr[off + parent] < req):
            break
        hv[off + i] = pv
        hr[off + i] = hr[off + parent]
        i = parent
    hv[off + i] = v
    hr[off + i] = req


@njit(cache=True)
def _dh_pop(hv: np.ndarray, hr: np.ndarray, off: int, n: int) -> int:
    """Remove the top of a heap holding ``n`` items; return its request."""
    top = hr[off]
    size = n - 1
    if size == 0:
        return top
    v = hv[off + size]
    req = hr[off + size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and (
            hv[off + child + 1] < hv[off + child]
            or (hv[off + child + 1] == hv[off + child] and hr[off + child + 1] < hr[off + child])
        ):
            child += 1
        cv = hv[off + child]
        if cv < v or (cv == v and hr[off + child] < req):
            hv[off + i] = cv
            hr[off + i] = hr[off + child]
            i = child
        else:
            break
    hv[off + i] = v
    hr[off + i] = req
    return top


# --------------------------------------------------------------------------
# the kernel
# --------------------------------------------------------------------------
@njit(cache=True)
def run_until(
    t_limit: float,
    arrival: np.ndarray, dep: np.ndarray, inp: np.ndarray, out: np.ndarray,
    pf_work: np.ndarray, attempt_t: np.ndarray, start_t: np.ndarray, first_t: np.ndarray,
    finish_t: np.ndarray, status: np.ndarray, attempts: np.ndarray, replica: np.ndarray,
    link: np.ndarray, rq_px: np.ndarray, pf_hit: np.ndarray, blk_ids: np.ndarray,
    blk_pf: np.ndarray,
    d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_reps: np.ndarray,
    r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray,
    ih_key: np.ndarray, ih_item: np.ndarray, ih_pos: np.ndarray,
    rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray,
    pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray,
    pc_prev: np.ndarray, pc_next: np.ndarray, pc_tab: np.ndarray, sess_rep: np.ndarray,
    scratch: np.ndarray, ru: np.ndarray,
    uniforms: np.ndarray, client: np.ndarray, counters: np.ndarray,
) -> tuple[int, float]:
    """Process request events with time < ``t_limit``; return (reason, time reached)."""
    n_req = arrival.shape[0]
    n_rep_heap = counters[C_REPLICA_HEAP]
    max_retries = int(client[0])
    t = 0.0
    while True:
        i_next = counters[C_NEXT_ARRIVAL]
        ta = arrival[i_next] if i_next < n_req else INF
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
            # ---- a prefill or a decode finished on replica r ------------
            r = ih_item[0]
            d = r_i[r, RI_DEP]
            _advance(r, t, r_i, r_f)
            slack = TIME_EPS * (t if t > 1.0 else 1.0)
            # prefills that are done (FCFS: only the head progresses)
            while r_i[r, RI_PF_HEAD] >= 0 and r_f[r, RF_PF_LEFT] <= r_f[r, RF_RATE_P] * slack:
                q = r_i[r, RI_PF_HEAD]
                nxt = link[q]
                r_i[r, RI_PF_HEAD] = nxt
                if nxt < 0:
                    r_i[r, RI_PF_TAIL] = -1
                else:
                    r_f[r, RF_PF_LEFT] = pf_work[nxt] - pf_hit[nxt]
                first_t[q] = t
                d_i[d, DI_TOKENS_IN] += inp[q]
                if rq_px[q, PX_N] > 0 and d_i[d, DI_PREFIX] == 1:
                    # the prompt's blocks are computed: cache them
                    d_i[d, DI_TOKENS_CACHED] += rq_px[q, PX_HIT]
                    rq_px[q, PX_PINNED] = pc.insert(
                        r, blk_ids, rq_px[q, PX_OFF], rq_px[q, PX_N], rq_px[q, PX_PINNED],
                        inp[q], d_i[d, DI_BLOCK], pc_r, pc_key, pc_tok, pc_ref, pc_prev,
                        pc_next, pc_tab)
                if out[q] > 1:
                    _dh_push(hv, hr, r_i[r, RI_HEAP_OFF], r_i[r, RI_HEAP_N],
                             r_f[r, RF_VTIME] + (out[q] - 1), q)
                    r_i[r, RI_HEAP_N] += 1
                else:
                    _finish(q, r, d, t, finish_t, status, inp, out, d_i, d_f, r_i, r_f, counters,
                            rq_px, blk_ids, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next,
                            pc_tab)
            # decodes that are done
            off = r_i[r, RI_HEAP_OFF]
            while r_i[r, RI_HEAP_N] > 0 and (
                hv[off] <= r_f[r, RF_VTIME] + r_f[r, RF_RATE_D] * slack
            ):
                q = _dh_pop(hv, hr, off, r_i[r, RI_HEAP_N])
                r_i[r, RI_HEAP_N] -= 1
                _finish(q, r, d, t, finish_t, status, inp, out, d_i, d_f, r_i, r_f, counters,
                        rq_px, blk_ids, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
            if r_i[r, RI_DRAINING] == 0:
                _fill(r, d, t, link, inp, out, pf_work, start_t, replica, d_i, d_f, r_i, r_f,
                      rq_px, pf_hit, blk_ids, blk_pf, pc_r, pc_key, pc_tok, pc_ref, pc_prev,
                      pc_next, pc_tab, sess_rep)
            _reschedule(r, d, t, d_M, d_C, d_f, inp, pf_work, pf_hit, rq_px, r_i, r_f, hv,
                        ih_key, ih_item, ih_pos, n_rep_heap)
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
        if kind == 1:
            q = _rt_pop(rt_t, rt_seq, rt_req, counters)
        else:
            q = i_next
            counters[C_NEXT_ARRIVAL] = i_next + 1
            d_i[dep[q], DI_ARRIVALS] += 1
        d = dep[q]
        attempts[q] += 1
        attempt_t[q] = t
        d_i[d, DI_ATTEMPTS] += 1
        d_f[d, DF_LAST_ATTEMPT] = t
        cold = d_i[d, DI_NREPS] == 0
        if cold and d_i[d, DI_QUEUE_COLD] == 0:
            # no ready replica: 503 DEPLOYMENT_SCALING_UP, not queued
            d_i[d, DI_503] += 1
            _retry_or_fail(q, t, FAILED_503, max_retries, client, uniforms, attempts,
                           finish_t, status, rt_t, rt_seq, rt_req, counters)
            if d_i[d, DI_NOTIFY_COLD] == 1:
                counters[C_LAST] = d
                return STOP_COLD, t
            continue
        if d_i[d, DI_Q_LEN] == 0 and not cold:
            if d_i[d, DI_ROUTER] == routers.LEAST_LOADED:
                best = _pick(d, inp[q] + out[q], d_i, d_reps, r_i)
            else:
                best = _route(q, d, inp, out, rq_px, blk_ids, d_i, d_f, d_reps, r_i, pc_r,
                              pc_key, pc_tab, sess_rep, scratch, ru, counters)
            if best >= 0:
                _advance(best, t, r_i, r_f)
                _admit(q, best, t, link, inp, out, pf_work, start_t, replica, d_i, d_f, r_i, r_f,
                       rq_px, pf_hit, blk_ids, blk_pf, pc_r, pc_key, pc_tok, pc_ref, pc_prev,
                       pc_next, pc_tab, sess_rep)
                _reschedule(best, d, t, d_M, d_C, d_f, inp, pf_work, pf_hit, rq_px, r_i, r_f, hv,
                            ih_key, ih_item, ih_pos, n_rep_heap)
                continue
        if d_i[d, DI_MAX_QUEUE] >= 0 and d_i[d, DI_Q_LEN] >= d_i[d, DI_MAX_QUEUE]:
            d_i[d, DI_429] += 1
            _retry_or_fail(q, t, REJECTED_429, max_retries, client, uniforms, attempts,
                           finish_t, status, rt_t, rt_seq, rt_req, counters)
            continue
        # join the router queue (FIFO)
        d_f[d, DF_Q_AREA] += d_i[d, DI_Q_LEN] * (t - d_f[d, DF_Q_T])
        d_f[d, DF_Q_T] = t
        link[q] = -1
        if d_i[d, DI_Q_TAIL] >= 0:
            link[d_i[d, DI_Q_TAIL]] = q
        else:
            d_i[d, DI_Q_HEAD] = q
        d_i[d, DI_Q_TAIL] = q
        d_i[d, DI_Q_LEN] += 1
        if cold and d_i[d, DI_NOTIFY_COLD] == 1:
            counters[C_LAST] = d
            return STOP_COLD, t


@njit(cache=True)
def _pick(d: int, need: int, d_i: np.ndarray, d_reps: np.ndarray, r_i: np.ndarray) -> int:
    """Least-loaded ready replica of ``d`` that can admit ``need`` tokens; ties: oldest."""
    best = -1
    best_n = 1 << 62
    maxc = d_i[d, DI_MAXC]
    kvcap = d_i[d, DI_KVCAP]
    for k in range(d_i[d, DI_NREPS]):
        r = d_reps[d, k]
        n_r = r_i[r, RI_N]
        if n_r < best_n and (n_r == 0 or (n_r < maxc and r_i[r, RI_KV_RES] + need <= kvcap)):
            best = r
            best_n = n_r
            if n_r == 0:
                break
    return best


@njit(cache=True)
def _route(q: int, d: int, inp: np.ndarray, out: np.ndarray, rq_px: np.ndarray,
           blk_ids: np.ndarray, d_i: np.ndarray, d_f: np.ndarray, d_reps: np.ndarray,
           r_i: np.ndarray, pc_r: np.ndarray, pc_key: np.ndarray, pc_tab: np.ndarray,
           sess_rep: np.ndarray, scratch: np.ndarray, ru: np.ndarray,
           counters: np.ndarray) -> int:
    """The replica deployment ``d``'s router (not least_loaded) picks for ``q``, or −1."""
    n = d_i[d, DI_NREPS]
    reps = d_reps[d]
    admit = scratch[0]
    hit = scratch[1]
    maxc = d_i[d, DI_MAXC]
    kvcap = d_i[d, DI_KVCAP]
    need = inp[q] + out[q]
    load = r_i[:, RI_N]
    for k in range(n):
        r = reps[k]
        n_r = r_i[r, RI_N]
        admit[k] = 1 if n_r == 0 or (n_r < maxc and r_i[r, RI_KV_RES] + need <= kvcap) else 0
    kind = d_i[d, DI_ROUTER]
    bal_abs = d_f[d, DF_BAL_ABS]
    bal_rel = d_f[d, DF_BAL_REL]
    k = -1
    if kind == routers.PREFIX_AWARE:
        chain = rq_px[q, PX_N] if d_i[d, DI_PREFIX] == 1 else 0
        for j in range(n):
            hit[j] = 0
            if admit[j] and chain > 0:
                hit[j] = pc.match(reps[j], blk_ids, rq_px[q, PX_OFF], chain, pc_r, pc_key,
                                  pc_tab)
        k = routers.prefix_aware(reps, n, load, admit, hit, bal_abs, bal_rel)
    elif kind == routers.SESSION:
        s = rq_px[q, PX_SESS]
        home = sess_rep[s] if s >= 0 else -1
        k = routers.sticky(reps, n, load, admit, home, bal_abs, bal_rel)
    elif kind == routers.ROUND_ROBIN:
        k = routers.round_robin(n, admit, d_i[d, DI_RR] % n if n > 0 else 0)
        if k >= 0:
            d_i[d, DI_RR] = k + 1
    elif kind == routers.RANDOM:
        u = ru[counters[C_ROUTER_UNIFORM]]
        counters[C_ROUTER_UNIFORM] += 1
        k = routers.uniform_pick(n, admit, u)
    else:
        k = routers.least_loaded(reps, n, load, admit)
    return reps[k] if k >= 0 else -1


@njit(cache=True)
def _advance(r: int, t: float, r_i: np.ndarray, r_f: np.ndarray) -> None:
    """Move replica ``r``'s progress to ``t`` at its current, constant rates."""
    dt = t - r_f[r, RF_LAST]
    if dt > 0.0:
        if r_i[r, RI_HEAP_N] > 0:
            r_f[r, RF_VTIME] += r_f[r, RF_RATE_D] * dt
        if r_i[r, RI_PF_HEAD] >= 0:
            r_f[r, RF_PF_LEFT] -= r_f[r, RF_RATE_P] * dt
    r_f[r, RF_LAST] = t


@njit(cache=True)
def _reschedule(r: int, d: int, t: float, d_M: np.ndarray, d_C: np.ndarray, d_f: np.ndarray,
                inp: np.ndarray, pf_work: np.ndarray, pf_hit: np.ndarray, rq_px: np.ndarray,
                r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray, ih_key: np.ndarray,
                ih_item: np.ndarray, ih_pos: np.ndarray, n_rep_heap: int) -> None:
    """Recompute replica ``r``'s rates and its next completion time."""
    n_dec = r_i[r, RI_HEAP_N]
    head = r_i[r, RI_PF_HEAD]
    due = INF
    if n_dec > 0:
        kv = r_f[r, RF_KV]
        mem = d_M[d, n_dec] + kv * d_f[d, DF_M1]
        comp = d_C[d, n_dec] + kv * d_f[d, DF_C1]
        step = mem if mem > comp else comp
        if head >= 0:
            # exclusive prefill time of one chunk of tokens at the head prompt's cost
            # per token; a short prompt fills part of a chunk and the next
            # prompt the rest (fluid packing of prompts into chunks)
            # (with a cache hit: the uncached tokens' own cost per token)
            chunk_time = ((pf_work[head] - pf_hit[head]) * d_f[d, DF_CHUNK]
                          / (inp[head] - rq_px[head, PX_HIT]))
            period = step + chunk_time
            r_f[r, RF_RATE_D] = 1.0 / period
            r_f[r, RF_RATE_P] = chunk_time / period
        else:
            r_f[r, RF_RATE_D] = 1.0 / step
            r_f[r, RF_RATE_P] = 0.0
        left = hv[r_i[r, RI_HEAP_OFF]] - r_f[r, RF_VTIME]
        due = t + (left if left > 0.0 else 0.0) / r_f[r, RF_RATE_D]
    elif head >= 0:
        r_f[r, RF_RATE_P] = 1.0
        r_f[r, RF_RATE_D] = 0.0
    else:
        r_f[r, RF_RATE_P] = 0.0
        r_f[r, RF_RATE_D] = 0.0
    if head >= 0:
        left = r_f[r, RF_PF_LEFT]
        due_p = t + (left if left > 0.0 else 0.0) / r_f[r, RF_RATE_P]
        if due_p < due:
            due = due_p
    r_f[r, RF_LAST] = t
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, due)


@njit(cache=True)
def _serving(d: int, t: float, delta: int, d_i: np.ndarray, d_f: np.ndarray) -> None:
    """Level monitor of the requests in service in ``d``: account, then change."""
    d_f[d, DF_SERV_AREA] += d_i[d, DI_SERVING] * (t - d_f[d, DF_SERV_T])
    d_f[d, DF_SERV_T] = t
    d_i[d, DI_SERVING] += delta


@njit(cache=True)
def _admit(q: int, r: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
           pf_work: np.ndarray, start_t: np.ndarray, replica: np.ndarray, d_i: np.ndarray,
           d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, rq_px: np.ndarray,
           pf_hit: np.ndarray, blk_ids: np.ndarray, blk_pf: np.ndarray, pc_r: np.ndarray,
           pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray, pc_prev: np.ndarray,
           pc_next: np.ndarray, pc_tab: np.ndarray, sess_rep: np.ndarray) -> None:
    """Start serving request ``q`` on replica ``r`` (already advanced to ``t``).

    With prefix caching, the longest cached prefix of its prompt is pinned
    and its prefill skipped: the rest costs the exclusive prefill time of the
    whole prompt minus that of the cached part (the rest attends to it).
    """
    if r_i[r, RI_N] == 0:
        r_f[r, RF_BUSY_SINCE] = t
    r_i[r, RI_N] += 1
    r_i[r, RI_KV_RES] += inp[q] + out[q]
    r_f[r, RF_KV] += inp[q] + 0.5 * out[q]
    d = r_i[r, RI_DEP]
    if rq_px[q, PX_SESS] >= 0:
        sess_rep[rq_px[q, PX_SESS]] = r
    rq_px[q, PX_PINNED] = 0
    rq_px[q, PX_HIT] = 0
    pf_hit[q] = 0.0
    if rq_px[q, PX_N] > 0 and d_i[d, DI_PREFIX] == 1:
        off = rq_px[q, PX_OFF]
        k = pc.match(r, blk_ids, off, rq_px[q, PX_N], pc_r, pc_key, pc_tab)
        pc.acquire(r, blk_ids, off, k, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
        rq_px[q, PX_PINNED] = k
        block = d_i[d, DI_BLOCK]
        h = pc.hit_tokens(k, inp[q], block)
        rq_px[q, PX_HIT] = h
        if h > 0:
            if h == k * block:
                pf_hit[q] = blk_pf[off + k - 1]
            else:  # the whole prompt is cached but its last token
                pf_hit[q] = pf_work[q] * (inp[q] - 1) / inp[q]
        # free cached blocks make room for what running requests reserve
        pc.fit(r, d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES], pc_r, pc_key, pc_tok, pc_prev,
               pc_next, pc_tab)
    _serving(d, t, 1, d_i, d_f)
    start_t[q] = t
    replica[q] = r
    link[q] = -1
    if r_i[r, RI_PF_TAIL] >= 0:
        link[r_i[r, RI_PF_TAIL]] = q
    else:
        r_i[r, RI_PF_HEAD] = q
        r_f[r, RF_PF_LEFT] = pf_work[q] - pf_hit[q]
    r_i[r, RI_PF_TAIL] = q


@njit(cache=True)
def _finish(q: int, r: int, d: int, t: float, finish_t: np.ndarray, status: np.ndarray,
            inp: np.ndarray, out: np.ndarray, d_i: np.ndarray, d_f: np.ndarray,
            r_i: np.ndarray, r_f: np.ndarray, counters: np.ndarray, rq_px: np.ndarray,
            blk_ids: np.ndarray, pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray,
            pc_ref: np.ndarray, pc_prev: np.ndarray, pc_next: np.ndarray,
            pc_tab: np.ndarray) -> None:
    if rq_px[q, PX_PINNED] > 0:
        pc.release(r, blk_ids, rq_px[q, PX_OFF], rq_px[q, PX_PINNED], pc_r, pc_key, pc_tok,
                   pc_ref, pc_prev, pc_next, pc_tab)
        rq_px[q, PX_PINNED] = 0
    finish_t[q] = t
    status[q] = OK
    r_i[r, RI_N] -= 1
    r_i[r, RI_KV_RES] -= inp[q] + out[q]
    r_f[r, RF_KV] -= inp[q] + 0.5 * out[q]
    if r_i[r, RI_N] == 0:
        r_f[r, RF_KV] = 0.0  # no drift from repeated float subtraction
        r_f[r, RF_BUSY] += t - r_f[r, RF_BUSY_SINCE]
    _serving(d, t, -1, d_i, d_f)
    d_i[d, DI_COMPLETIONS] += 1
    d_i[d, DI_TOKENS_OUT] += out[q]
    counters[C_OUTSTANDING] -= 1


@njit(cache=True)
def _fill(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
          pf_work: np.ndarray, start_t: np.ndarray, replica: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, rq_px: np.ndarray,
          pf_hit: np.ndarray, blk_ids: np.ndarray, blk_pf: np.ndarray, pc_r: np.ndarray,
          pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray, pc_prev: np.ndarray,
          pc_next: np.ndarray, pc_tab: np.ndarray, sess_rep: np.ndarray) -> None:
    """Admit queued requests of deployment ``d`` while replica ``r`` has room (FCFS)."""
    if d_i[d, DI_Q_LEN] == 0:
        return
    d_f[d, DF_Q_AREA] += d_i[d, DI_Q_LEN] * (t - d_f[d, DF_Q_T])
    d_f[d, DF_Q_T] = t
    maxc = d_i[d, DI_MAXC]
    kvcap = d_i[d, DI_KVCAP]
    while d_i[d, DI_Q_LEN] > 0:
        q = d_i[d, DI_Q_HEAD]
        n_r = r_i[r, RI_N]
        if n_r > 0 and (n_r >= maxc or r_i[r, RI_KV_RES] + inp[q] + out[q] > kvcap):
            break
        nxt = link[q]
        d_i[d, DI_Q_HEAD] = nxt
        if nxt < 0:
            d_i[d, DI_Q_TAIL] = -1
        d_i[d, DI_Q_LEN] -= 1
        _admit(q, r, t, link, inp, out, pf_work, start_t, replica, d_i, d_f, r_i, r_f,
               rq_px, pf_hit, blk_ids, blk_pf, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next,
               pc_tab, sess_rep)


@njit(cache=True)
def fill_and_reschedule(r: int, t: float,
                        arrival: np.ndarray, dep: np.ndarray, inp: np.ndarray, out: np.ndarray,
                        pf_work: np.ndarray, attempt_t: np.ndarray, start_t: np.ndarray,
                        first_t: np.ndarray, finish_t: np.ndarray, status: np.ndarray,
                        attempts: np.ndarray, replica: np.ndarray, link: np.ndarray,
                        rq_px: np.ndarray, pf_hit: np.ndarray, blk_ids: np.ndarray,
                        blk_pf: np.ndarray,
                        d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray,
                        d_reps: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray,
                        hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
                        ih_pos: np.ndarray, rt_t: np.ndarray, rt_seq: np.ndarray,
                        rt_req: np.ndarray, pc_r: np.ndarray, pc_key: np.ndarray,
                        pc_tok: np.ndarray, pc_ref: np.ndarray, pc_prev: np.ndarray,
                        pc_next: np.ndarray, pc_tab: np.ndarray, sess_rep: np.ndarray,
                        scratch: np.ndarray, ru: np.ndarray, uniforms: np.ndarray,
                        client: np.ndarray, counters: np.ndarray) -> None:
    """A replica has just become ready at ``t``: take queued requests, schedule."""
    d = r_i[r, RI_DEP]
    _advance(r, t, r_i, r_f)
    _fill(r, d, t, link, inp, out, pf_work, start_t, replica, d_i, d_f, r_i, r_f, rq_px, pf_hit,
          blk_ids, blk_pf, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab, sess_rep)
    _reschedule(r, d, t, d_M, d_C, d_f, inp, pf_work, pf_hit, rq_px, r_i, r_f, hv, ih_key,
                ih_item, ih_pos, counters[C_REPLICA_HEAP])


@njit(cache=True)
def retry_now(q: int, t: float, rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray,
              counters: np.ndarray) -> None:
    """Put request ``q`` back to reach its router again at ``t`` (after a lost replica)."""
    _rt_push(rt_t, rt_seq, rt_req, counters, t, q)


@njit(cache=True)
def _retry_or_fail(q: int, t: float, code: int, max_retries: int, client: np.ndarray,
                   uniforms: np.ndarray, attempts: np.ndarray, finish_t: np.ndarray,
                   status: np.ndarray, rt_t: np.ndarray, rt_seq: np.ndarray,
                   rt_req: np.ndarray, counters: np.ndarray) -> None:
    """Schedule the client's retry of ``q`` or give up with ``code``.

    The caller has checked there is room in the retry heap and a uniform left.
    """
    retry = attempts[q]  # the number this retry would have
    if retry > max_retries:
        status[q] = code
        finish_t[q] = t
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
    _rt_push(rt_t, rt_seq, rt_req, counters, t + cap, q)
