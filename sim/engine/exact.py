"""The exact engine: every iteration of every replica, as vLLM v1's scheduler runs them.

It follows ``Scheduler.schedule`` of vLLM v1
(https://github.com/vllm-project/vllm/blob/main/vllm/v1/core/sched/scheduler.py):

* one token budget per iteration, ``max_num_batched_tokens``.  Running
  requests are scheduled first, in the order they were admitted: every
  decoding request gets one token; requests still prefilling get the rest of
  the budget, first come first served, each as much of its remaining prompt
  as fits (chunked prefill), so several prompts may share an iteration;
* a request's first token exists at the end of the iteration that carries the
  last chunk of its prompt; each later iteration gives it one more token;
* an iteration lasts ``Shape.iteration_time(decode_batch, decode_kv_tokens,
  prefill_tokens, prefill_kv_tokens)`` with ``decode_kv_tokens`` = Σ over the
  decoding requests of prompt + tokens produced so far and
  ``prefill_kv_tokens`` = Σ over the chunks of chunk tokens × tokens of that
  prompt already computed;
* KV cache in blocks of ``kv_block_tokens``.  ``reserve``: a request is
  admitted when prompt + output fit in whole blocks, so it never runs out.
  ``grow`` (vLLM's paged attention): prompt blocks at admission, then one
  block whenever a decoding request's cache crosses a block boundary; when
  an iteration's blocks are not free, the newest running request is preempted
  (``Scheduler._preempt_request``: its blocks are freed, it goes back to the
  head of the queue and is recomputed — prompt plus the tokens it had produced
  — when admitted again).  Preemptions are counted.

Requests that reach a busy replica join its next iteration.  Runs of
iterations that only decode and in which nothing joins or finishes are one
event, whose length is :func:`sim.engine.price.decode_run` (a closed form
while one side of the roofline is the larger throughout); an arrival cuts
the run at the first iteration boundary after it, found with the same sums.
"""

from __future__ import annotations

import numpy as np

from sim.engine import prefix_cache as pc
from sim.engine.heaps import dh_pop, dh_push, ih_update
from sim.engine.jit import njit
from sim.engine.layout import (
    DF_TOKENS_IN,
    DI_BLOCK,
    DI_GROW,
    DI_KVCAP,
    DI_MNBT,
    DI_PREEMPTIONS,
    QF_FIRST,
    QF_START,
    QI_DONE,
    QI_GEN,
    QI_IN,
    QI_LINK,
    QI_OUT,
    QI_REPLICA,
    RF_CTX,
    RF_RUN_KV0,
    RF_RUN_PKV,
    RF_RUN_T0,
    RF_VTIME,
    RI_DRAINING,
    RI_HEAP_N,
    RI_HEAP_OFF,
    RI_KV_RES,
    RI_PF_HEAD,
    RI_PF_TAIL,
    RI_RUN_K,
    RI_RUN_P,
)
from sim.engine.price import decode_run, iter_time
from sim.engine.service import enqueue, fill, finish, kv_held, kv_need, leave, prefilled

INF = np.inf


@njit(cache=True)
def _new_blocks(r: int, d: int, k: int, rq_i: np.ndarray, r_f: np.ndarray, r_i: np.ndarray,
                hv: np.ndarray, hr: np.ndarray, d_i: np.ndarray) -> int:
    """Blocks the decoding requests of ``r`` allocate over their next ``k`` iterations."""
    block = d_i[d, DI_BLOCK]
    off = r_i[r, RI_HEAP_OFF]
    vt = r_f[r, RF_VTIME]
    total = 0
    for j in range(r_i[r, RI_HEAP_N]):
        q = hr[off + j]
        left = int(hv[off + j] - vt)  # iterations it has left
        # prompt + produced tokens, less the newest
        cached = rq_i[q, QI_IN] + rq_i[q, QI_OUT] - left - 1
        first = (cached + block - 1) // block * block - cached + 1  # iteration needing a block
        if k >= first:
            total += (k - first) // block + 1
    return total


