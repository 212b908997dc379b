"""The fast engine: continuous batching as a fluid, costing a few events per request.

Service model of a replica — the exact engine's (:mod:`sim.engine.exact`)
iterations averaged, so that a request costs a handful of heap operations
however many tokens it decodes or iterations it spans:

* Decoding requests advance together: one virtual clock per replica
  (iterations done, fractional) and a heap of finishing virtual times.
* A decode iteration of the ``n`` decoding requests costs
  ``step(n, kv) = max(M[n] + kv·m1, C[n] + kv·c1)`` (the shape's
  ``iteration_time`` tables), ``kv`` = Σ over the *decoding* requests of
  prompt + output/2: their mean context over their decode.  Requests waiting
  for their prefill hold KV but are not read by the decode step.
* Admitted requests are prefilled first come, first served.  While prompt
  tokens are pending, each iteration also carries ``x = min(budget − n,
  pending tokens)`` of them — the token budget ``max_num_batched_tokens``
  includes the decode tokens — and lasts ``iteration_time(n, kv, x, pkv)``
  (one pass, which reads the weights at least once; ``pkv`` = Σ over the
  prompts the iteration takes, FCFS as the exact engine does, of the tokens
  taken × that prompt's tokens already computed).  Prompts are a fluid
  within an iteration: a lone short prompt takes exactly one iteration,
  decode step included, and an iteration keeps its token count ``x`` and its
  length, set when it starts, until its end — a prompt that finishes within
  it hands the rest to the next one.
* A prompt's first token comes at the end of the iteration in which its
  last token was prefilled (the next whole value of the virtual clock); it
  decodes from there.
* A prompt that reaches a busy replica joins at the end of the current
  iteration (the next whole value of the virtual clock, which counts
  iterations, prefill-only ones included): until then its tokens neither
  progress nor make the current iteration longer.  So the first token pays
  the iteration boundary, then an iteration that carries both the decodes
  and the prompt.
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.heaps import dh_pop, dh_push, ih_update
from sim.engine.jit import njit
from sim.engine.layout import (
    DF_C1,
    DF_CHUNK,
    DF_M1,
    DF_TOKENS_IN,
    DI_Q_LEN,
    QF_FINISH,
    QF_FIRST,
    QI_IN,
    QI_LINK,
    QI_OUT,
    QI_PF_TOK,
    RF_KV,
    RF_LAST,
    RF_PF_LEFT,
    RF_PF_NEW,
    RF_PF_PEND,
    RF_PF_START,
    RF_PF_X,
    RF_PF_XV,
    RF_RATE_D,
    RF_RATE_P,
    RF_VTIME,
    RI_DRAINING,
    RI_HEAP_N,
    RI_HEAP_OFF,
    RI_PF_HEAD,
    RI_PF_TAIL,
)
from sim.engine.price import iter_time
from sim.engine.service import fill, finish, kv_held, prefilled

INF = np.inf

# A phase has finished when its remaining work would take at most this
# fraction of the clock's value: float rounding of event times leaves crumbs.
TIME_EPS = 1e-11
# A virtual clock this close to a whole number is at an iteration boundary.
PHASE_EPS = 1e-9


@njit(cache=True)
def advance(r: int, t: float, r_i: np.ndarray, r_f: np.ndarray) -> None:
    """Move replica ``r``'s progress to ``t`` at its current, constant rates."""
    dt = t - r_f[r, RF_LAST]
    if dt > 0.0:
        if r_f[r, RF_RATE_D] > 0.0:
            r_f[r, RF_VTIME] += r_f[r, RF_RATE_D] * dt
        if r_i[r, RI_PF_HEAD] >= 0:
            r_f[r, RF_PF_LEFT] -= r_f[r, RF_RATE_P] * dt
    r_f[r, RF_LAST] = t


@njit(cache=True)
def admitted(r: int, q: int, t: float, rq_i: np.ndarray, r_i: np.ndarray, r_f: np.ndarray) -> None:
    """Request ``q`` has joined ``r``'s prefill list at ``t`` (``r`` advanced to ``t``);
    its ``pf_tok``: the prompt tokens its prefill computes (those not in the cache).

    On a busy replica its tokens count from the current iteration's end.
    """
    _merge(r, t, r_f)
    wait = 0.0
    if r_f[r, RF_RATE_D] > 0.0:
        v = r_f[r, RF_VTIME]
        phase = v - math.floor(v)
        if PHASE_EPS < phase < 1.0 - PHASE_EPS:
            wait = (1.0 - phase) / r_f[r, RF_RATE_D]
    if wait == 0.0:
        r_f[r, RF_PF_PEND] += rq_i[q, QI_PF_TOK]
    else:
        if r_f[r, RF_PF_NEW] == 0.0:
            r_f[r, RF_PF_START] = t + wait
        r_f[r, RF_PF_NEW] += rq_i[q, QI_PF_TOK]


