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

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

INF = np.inf

# Request status codes.
IN_FLIGHT, OK, FAILED_503, REJECTED_429, UNFINISHED = 0, 1, 2, 3, 4
STATUS_NAMES = ("in_flight", "ok", "failed_503", "rejected_429", "unfinished")

# Why run_until returned.
STOP_LIMIT, STOP_503, STOP_NEED_UNIFORMS, STOP_RETRY_FULL = 0, 1, 2, 3

# Counters in KernelState.counters.
C_NEXT_ARRIVAL, C_OUTSTANDING, C_RETRY_SIZE, C_RETRY_SEQ, C_UNIFORM, C_REPLICA_HEAP, C_LAST_DEP = (
    0, 1, 2, 3, 4, 5, 6,
)
N_COUNTERS = 7

# A phase has finished when its remaining work would take at most this
# fraction of the clock's value: float rounding of event times leaves crumbs.
TIME_EPS = 1e-11


def _identity_jit(*args: Any, **kwargs: Any) -> Any:
    if args and callable(args[0]):
        return args[0]
    return lambda fn: fn


def _load_jit() -> tuple[Callable[..., Any], bool]:
    if os.environ.get("CAPSIM_NO_JIT"):
        return _identity_jit, False
    try:
        from numba import njit
    except ImportError:
        return _identity_jit, False
    return njit, True


