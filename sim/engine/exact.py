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
def _new_blocks(r: int, d: int, k: int, inp: np.ndarray, out: np.ndarray, r_f: np.ndarray,
                r_i: np.ndarray, hv: np.ndarray, hr: np.ndarray, d_i: np.ndarray) -> int:
    """Blocks the decoding requests of ``r`` allocate over their next ``k`` iterations."""
    block = d_i[d, DI_BLOCK]
    off = r_i[r, RI_HEAP_OFF]
    vt = r_f[r, RF_VTIME]
    total = 0
    for j in range(r_i[r, RI_HEAP_N]):
        q = hr[off + j]
        left = int(hv[off + j] - vt)  # iterations it has left
        cached = inp[q] + out[q] - left - 1  # prompt + produced tokens, less the newest
        first = (cached + block - 1) // block * block - cached + 1  # iteration needing a block
        if k >= first:
            total += (k - first) // block + 1
    return total


@njit(cache=True)
def _preempt_newest(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray,
                    out: np.ndarray, start_t: np.ndarray, replica: np.ndarray,
                    done: np.ndarray, gen: np.ndarray, d_i: np.ndarray, d_f: np.ndarray,
                    r_i: np.ndarray, r_f: np.ndarray, hv: np.ndarray, hr: np.ndarray,
        rq_px: np.ndarray, pf_tok: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray,
        pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray,
        pc_prev: np.ndarray, pc_next: np.ndarray, pc_tab: np.ndarray) -> None:
    """Preempt ``r``'s newest request (latest admitted): free its blocks, queue it first."""
    off = r_i[r, RI_HEAP_OFF]
    n_dec = r_i[r, RI_HEAP_N]
    victim = -1
    where = -1  # -1: prefill list; else its slot in the decode heap
    q = r_i[r, RI_PF_HEAD]
    while q >= 0:
        if victim < 0 or start_t[q] > start_t[victim] or (
                start_t[q] == start_t[victim] and q > victim):
            victim = q
        q = link[q]
    for j in range(n_dec):
        q = hr[off + j]
        if victim < 0 or start_t[q] > start_t[victim] or (
                start_t[q] == start_t[victim] and q > victim):
            victim = q
            where = j
    if where < 0:
        # out of the prefill list
        prev = -1
        q = r_i[r, RI_PF_HEAD]
        while q != victim:
            prev = q
            q = link[q]
        if prev < 0:
            r_i[r, RI_PF_HEAD] = link[victim]
        else:
            link[prev] = link[victim]
        if r_i[r, RI_PF_TAIL] == victim:
            r_i[r, RI_PF_TAIL] = prev
        held = kv_need(d, victim, inp, out, gen, d_i)
    else:
        left = int(hv[off + where] - r_f[r, RF_VTIME])
        g = out[victim] - left
        held = kv_held(d, victim, g, inp, out, d_i)
        r_f[r, RF_CTX] -= inp[victim] + g
        gen[victim] = g
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
    done[victim] = 0
    replica[victim] = -1
    leave(r, d, t, held, d_i, d_f, r_i, r_f, victim, rq_px, pf_tok, blk_ids, sess_rep, pc_r,
          pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
    d_i[d, DI_PREEMPTIONS] += 1
    enqueue(victim, d, t, True, link, d_i, d_f)


@njit(cache=True)
def schedule(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
             start_t: np.ndarray, replica: np.ndarray, done: np.ndarray, gen: np.ndarray,
             d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray,
             d_PF: np.ndarray, r_i: np.ndarray, r_f: np.ndarray,
             hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
             ih_pos: np.ndarray, n_rep_heap: int,
        rq_px: np.ndarray, pf_tok: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray,
        pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray,
        pc_prev: np.ndarray, pc_next: np.ndarray, pc_tab: np.ndarray) -> None:
    """Start replica ``r``'s next iterations at ``t`` (or leave it idle)."""
    grow = d_i[d, DI_GROW] == 1
    if grow:
        block = d_i[d, DI_BLOCK]
        while r_i[r, RI_HEAP_N] > 0 and _new_blocks(r, d, 1, inp, out, r_f, r_i, hv, hr, d_i) > (
                d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES]) // block:
            _preempt_newest(r, d, t, link, inp, out, start_t, replica, done, gen, d_i, d_f,
                            r_i, r_f, hv, hr,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
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
        rem = inp[q] + gen[q] - done[q]
        take = rem if rem < budget - p else budget - p
        pkv += take * done[q]
        p += take
        q = link[q]
    k = 1
    if p == 0:
        k = int(hv[r_i[r, RI_HEAP_OFF]] - r_f[r, RF_VTIME])  # until the next decode finishes
        if k < 1:
            k = 1
        if grow:
            free = (d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES]) // d_i[d, DI_BLOCK]
            if _new_blocks(r, d, k, inp, out, r_f, r_i, hv, hr, d_i) > free:
                lo, hi = 1, k  # need(lo) <= free < need(hi)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if _new_blocks(r, d, mid, inp, out, r_f, r_i, hv, hr, d_i) > free:
                        hi = mid
                    else:
                        lo = mid
                k = lo
    if grow:  # the run's blocks are taken now, so admissions see them
        r_i[r, RI_KV_RES] += _new_blocks(r, d, k, inp, out, r_f, r_i, hv, hr, d_i) * (
            d_i[d, DI_BLOCK])
    if p > 0:
        end = t + iter_time(d, b, r_f[r, RF_CTX], p, pkv, d_M, d_C, d_f, d_PF)
    else:
        end = t + decode_run(d, b, r_f[r, RF_CTX], k, d_M, d_C, d_f, d_PF)
    if grow:  # free cached blocks make room for the blocks decode takes
        pc.fit(r, d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES], pc_r, pc_key, pc_tok, pc_prev,
               pc_next, pc_tab)
    r_i[r, RI_RUN_K] = k
    r_i[r, RI_RUN_P] = p
    r_f[r, RF_RUN_T0] = t
    r_f[r, RF_RUN_KV0] = r_f[r, RF_CTX]
    r_f[r, RF_RUN_PKV] = pkv
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, end)


