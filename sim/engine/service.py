"""What both engines share on a replica: admission, routing, finishing, the queue.

A deployment's router keeps one FIFO queue.  A request is admitted by a
replica (it joins the replica's prefill list, first come first served) when
the replica holds fewer than ``max_concurrency`` requests and the request's
KV fits (:func:`kv_need`); an idle replica always admits one.  The router
sends a new request to :func:`pick`'s replica, or queues it.

:func:`pick` is the least-loaded router (ties: oldest); the others are in
:mod:`sim.engine.routers`.  With prefix caching, :func:`admit` pins the
longest cached prefix of the prompt (:mod:`sim.engine.prefix_cache`): the
exact engine starts the prefill at ``done`` = the cached tokens, the fast
engine prefills ``pf_tok`` = the uncached tokens (each iteration's attention
to the cached ones priced by ``iteration_time``); :func:`prefilled` caches the
prompt's blocks,
:func:`leave` unpins them.
"""

from __future__ import annotations

import numpy as np

from sim.engine import prefix_cache as pc
from sim.engine.jit import njit
from sim.engine.layout import (
    C_OUTSTANDING,
    DF_Q_AREA,
    DF_Q_T,
    DF_SERV_AREA,
    DF_SERV_T,
    DF_TOKENS_CACHED,
    DF_TOKENS_OUT,
    DI_BLOCK,
    DI_COMPLETIONS,
    DI_GROW,
    DI_HASH_BLOCK,
    DI_KVCAP,
    DI_MAXC,
    DI_NREPS,
    DI_PREFIX,
    DI_Q_HEAD,
    DI_Q_LEN,
    DI_Q_TAIL,
    DI_SERVING,
    OK,
    PX_CACHED,
    PX_HIT,
    PX_N,
    PX_OFF,
    PX_PINNED,
    PX_SESS,
    QF_FINISH,
    QF_START,
    QI_DONE,
    QI_GEN,
    QI_IN,
    QI_LINK,
    QI_OUT,
    QI_PF_TOK,
    QI_REPLICA,
    QI_STATUS,
    RF_BUSY,
    RF_BUSY_SINCE,
    RF_CTX,
    RF_KV,
    RF_PF_LEFT,
    RI_DEP,
    RI_DRAINING,
    RI_KV_RES,
    RI_N,
    RI_PF_HEAD,
    RI_PF_TAIL,
)


@njit(cache=True)
def blocks_of(tokens: int, block: int) -> int:
    """Tokens of KV held by ``tokens`` tokens, in whole blocks of ``block``."""
    return (tokens + block - 1) // block * block


@njit(cache=True)
def kv_need(d: int, q: int, rq_i: np.ndarray, d_i: np.ndarray) -> int:
    """KV tokens a replica sets aside for ``q`` when it admits it.

    ``reserve``: prompt + output, in whole blocks.  ``grow``: the tokens its
    prefill computes (the prompt, plus any output produced before a
    preemption); decode allocates the rest block by block.
    """
    if d_i[d, DI_GROW] == 0:
        return blocks_of(rq_i[q, QI_IN] + rq_i[q, QI_OUT], d_i[d, DI_BLOCK])
    return blocks_of(rq_i[q, QI_IN] + rq_i[q, QI_GEN], d_i[d, DI_BLOCK])


@njit(cache=True)
def kv_held(d: int, q: int, g: int, rq_i: np.ndarray, d_i: np.ndarray) -> int:
    """KV tokens ``q`` holds once it has produced ``g`` ≥ 1 output tokens."""
    if d_i[d, DI_GROW] == 0:
        return blocks_of(rq_i[q, QI_IN] + rq_i[q, QI_OUT], d_i[d, DI_BLOCK])
    return blocks_of(rq_i[q, QI_IN] + g - 1, d_i[d, DI_BLOCK])