njit, JIT = _load_jit()


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
    # deployments (d)
    d_maxc: np.ndarray
    d_kvcap: np.ndarray
    d_chunk: np.ndarray  # f8 prefill chunk in tokens
    d_M: np.ndarray  # (d, maxc+1) f8
    d_C: np.ndarray
    d_m1: np.ndarray
    d_c1: np.ndarray
    d_max_queue: np.ndarray  # -1: unbounded
    d_queue_cold: np.ndarray  # 1: buffer requests while no replica is ready
    d_notify_503: np.ndarray  # 1: return to the caller on a 503
    d_q_head: np.ndarray
    d_q_tail: np.ndarray
    d_q_len: np.ndarray
    d_q_area: np.ndarray
    d_q_t: np.ndarray
    d_http_503: np.ndarray
    d_http_429: np.ndarray
    d_arrivals: np.ndarray
    d_completions: np.ndarray
    d_tokens_in: np.ndarray  # prompt tokens of completed prefills
    d_tokens_out: np.ndarray  # output tokens of completed requests
    d_reps: np.ndarray  # (d, cap) ready replica ids, in creation order
    d_nreps: np.ndarray
    # replicas (r)
    r_dep: np.ndarray
    r_n: np.ndarray  # admitted requests
    r_kv_res: np.ndarray  # reserved tokens Σ(in + out)
    r_kv: np.ndarray  # f8 Σ(in + out/2)
    r_pf_head: np.ndarray
    r_pf_tail: np.ndarray
    r_pf_left: np.ndarray  # f8 seconds of exclusive prefill left for the head
    r_vtime: np.ndarray
    r_rate_d: np.ndarray
    r_rate_p: np.ndarray
    r_last: np.ndarray
    r_busy: np.ndarray  # f8 busy seconds so far
    r_busy_since: np.ndarray
    r_heap_off: np.ndarray  # offset of the replica's decode heap in hv/hr
    r_heap_n: np.ndarray
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
    # client policy and jitter
    uniforms: np.ndarray  # pre-drawn U(0,1) for full jitter
    client: np.ndarray  # f8 [max_retries, backoff_base, backoff_max, jitter(0/1)]
    counters: np.ndarray  # i8, see C_*

    def args(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


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
    link: np.ndarray,
    d_maxc: np.ndarray, d_kvcap: np.ndarray, d_chunk: np.ndarray, d_M: np.ndarray,
    d_C: np.ndarray, d_m1: np.ndarray, d_c1: np.ndarray, d_max_queue: np.ndarray,
    d_queue_cold: np.ndarray, d_notify_503: np.ndarray, d_q_head: np.ndarray,
    d_q_tail: np.ndarray, d_q_len: np.ndarray, d_q_area: np.ndarray, d_q_t: np.ndarray,
    d_http_503: np.ndarray, d_http_429: np.ndarray, d_arrivals: np.ndarray,
    d_completions: np.ndarray, d_tokens_in: np.ndarray, d_tokens_out: np.ndarray,
    d_reps: np.ndarray, d_nreps: np.ndarray,
    r_dep: np.ndarray, r_n: np.ndarray, r_kv_res: np.ndarray, r_kv: np.ndarray,
    r_pf_head: np.ndarray, r_pf_tail: np.ndarray, r_pf_left: np.ndarray, r_vtime: np.ndarray,
    r_rate_d: np.ndarray, r_rate_p: np.ndarray, r_last: np.ndarray, r_busy: np.ndarray,
    r_busy_since: np.ndarray, r_heap_off: np.ndarray, r_heap_n: np.ndarray,
    hv: np.ndarray, hr: np.ndarray,
    ih_key: np.ndarray, ih_item: np.ndarray, ih_pos: np.ndarray,
    rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray,
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
            d = r_dep[r]
            _advance(r, t, r_last, r_vtime, r_rate_d, r_pf_left, r_rate_p, r_heap_n, r_pf_head)
            slack = TIME_EPS * (t if t > 1.0 else 1.0)
            # prefills that are done (FCFS: only the head progresses)
            while r_pf_head[r] >= 0 and r_pf_left[r] <= r_rate_p[r] * slack:
                q = r_pf_head[r]
                nxt = link[q]
                r_pf_head[r] = nxt
                if nxt < 0:
                    r_pf_tail[r] = -1
                else:
                    r_pf_left[r] = pf_work[nxt]
                first_t[q] = t
                d_tokens_in[d] += inp[q]
                if out[q] > 1:
                    _dh_push(hv, hr, r_heap_off[r], r_heap_n[r], r_vtime[r] + (out[q] - 1), q)
                    r_heap_n[r] += 1
                else:
                    _finish(q, r, d, t, finish_t, status, inp, out, r_n, r_kv_res, r_kv,
                            r_busy, r_busy_since, d_completions, d_tokens_out, counters)
            # decodes that are done
            off = r_heap_off[r]
            while r_heap_n[r] > 0 and hv[off] <= r_vtime[r] + r_rate_d[r] * slack:
                q = _dh_pop(hv, hr, off, r_heap_n[r])
                r_heap_n[r] -= 1
                _finish(q, r, d, t, finish_t, status, inp, out, r_n, r_kv_res, r_kv,
                        r_busy, r_busy_since, d_completions, d_tokens_out, counters)
            _fill(r, d, t, link, inp, out, pf_work, start_t, replica, d_maxc, d_kvcap,
                  d_q_head, d_q_tail, d_q_len, d_q_area, d_q_t, r_n, r_kv_res, r_kv,
                  r_pf_head, r_pf_tail, r_pf_left, r_busy_since)
            _reschedule(r, d, t, d_M, d_C, d_m1, d_c1, d_chunk, inp, pf_work, r_kv,
                        r_pf_head, r_pf_left, r_vtime, r_rate_d, r_rate_p, r_last, r_heap_off,
                        r_heap_n, hv, ih_key, ih_item, ih_pos, n_rep_heap)
            continue

        # ---- an attempt reaches the router: a retry or a new arrival ----
        # Room for the retry it may cause, before any state changes.
        if counters[C_RETRY_SIZE] >= rt_t.shape[0]:
            return STOP_RETRY_FULL, t
        if client[3] > 0.0 and counters[C_UNIFORM] >= uniforms.shape[0]:
            return STOP_NEED_UNIFORMS, t
        if kind == 1:
            q = _rt_pop(rt_t, rt_seq, rt_req, counters)
        else:
            q = i_next
            counters[C_NEXT_ARRIVAL] = i_next + 1
            d_arrivals[dep[q]] += 1
        d = dep[q]
        attempts[q] += 1
        attempt_t[q] = t
        if d_nreps[d] == 0 and d_queue_cold[d] == 0:
            d_http_503[d] += 1
            _retry_or_fail(q, t, FAILED_503, max_retries, client, uniforms, attempts,
                           finish_t, status, rt_t, rt_seq, rt_req, counters)
            if d_notify_503[d] == 1:
                counters[C_LAST_DEP] = d
                return STOP_503, t
            continue
        if d_q_len[d] == 0 and d_nreps[d] > 0:
            # least-loaded ready replica that fits; ties: first created
            need = inp[q] + out[q]
            best = -1
            best_n = 1 << 62
            for k in range(d_nreps[d]):
                r = d_reps[d, k]
                n_r = r_n[r]
                if n_r < best_n and (
                    n_r == 0 or (n_r < d_maxc[d] and r_kv_res[r] + need <= d_kvcap[d])
                ):
                    best = r
                    best_n = n_r
                    if n_r == 0:
                        break
            if best >= 0:
                _advance(best, t, r_last, r_vtime, r_rate_d, r_pf_left, r_rate_p, r_heap_n,
                         r_pf_head)
                _admit(q, best, t, link, inp, out, pf_work, start_t, replica, r_n, r_kv_res,
                       r_kv, r_pf_head, r_pf_tail, r_pf_left, r_busy_since)
                _reschedule(best, d, t, d_M, d_C, d_m1, d_c1, d_chunk, inp, pf_work, r_kv,
                            r_pf_head, r_pf_left, r_vtime, r_rate_d, r_rate_p, r_last,
                            r_heap_off, r_heap_n, hv, ih_key, ih_item, ih_pos, n_rep_heap)
                continue
        if d_max_queue[d] >= 0 and d_q_len[d] >= d_max_queue[d]:
            d_http_429[d] += 1
            _retry_or_fail(q, t, REJECTED_429, max_retries, client, uniforms, attempts,
                           finish_t, status, rt_t, rt_seq, rt_req, counters)
            continue
        # join the router queue (FIFO)
        d_q_area[d] += d_q_len[d] * (t - d_q_t[d])
        d_q_t[d] = t
        link[q] = -1
        if d_q_tail[d] >= 0:
            link[d_q_tail[d]] = q
        else:
            d_q_head[d] = q
        d_q_tail[d] = q
        d_q_len[d] += 1


@njit(cache=True)
def _advance(r: int, t: float, r_last: np.ndarray, r_vtime: np.ndarray, r_rate_d: np.ndarray,
             r_pf_left: np.ndarray, r_rate_p: np.ndarray, r_heap_n: np.ndarray,
             r_pf_head: np.ndarray) -> None:
    """Move replica ``r``'s progress to ``t`` at its current, constant rates."""
    dt = t - r_last[r]
    if dt > 0.0:
        if r_heap_n[r] > 0:
            r_vtime[r] += r_rate_d[r] * dt
        if r_pf_head[r] >= 0:
            r_pf_left[r] -= r_rate_p[r] * dt
    r_last[r] = t


@njit(cache=True)
def _reschedule(r: int, d: int, t: float, d_M: np.ndarray, d_C: np.ndarray, d_m1: np.ndarray,
                d_c1: np.ndarray, d_chunk: np.ndarray, inp: np.ndarray, pf_work: np.ndarray,
                r_kv: np.ndarray, r_pf_head: np.ndarray, r_pf_left: np.ndarray,
                r_vtime: np.ndarray, r_rate_d: np.ndarray, r_rate_p: np.ndarray,
                r_last: np.ndarray, r_heap_off: np.ndarray, r_heap_n: np.ndarray,
                hv: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray, ih_pos: np.ndarray,
                n_rep_heap: int) -> None:
    """Recompute replica ``r``'s rates and its next completion time."""
    n_dec = r_heap_n[r]
    head = r_pf_head[r]
    due = INF
    if n_dec > 0:
        kv = r_kv[r]
        mem = d_M[d, n_dec] + kv * d_m1[d]
        comp = d_C[d, n_dec] + kv * d_c1[d]
        step = mem if mem > comp else comp
        if head >= 0:
            # exclusive prefill time of one chunk of tokens at the head prompt's cost
            # per token; a short prompt fills part of a chunk and the next
            # prompt the rest (fluid packing of prompts into chunks)
            chunk_time = pf_work[head] * d_chunk[d] / inp[head]
            period = step + chunk_time
            r_rate_d[r] = 1.0 / period
            r_rate_p[r] = chunk_time / period
        else:
            r_rate_d[r] = 1.0 / step
            r_rate_p[r] = 0.0
        left = hv[r_heap_off[r]] - r_vtime[r]
        due = t + (left if left > 0.0 else 0.0) / r_rate_d[r]
    elif head >= 0:
        r_rate_p[r] = 1.0
        r_rate_d[r] = 0.0
    else:
        r_rate_p[r] = 0.0
        r_rate_d[r] = 0.0
    if head >= 0:
        left = r_pf_left[r]
        due_p = t + (left if left > 0.0 else 0.0) / r_rate_p[r]
        if due_p < due:
            due = due_p
    r_last[r] = t
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, due)