@njit(cache=True)
def _preempt_newest(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
                    d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray,
                    hr: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray, pc_r: np.ndarray,
                    pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Preempt ``r``'s newest request (latest admitted): free its blocks, queue it first."""
    off = r_i[r, RI_HEAP_OFF]
    n_dec = r_i[r, RI_HEAP_N]
    victim = -1
    where = -1  # -1: prefill list; else its slot in the decode heap
    q = r_i[r, RI_PF_HEAD]
    while q >= 0:
        if victim < 0 or rq_f[q, QF_START] > rq_f[victim, QF_START] or (
                rq_f[q, QF_START] == rq_f[victim, QF_START] and q > victim):
            victim = q
        q = rq_i[q, QI_LINK]
    for j in range(n_dec):
        q = hr[off + j]
        if victim < 0 or rq_f[q, QF_START] > rq_f[victim, QF_START] or (
                rq_f[q, QF_START] == rq_f[victim, QF_START] and q > victim):
            victim = q
            where = j
    if where < 0:
        # out of the prefill list
        prev = -1
        q = r_i[r, RI_PF_HEAD]
        while q != victim:
            prev = q
            q = rq_i[q, QI_LINK]
        if prev < 0:
            r_i[r, RI_PF_HEAD] = rq_i[victim, QI_LINK]
        else:
            rq_i[prev, QI_LINK] = rq_i[victim, QI_LINK]
        if r_i[r, RI_PF_TAIL] == victim:
            r_i[r, RI_PF_TAIL] = prev
        held = kv_need(d, victim, rq_i, d_i)
    else:
        left = int(hv[off + where] - r_f[r, RF_VTIME])
        g = rq_i[victim, QI_OUT] - left
        held = kv_held(d, victim, g, rq_i, d_i)
        r_f[r, RF_CTX] -= rq_i[victim, QI_IN] + g
        rq_i[victim, QI_GEN] = g
        # rebuild the heap without it
        n = 0
        for j in range(n_dec):
            if j != where:
                hv[off + n] = hv[off + j]
                hr[off + n] = hr[off + j]
                n += 1
        r_i[r, RI_HEAP_N] = 0
        for j in range(n):
            v = hv[off + j]
            qq = hr[off + j]
            dh_push(hv, hr, off, j, v, qq)
        r_i[r, RI_HEAP_N] = n
    rq_i[victim, QI_DONE] = 0
    rq_i[victim, QI_REPLICA] = -1
    leave(r, d, t, held, d_i, d_f, r_i, r_f, victim, rq_i, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    d_i[d, DI_PREEMPTIONS] += 1
    enqueue(victim, d, t, True, rq_i, d_i, d_f)


@njit(cache=True, inline="always")
def schedule(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
             d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray, r_i: np.ndarray,
             r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray,
             ih_item: np.ndarray, ih_pos: np.ndarray, n_rep_heap: int, blk_ids: np.ndarray,
             sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Start replica ``r``'s next iterations at ``t`` (or leave it idle)."""
    grow = d_i[d, DI_GROW] == 1
    if grow:
        block = d_i[d, DI_BLOCK]
        while r_i[r, RI_HEAP_N] > 0 and _new_blocks(r, d, 1, rq_i, r_f, r_i, hv, hr, d_i) > (
                d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES]) // block:
            _preempt_newest(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, hv, hr, blk_ids, sess_rep,
                            pc_r, pc_s, pc_tab)
    b = r_i[r, RI_HEAP_N]
    head = r_i[r, RI_PF_HEAD]
    if b == 0 and head < 0:
        r_i[r, RI_RUN_K] = 0
        ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, INF)
        return
    budget = d_i[d, DI_MNBT] - b
    p = 0
    pkv = 0.0
    q = head
    while q >= 0 and p < budget:
        rem = rq_i[q, QI_IN] + rq_i[q, QI_GEN] - rq_i[q, QI_DONE]
        take = rem if rem < budget - p else budget - p
        pkv += take * rq_i[q, QI_DONE]
        p += take
        q = rq_i[q, QI_LINK]
    k = 1
    if p == 0:
        k = int(hv[r_i[r, RI_HEAP_OFF]] - r_f[r, RF_VTIME])  # until the next decode finishes
        if k < 1:
            k = 1
        if grow:
            free = (d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES]) // d_i[d, DI_BLOCK]
            if _new_blocks(r, d, k, rq_i, r_f, r_i, hv, hr, d_i) > free:
                lo, hi = 1, k  # need(lo) <= free < need(hi)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _new_blocks(r, d, mid, rq_i, r_f, r_i, hv, hr, d_i) > free:
                        hi = mid
                    else:
                        lo = mid
                k = lo
    if grow:  # the run's blocks are taken now, so admissions see them
        r_i[r, RI_KV_RES] += _new_blocks(r, d, k, rq_i, r_f, r_i, hv, hr, d_i) * (
            d_i[d, DI_BLOCK])
    if p > 0:
        end = t + iter_time(d, b, r_f[r, RF_CTX], p, pkv, d_M, d_C, d_f, d_PF)
    else:
        end = t + decode_run(d, b, r_f[r, RF_CTX], k, d_M, d_C, d_f, d_PF)
    if grow:  # free cached blocks make room for the blocks decode takes
        pc.fit(r, d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES], pc_r, pc_s, pc_tab)
    r_i[r, RI_RUN_K] = k
    r_i[r, RI_RUN_P] = p
    r_f[r, RF_RUN_T0] = t
    r_f[r, RF_RUN_KV0] = r_f[r, RF_CTX]
    r_f[r, RF_RUN_PKV] = pkv
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, end)