@njit(cache=True)
def pick(d: int, need: int, d_i: np.ndarray, d_reps: np.ndarray, r_i: np.ndarray) -> int:
    """The router: least-loaded ready replica of ``d`` that admits ``need`` KV tokens.

    Ties: the oldest replica.  -1 when none has room.
    """
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
def serving(d: int, t: float, delta: int, d_i: np.ndarray, d_f: np.ndarray) -> None:
    """Level monitor of the requests in service in ``d``: account, then change."""
    d_f[d, DF_SERV_AREA] += d_i[d, DI_SERVING] * (t - d_f[d, DF_SERV_T])
    d_f[d, DF_SERV_T] = t
    d_i[d, DI_SERVING] += delta


@njit(cache=True)
def admit(q: int, r: int, t: float, need: int, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, blk_ids: np.ndarray,
          sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Start serving request ``q`` on replica ``r``: it joins the prefill list's tail."""
    if r_i[r, RI_N] == 0:
        r_f[r, RF_BUSY_SINCE] = t
    r_i[r, RI_N] += 1
    r_i[r, RI_KV_RES] += need
    d = r_i[r, RI_DEP]
    serving(d, t, 1, d_i, d_f)
    # NaN: first admission (a preempted one keeps its start)
    if rq_f[q, QF_START] != rq_f[q, QF_START]:
        rq_f[q, QF_START] = t
    rq_i[q, QI_REPLICA] = r
    rq_i[q, QI_LINK] = -1
    # the prefix cache: pin the longest cached prefix, whose prefill is skipped
    if rq_i[q, PX_SESS] >= 0:
        sess_rep[rq_i[q, PX_SESS]] = r
    rq_i[q, PX_PINNED] = 0
    rq_i[q, PX_HIT] = 0
    h = 0
    if rq_i[q, PX_N] > 0 and d_i[d, DI_PREFIX] == 1:
        off = rq_i[q, PX_OFF]
        k = pc.match(r, blk_ids, off, rq_i[q, PX_N], pc_r, pc_s, pc_tab)
        pc.acquire(r, blk_ids, off, k, pc_r, pc_s, pc_tab)
        rq_i[q, PX_PINNED] = k
        h = pc.hit_tokens(k, rq_i[q, QI_IN], d_i[d, DI_HASH_BLOCK])
        rq_i[q, PX_HIT] = h
        # free cached blocks make room for what running requests hold
        pc.fit(r, d_i[d, DI_KVCAP] - r_i[r, RI_KV_RES], pc_r, pc_s, pc_tab)
    rq_i[q, QI_DONE] = h  # exact engine: the cached tokens count as computed
    # fast engine: the tokens its prefill computes (after the cached)
    rq_i[q, QI_PF_TOK] = rq_i[q, QI_IN] - h
    if r_i[r, RI_PF_TAIL] >= 0:
        rq_i[r_i[r, RI_PF_TAIL], QI_LINK] = q
    else:
        r_i[r, RI_PF_HEAD] = q
        r_f[r, RF_PF_LEFT] = rq_i[q, QI_PF_TOK]
    r_i[r, RI_PF_TAIL] = q


@njit(cache=True)
def prefilled(q: int, r: int, d: int, first: bool, rq_i: np.ndarray, d_i: np.ndarray,
              d_f: np.ndarray, blk_ids: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray,
              pc_tab: np.ndarray) -> None:
    """``q``'s prompt is computed on ``r``: its blocks enter the cache (pinned by it).
    ``first``: its first prefill (a recomputed one is not counted again)."""
    if rq_i[q, PX_N] == 0 or d_i[d, DI_PREFIX] == 0:
        return
    if first:
        rq_i[q, PX_CACHED] = rq_i[q, PX_HIT]
        d_f[d, DF_TOKENS_CACHED] += rq_i[q, PX_HIT]
    rq_i[q, PX_PINNED] = pc.insert(r, blk_ids, rq_i[q, PX_OFF], rq_i[q, PX_N], rq_i[q, PX_PINNED],
                                   rq_i[q, QI_IN], d_i[d, DI_HASH_BLOCK], pc_r, pc_s, pc_tab)


@njit(cache=True)
def leave(r: int, d: int, t: float, held: int, d_i: np.ndarray, d_f: np.ndarray, r_i: np.ndarray,
          r_f: np.ndarray, q: int, rq_i: np.ndarray, blk_ids: np.ndarray, sess_rep: np.ndarray,
          pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
    """Request ``q`` leaves replica ``r`` (finished or preempted), freeing ``held`` KV
    tokens and its pins in the prefix cache."""
    if rq_i[q, PX_PINNED] > 0:
        pc.release(r, blk_ids, rq_i[q, PX_OFF], rq_i[q, PX_PINNED], pc_r, pc_s, pc_tab)
        rq_i[q, PX_PINNED] = 0
    r_i[r, RI_N] -= 1
    r_i[r, RI_KV_RES] -= held
    if r_i[r, RI_N] == 0:
        r_f[r, RF_KV] = 0.0  # no drift from repeated float subtraction
        r_f[r, RF_CTX] = 0.0
        if r_i[r, RI_DRAINING] == 0:  # a draining replica's busy time closed when it drained
            r_f[r, RF_BUSY] += t - r_f[r, RF_BUSY_SINCE]
    serving(d, t, -1, d_i, d_f)


@njit(cache=True)
def finish(q: int, r: int, d: int, t: float, held: int, rq_f: np.ndarray, rq_i: np.ndarray,
           d_i: np.ndarray, d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, counters: np.ndarray,
           blk_ids: np.ndarray, sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray,
           pc_tab: np.ndarray) -> None:
    """Request ``q`` has produced its last token on ``r`` at ``t``."""
    rq_f[q, QF_FINISH] = t
    rq_i[q, QI_STATUS] = OK
    leave(r, d, t, held, d_i, d_f, r_i, r_f, q, rq_i, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
    d_i[d, DI_COMPLETIONS] += 1
    d_f[d, DF_TOKENS_OUT] += rq_i[q, QI_OUT]
    counters[C_OUTSTANDING] -= 1


@njit(cache=True)
def enqueue(q: int, d: int, t: float, front: bool, rq_i: np.ndarray, d_i: np.ndarray,
            d_f: np.ndarray) -> None:
    """Put ``q`` in ``d``'s router queue: at its tail, or its head (a preempted request)."""
    d_f[d, DF_Q_AREA] += d_i[d, DI_Q_LEN] * (t - d_f[d, DF_Q_T])
    d_f[d, DF_Q_T] = t
    if front:
        rq_i[q, QI_LINK] = d_i[d, DI_Q_HEAD]
        d_i[d, DI_Q_HEAD] = q
        if d_i[d, DI_Q_TAIL] < 0:
            d_i[d, DI_Q_TAIL] = q
    else:
        rq_i[q, QI_LINK] = -1
        if d_i[d, DI_Q_TAIL] >= 0:
            rq_i[d_i[d, DI_Q_TAIL], QI_LINK] = q
        else:
            d_i[d, DI_Q_HEAD] = q
        d_i[d, DI_Q_TAIL] = q
    d_i[d, DI_Q_LEN] += 1


@njit(cache=True)
def fill(r: int, d: int, t: float, rq_i: np.ndarray, rq_f: np.ndarray, d_i: np.ndarray,
         d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray, blk_ids: np.ndarray,
         sess_rep: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray, pc_tab: np.ndarray) -> None:
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
        need = kv_need(d, q, rq_i, d_i)
        if n_r > 0 and (n_r >= maxc or r_i[r, RI_KV_RES] + need > kvcap):
            break
        nxt = rq_i[q, QI_LINK]
        d_i[d, DI_Q_HEAD] = nxt
        if nxt < 0:
            d_i[d, DI_Q_TAIL] = -1
        d_i[d, DI_Q_LEN] -= 1
        admit(q, r, t, need, rq_i, rq_f, d_i, d_f, r_i, r_f, blk_ids, sess_rep, pc_r, pc_s, pc_tab)