@njit(cache=True)
def _admit(q: int, r: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
           pf_work: np.ndarray, start_t: np.ndarray, replica: np.ndarray, r_n: np.ndarray,
           r_kv_res: np.ndarray, r_kv: np.ndarray, r_pf_head: np.ndarray,
           r_pf_tail: np.ndarray, r_pf_left: np.ndarray, r_busy_since: np.ndarray) -> None:
    """Start serving request ``q`` on replica ``r`` (already advanced to ``t``)."""
    if r_n[r] == 0:
        r_busy_since[r] = t
    r_n[r] += 1
    r_kv_res[r] += inp[q] + out[q]
    r_kv[r] += inp[q] + 0.5 * out[q]
    start_t[q] = t
    replica[q] = r
    link[q] = -1
    if r_pf_tail[r] >= 0:
        link[r_pf_tail[r]] = q
    else:
        r_pf_head[r] = q
        r_pf_left[r] = pf_work[q]
    r_pf_tail[r] = q


@njit(cache=True)
def _finish(q: int, r: int, d: int, t: float, finish_t: np.ndarray, status: np.ndarray,
            inp: np.ndarray, out: np.ndarray, r_n: np.ndarray, r_kv_res: np.ndarray,
            r_kv: np.ndarray, r_busy: np.ndarray, r_busy_since: np.ndarray,
            d_completions: np.ndarray, d_tokens_out: np.ndarray, counters: np.ndarray) -> None:
    finish_t[q] = t
    status[q] = OK
    r_n[r] -= 1
    r_kv_res[r] -= inp[q] + out[q]
    r_kv[r] -= inp[q] + 0.5 * out[q]
    if r_n[r] == 0:
        r_kv[r] = 0.0  # no drift from repeated float subtraction
        r_busy[r] += t - r_busy_since[r]
    d_completions[d] += 1
    d_tokens_out[d] += out[q]
    counters[C_OUTSTANDING] -= 1