@njit(cache=True, inline="always")
def touch(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray, r_i: np.ndarray,
          r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
          ih_pos: np.ndarray, n_rep_heap: int, blk_ids: np.ndarray, sess_rep: np.ndarray,
          pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Replica ``r`` has admitted work at ``t``: start an idle one, or end its run of
    decode iterations at the first boundary after ``t`` so the work joins the next one."""
    k = r_i[r, RI_RUN_K]
    if k == 0:
        schedule(r, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr, ih_key, ih_item,
                 ih_pos, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
        return
    if k == 1 or r_i[r, RI_RUN_P] > 0:
        return
    b = r_i[r, RI_HEAP_N]
    kv0 = r_f[r, RF_RUN_KV0]
    t0 = r_f[r, RF_RUN_T0]
    # the first iteration boundary after t: the least j with t0 + decode_run(j) > t
    lo, hi = 0, k  # t0 + run(lo) <= t < t0 + run(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if t0 + decode_run(d, b, kv0, mid, d_M, d_C, d_f, d_PF) > t:
            hi = mid
        else:
            lo = mid
    j = hi
    end = t0 + decode_run(d, b, kv0, j, d_M, d_C, d_f, d_PF)
    if d_i[d, DI_GROW] == 1 and j < k:  # give back the blocks of the iterations cut off
        r_i[r, RI_KV_RES] -= (_new_blocks(r, d, k, rq_i, r_f, r_i, hv, hr, d_i)
                              - _new_blocks(r, d, j, rq_i, r_f, r_i, hv, hr, d_i)) * (
            d_i[d, DI_BLOCK])
    r_i[r, RI_RUN_K] = j
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, end)


@njit(cache=True, inline="always")
def event(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray, d_PF: np.ndarray, r_i: np.ndarray,
          r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
          ih_pos: np.ndarray, counters: np.ndarray, n_rep_heap: int, blk_ids: np.ndarray,
          sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Replica ``r``'s scheduled iterations end at ``t``: hand out their tokens, go on."""
    k = r_i[r, RI_RUN_K]
    b = r_i[r, RI_HEAP_N]
    r_f[r, RF_VTIME] += k
    r_f[r, RF_CTX] = r_f[r, RF_RUN_KV0] + k * b
    r_i[r, RI_RUN_K] = 0
    vt = r_f[r, RF_VTIME]
    # decodes that are done
    off = r_i[r, RI_HEAP_OFF]
    while r_i[r, RI_HEAP_N] > 0 and hv[off] <= vt:
        q = dh_pop(hv, hr, off, r_i[r, RI_HEAP_N])
        r_i[r, RI_HEAP_N] -= 1
        r_f[r, RF_CTX] -= rq_i[q, QI_IN] + rq_i[q, QI_OUT]
        finish(q, r, d, t, kv_held(d, q, rq_i[q, QI_OUT], rq_i, d_i), rq_f, rq_i, d_i, d_f, r_i,
               r_f, counters, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    # the iteration's prefill chunks, in the order they were scheduled
    left = r_i[r, RI_RUN_P]
    while left > 0:
        q = r_i[r, RI_PF_HEAD]
        target = rq_i[q, QI_IN] + rq_i[q, QI_GEN]
        take = target - rq_i[q, QI_DONE]
        if take > left:
            take = left
        rq_i[q, QI_DONE] += take
        left -= take
        if rq_i[q, QI_DONE] < target:
            break
        nxt = rq_i[q, QI_LINK]
        r_i[r, RI_PF_HEAD] = nxt
        if nxt < 0:
            r_i[r, RI_PF_TAIL] = -1
        g = rq_i[q, QI_GEN] + 1  # the iteration that completes the prefill produces a token
        prefilled(q, r, d, rq_i[q, QI_GEN] == 0, rq_i, d_i, d_f, blk_ids, pc_r, pc_s, pc_tab)
        if rq_i[q, QI_GEN] == 0:
            rq_f[q, QF_FIRST] = t
            d_f[d, DF_TOKENS_IN] += rq_i[q, QI_IN]
        if g < rq_i[q, QI_OUT]:
            dh_push(hv, hr, off, r_i[r, RI_HEAP_N], vt + (rq_i[q, QI_OUT] - g), q)
            r_i[r, RI_HEAP_N] += 1
            r_f[r, RF_CTX] += rq_i[q, QI_IN] + g
        else:
            finish(q, r, d, t, kv_held(d, q, g, rq_i, d_i), rq_f, rq_i, d_i, d_f, r_i, r_f,
                   counters, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    if r_i[r, RI_DRAINING] == 0:
        fill(r, d, t, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    schedule(r, d, t, rq_i, rq_f, d_i, d_f, d_M, d_C, d_PF, r_i, r_f, hv, hr, ih_key, ih_item,
             ih_pos, n_rep_heap, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