@njit(cache=True)
def _merge(r: int, t: float, r_f: np.ndarray) -> None:
    """At the iteration boundary, prompts admitted during the iteration join it."""
    if r_f[r, RF_PF_NEW] > 0.0 and t >= r_f[r, RF_PF_START]:
        r_f[r, RF_PF_PEND] += r_f[r, RF_PF_NEW]
        r_f[r, RF_PF_NEW] = 0.0


@njit(cache=True, inline="always")
def event(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray, r_i: np.ndarray,
          r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
          ih_pos: np.ndarray, counters: np.ndarray, n_rep_heap: int, blk_ids: np.ndarray,
          sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """A prefill or a decode finished on replica ``r`` at ``t`` (or a prefill may start)."""
    advance(r, t, r_i, r_f)
    slack = TIME_EPS * (t if t > 1.0 else 1.0)
    # decodes that are done (before prefills add decoders, which the rates so far
    # did not concern)
    off = r_i[r, RI_HEAP_OFF]
    while r_i[r, RI_HEAP_N] > 0 and (
        hv[off] <= r_f[r, RF_VTIME] + r_f[r, RF_RATE_D] * slack
    ):
        q = dh_pop(hv, hr, off, r_i[r, RI_HEAP_N])
        r_i[r, RI_HEAP_N] -= 1
        r_f[r, RF_KV] -= rq_i[q, QI_IN] + 0.5 * rq_i[q, QI_OUT]
        finish(q, r, d, t, kv_held(d, q, rq_i[q, QI_OUT], rq_i, d_i), rq_f, rq_i, d_i, d_f, r_i,
               r_f, counters, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    # prefills that are done (FCFS: only the head progresses)
    while r_i[r, RI_PF_HEAD] >= 0 and r_f[r, RF_PF_LEFT] <= r_f[r, RF_RATE_P] * slack:
        q = r_i[r, RI_PF_HEAD]
        nxt = rq_i[q, QI_LINK]
        r_i[r, RI_PF_HEAD] = nxt
        r_f[r, RF_PF_PEND] -= rq_i[q, QI_PF_TOK]
        if nxt < 0:
            r_i[r, RI_PF_TAIL] = -1
            r_f[r, RF_PF_PEND] = r_f[r, RF_PF_NEW] = 0.0
        else:
            r_f[r, RF_PF_LEFT] = rq_i[nxt, QI_PF_TOK]
        # the first token comes at the end of the current iteration
        v = r_f[r, RF_VTIME]
        boundary = v
        rq_f[q, QF_FIRST] = t
        if r_f[r, RF_RATE_D] > 0.0:
            phase = v - math.floor(v)
            if PHASE_EPS < phase < 1.0 - PHASE_EPS:
                boundary = math.floor(v) + 1.0
                rq_f[q, QF_FIRST] = t + (1.0 - phase) / r_f[r, RF_RATE_D]
        d_f[d, DF_TOKENS_IN] += rq_i[q, QI_IN]
        prefilled(q, r, d, True, rq_i, d_i, d_f, blk_ids, pc_r, pc_s, pc_tab)
        if rq_i[q, QI_OUT] > 1:
            dh_push(hv, hr, r_i[r, RI_HEAP_OFF], r_i[r, RI_HEAP_N],
                    boundary + (rq_i[q, QI_OUT] - 1), q)
            r_i[r, RI_HEAP_N] += 1
            r_f[r, RF_KV] += rq_i[q, QI_IN] + 0.5 * rq_i[q, QI_OUT]
        else:
            finish(q, r, d, t, kv_held(d, q, rq_i[q, QI_OUT], rq_i, d_i), rq_f, rq_i, d_i, d_f, r_i,
                   r_f, counters, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
            rq_f[q, QF_FINISH] = rq_f[q, QF_FIRST]
    if r_i[r, RI_DRAINING] == 0 and d_i[d, DI_Q_LEN] > 0:
        fill_fast(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    reschedule(r, d, t, d_M, d_C, d_PF, d_f, rq_i, r_i, r_f, hv, ih_key, ih_item, ih_pos,
               n_rep_heap)


@njit(cache=True, inline="always")
def fill_fast(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
              d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, blk_ids: np.ndarray,
              sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray,
              pc_tab: np.ndarray) -> None:
    """:func:`sim.engine.service.fill`, then :func:`admitted` for each admitted request."""
    tail = r_i[r, RI_PF_TAIL]
    fill(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    if tail >= 0 and tail == r_i[r, RI_PF_TAIL]:
        return  # nothing admitted
    q = rq_i[tail, QI_LINK] if tail >= 0 else r_i[r, RI_PF_HEAD]
    while q >= 0:
        admitted(r, q, t, rq_i, r_i, r_f)
        q = rq_i[q, QI_LINK]


@njit(cache=True, inline="always")
def reschedule(r: int, d: int, t: float, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray,
               d_f: np.ndarray, rq_i: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray,
               ih_key: np.ndarray, ih_item: np.ndarray, ih_pos: np.ndarray,
               n_rep_heap: int) -> None:
    """Recompute replica ``r``'s rates and its next event's time."""
    n_dec = r_i[r, RI_HEAP_N]
    head = r_i[r, RI_PF_HEAD]
    step = 0.0
    if n_dec > 0:
        kv = r_f[r, RF_KV]
        mem = d_M[d, n_dec] + kv * d_f[d, DF_M1]
        comp = d_C[d, n_dec] + kv * d_f[d, DF_C1]
        step = mem if mem > comp else comp
    _merge(r, t, r_f)
    waiting = head >= 0 and r_f[r, RF_PF_PEND] <= 0.0  # its tokens join at PF_START
    v = r_f[r, RF_VTIME]
    if (r_f[r, RF_PF_X] > 0.0 and v < r_f[r, RF_PF_XV]
            and r_f[r, RF_PF_XV] - v <= r_f[r, RF_RATE_D] * TIME_EPS * (t if t > 1.0 else 1.0)):
        # the iteration's end is closer than float time can tell from ``t``
        v = r_f[r, RF_VTIME] = r_f[r, RF_PF_XV]
    # an iteration that carries prompt tokens is under way: its length and its
    # count of prompt tokens were set when it started (a prefill that finishes
    # within it does not make its rest shorter)
    in_iter = (r_f[r, RF_PF_X] > 0.0 and r_f[r, RF_RATE_D] > 0.0
               and v < r_f[r, RF_PF_XV] - PHASE_EPS)
    if in_iter:
        r_f[r, RF_RATE_P] = r_f[r, RF_PF_X] * r_f[r, RF_RATE_D] if (
            head >= 0 and not waiting) else 0.0
    elif head >= 0 and not waiting:
        pending = r_f[r, RF_PF_PEND] - (rq_i[head, QI_PF_TOK] - r_f[r, RF_PF_LEFT])
        x = d_f[d, DF_CHUNK] - n_dec
        if pending < x:
            x = pending
        if x < 1.0:
            x = 1.0
        r_f[r, RF_PF_X] = x
        r_f[r, RF_PF_XV] = math.floor(v + PHASE_EPS) + 1.0
        # one pass: the decodes and x prompt tokens, FCFS over the prompts as
        # the exact engine takes them; each chunk attends to the part of its
        # prompt already computed (prefix-cache hits included)
        p = int(x + 0.5)
        pkv = 0.0
        rest = x
        q = head
        left = r_f[r, RF_PF_LEFT]
        while q >= 0 and rest > 0.0:
            take = left if left < rest else rest
            pkv += take * (rq_i[q, QI_IN] - left)
            rest -= take
            q = rq_i[q, QI_LINK]
            if q >= 0:
                left = rq_i[q, QI_PF_TOK]
        period = iter_time(d, n_dec, r_f[r, RF_KV], p, pkv, d_M, d_C, d_f, d_PF)
        r_f[r, RF_RATE_D] = 1.0 / period  # iterations (for the phase, also without decodes)
        r_f[r, RF_RATE_P] = x / period
    else:
        r_f[r, RF_RATE_P] = 0.0
        r_f[r, RF_RATE_D] = 1.0 / step if n_dec > 0 else 0.0
        r_f[r, RF_PF_X] = 0.0
    due = INF
    if n_dec > 0:
        left = hv[r_i[r, RI_HEAP_OFF]] - r_f[r, RF_VTIME]
        due = t + (left if left > 0.0 else 0.0) / r_f[r, RF_RATE_D]
    if r_f[r, RF_PF_NEW] > 0.0 and r_f[r, RF_PF_START] < due:
        due = r_f[r, RF_PF_START]  # newcomers join at the boundary
    if r_f[r, RF_PF_X] > 0.0:
        # the iteration's end: the next one carries a new count of prompt tokens
        # (or none, and is priced as decodes alone)
        due_b = t + (r_f[r, RF_PF_XV] - v) / r_f[r, RF_RATE_D]
        if due_b < due:
            due = due_b
    if head >= 0 and not waiting:
        left = r_f[r, RF_PF_LEFT]
        due_p = t + (left if left > 0.0 else 0.0) / r_f[r, RF_RATE_P]
        if due_p < due:
            due = due_p
    r_f[r, RF_LAST] = t
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, due)