@njit(cache=True)
def _fill(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
          pf_work: np.ndarray, start_t: np.ndarray, replica: np.ndarray, d_maxc: np.ndarray,
          d_kvcap: np.ndarray, d_q_head: np.ndarray, d_q_tail: np.ndarray,
          d_q_len: np.ndarray, d_q_area: np.ndarray, d_q_t: np.ndarray, r_n: np.ndarray,
          r_kv_res: np.ndarray, r_kv: np.ndarray, r_pf_head: np.ndarray,
          r_pf_tail: np.ndarray, r_pf_left: np.ndarray, r_busy_since: np.ndarray) -> None:
    """Admit queued requests of deployment ``d`` while replica ``r`` has room (FCFS)."""
    if d_q_len[d] == 0:
        return
    d_q_area[d] += d_q_len[d] * (t - d_q_t[d])
    d_q_t[d] = t
    while d_q_len[d] > 0:
        q = d_q_head[d]
        n_r = r_n[r]
        if n_r > 0 and (n_r >= d_maxc[d] or r_kv_res[r] + inp[q] + out[q] > d_kvcap[d]):
            break
        nxt = link[q]
        d_q_head[d] = nxt
        if nxt < 0:
            d_q_tail[d] = -1
        d_q_len[d] -= 1
        _admit(q, r, t, link, inp, out, pf_work, start_t, replica, r_n, r_kv_res, r_kv,
               r_pf_head, r_pf_tail, r_pf_left, r_busy_since)


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