@njit(cache=True)
def touch(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
          start_t: np.ndarray, replica: np.ndarray, done: np.ndarray, gen: np.ndarray,
          d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray,
          d_PF: np.ndarray, r_i: np.ndarray, r_f: np.ndarray,
          hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
          ih_pos: np.ndarray, n_rep_heap: int,
        rq_px: np.ndarray, pf_tok: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray,
        pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray,
        pc_prev: np.ndarray, pc_next: np.ndarray, pc_tab: np.ndarray) -> None:
    """Replica ``r`` has admitted work at ``t``: start an idle one, or end its run of
    decode iterations at the first boundary after ``t`` so the work joins the next one."""
    k = r_i[r, RI_RUN_K]
    if k == 0:
        schedule(r, d, t, link, inp, out, start_t, replica, done, gen, d_i, d_f, d_M, d_C,
                 d_PF, r_i, r_f, hv, hr, ih_key, ih_item, ih_pos, n_rep_heap,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
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
        r_i[r, RI_KV_RES] -= (_new_blocks(r, d, k, inp, out, r_f, r_i, hv, hr, d_i)
                              - _new_blocks(r, d, j, inp, out, r_f, r_i, hv, hr, d_i)) * (
            d_i[d, DI_BLOCK])
    r_i[r, RI_RUN_K] = j
    ih_update(ih_key, ih_item, ih_pos, n_rep_heap, r, end)


@njit(cache=True)
def event(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
          gen: np.ndarray, done: np.ndarray, start_t: np.ndarray,
          first_t: np.ndarray, finish_t: np.ndarray, status: np.ndarray, replica: np.ndarray,
          d_i: np.ndarray, d_f: np.ndarray, d_M: np.ndarray, d_C: np.ndarray,
          d_PF: np.ndarray, r_i: np.ndarray, r_f: np.ndarray,
          hv: np.ndarray, hr: np.ndarray, ih_key: np.ndarray, ih_item: np.ndarray,
          ih_pos: np.ndarray, counters: np.ndarray, n_rep_heap: int,
        rq_px: np.ndarray, pf_tok: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray,
        pc_r: np.ndarray, pc_key: np.ndarray, pc_tok: np.ndarray, pc_ref: np.ndarray,
        pc_prev: np.ndarray, pc_next: np.ndarray, pc_tab: np.ndarray) -> None:
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
        r_f[r, RF_CTX] -= inp[q] + out[q]
        finish(q, r, d, t, kv_held(d, q, out[q], inp, out, d_i), finish_t, status, out,
               d_i, d_f, r_i, r_f, counters,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
    # the iteration's prefill chunks, in the order they were scheduled
    left = r_i[r, RI_RUN_P]
    while left > 0:
        q = r_i[r, RI_PF_HEAD]
        target = inp[q] + gen[q]
        take = target - done[q]
        if take > left:
            take = left
        done[q] += take
        left -= take
        if done[q] < target:
            break
        nxt = link[q]
        r_i[r, RI_PF_HEAD] = nxt
        if nxt < 0:
            r_i[r, RI_PF_TAIL] = -1
        g = gen[q] + 1  # the iteration that completes the prefill produces a token
        prefilled(q, r, d, gen[q] == 0, inp, d_i, d_f, rq_px, blk_ids, pc_r, pc_key, pc_tok,
                  pc_ref, pc_prev, pc_next, pc_tab)
        if gen[q] == 0:
            first_t[q] = t
            d_f[d, DF_TOKENS_IN] += inp[q]
        if g < out[q]:
            dh_push(hv, hr, off, r_i[r, RI_HEAP_N], vt + (out[q] - g), q)
            r_i[r, RI_HEAP_N] += 1
            r_f[r, RF_CTX] += inp[q] + g
        else:
            finish(q, r, d, t, kv_held(d, q, g, inp, out, d_i), finish_t, status, out,
                   d_i, d_f, r_i, r_f, counters,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
    if r_i[r, RI_DRAINING] == 0:
        fill(r, d, t, link, inp, out, gen, start_t, replica, d_i, d_f, r_i, r_f,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab,
        done)
    schedule(r, d, t, link, inp, out, start_t, replica, done, gen, d_i, d_f, d_M, d_C,
             d_PF, r_i, r_f, hv, hr, ih_key, ih_item, ih_pos, n_rep_heap,
        rq_px, pf_tok, blk_ids, sess_rep, pc_r, pc_key, pc_tok, pc_ref, pc_prev, pc_next, pc_tab)
