"""What both engines share on a replica: admission, routing, finishing, the queue.

A deployment's router keeps one FIFO queue.  A request is admitted by a
replica (it joins the replica's prefill list, first come first served) when
the replica holds fewer than ``max_concurrency`` requests and the request's
KV fits (:func:`kv_need`); an idle replica always admits one.  The router
sends a new request to :func:`pick`'s replica, or queues it.

Extension points: :func:`pick` is the routing decision (least loaded, ties:
oldest); a request's ``done`` (prompt tokens already computed when its
prefill starts: 0 today) and the fast engine's ``RF_PF_LEFT`` (prompt tokens
left to prefill, set in :func:`admit`) are where a prefix cache would cut a
request's prefill work.
"""

from __future__ import annotations

import numpy as np

from sim.engine.jit import njit
from sim.engine.layout import (
    C_OUTSTANDING,
    DF_Q_AREA,
    DF_Q_T,
    DF_SERV_AREA,
    DF_SERV_T,
    DF_TOKENS_OUT,
    DI_BLOCK,
    DI_COMPLETIONS,
    DI_GROW,
    DI_KVCAP,
    DI_MAXC,
    DI_NREPS,
    DI_Q_HEAD,
    DI_Q_LEN,
    DI_Q_TAIL,
    DI_SERVING,
    OK,
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
def kv_need(d: int, q: int, inp: np.ndarray, out: np.ndarray, gen: np.ndarray,
            d_i: np.ndarray) -> int:
    """KV tokens a replica sets aside for ``q`` when it admits it.

    ``reserve``: prompt + output, in whole blocks.  ``grow``: the tokens its
    prefill computes (the prompt, plus any output produced before a
    preemption); decode allocates the rest block by block.
    """
    if d_i[d, DI_GROW] == 0:
        return blocks_of(inp[q] + out[q], d_i[d, DI_BLOCK])
    return blocks_of(inp[q] + gen[q], d_i[d, DI_BLOCK])


@njit(cache=True)
def kv_held(d: int, q: int, g: int, inp: np.ndarray, out: np.ndarray, d_i: np.ndarray) -> int:
    """KV tokens ``q`` holds once it has produced ``g`` ≥ 1 output tokens."""
    if d_i[d, DI_GROW] == 0:
        return blocks_of(inp[q] + out[q], d_i[d, DI_BLOCK])
    return blocks_of(inp[q] + g - 1, d_i[d, DI_BLOCK])


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
def admit(q: int, r: int, t: float, need: int, link: np.ndarray, inp: np.ndarray,
          start_t: np.ndarray, replica: np.ndarray, d_i: np.ndarray, d_f: np.ndarray,
          r_i: np.ndarray, r_f: np.ndarray) -> None:
    """Start serving request ``q`` on replica ``r``: it joins the prefill list's tail."""
    if r_i[r, RI_N] == 0:
        r_f[r, RF_BUSY_SINCE] = t
    r_i[r, RI_N] += 1
    r_i[r, RI_KV_RES] += need
    serving(r_i[r, RI_DEP], t, 1, d_i, d_f)
    if start_t[q] != start_t[q]:  # NaN: first admission (a preempted one keeps its start)
        start_t[q] = t
    replica[q] = r
    link[q] = -1
    if r_i[r, RI_PF_TAIL] >= 0:
        link[r_i[r, RI_PF_TAIL]] = q
    else:
        r_i[r, RI_PF_HEAD] = q
        r_f[r, RF_PF_LEFT] = inp[q]
    r_i[r, RI_PF_TAIL] = q


@njit(cache=True)
def leave(r: int, d: int, t: float, held: int, d_i: np.ndarray, d_f: np.ndarray,
          r_i: np.ndarray, r_f: np.ndarray) -> None:
    """A request leaves replica ``r`` (finished or preempted), freeing ``held`` KV tokens."""
    r_i[r, RI_N] -= 1
    r_i[r, RI_KV_RES] -= held
    if r_i[r, RI_N] == 0:
        r_f[r, RF_KV] = 0.0  # no drift from repeated float subtraction
        r_f[r, RF_CTX] = 0.0
        if r_i[r, RI_DRAINING] == 0:  # a draining replica's busy time closed when it drained
            r_f[r, RF_BUSY] += t - r_f[r, RF_BUSY_SINCE]
    serving(d, t, -1, d_i, d_f)


@njit(cache=True)
def finish(q: int, r: int, d: int, t: float, held: int, finish_t: np.ndarray,
           status: np.ndarray, out: np.ndarray, d_i: np.ndarray, d_f: np.ndarray,
           r_i: np.ndarray, r_f: np.ndarray, counters: np.ndarray) -> None:
    """Request ``q`` has produced its last token on ``r`` at ``t``."""
    finish_t[q] = t
    status[q] = OK
    leave(r, d, t, held, d_i, d_f, r_i, r_f)
    d_i[d, DI_COMPLETIONS] += 1
    d_f[d, DF_TOKENS_OUT] += out[q]
    counters[C_OUTSTANDING] -= 1


@njit(cache=True)
def enqueue(q: int, d: int, t: float, front: bool, link: np.ndarray, d_i: np.ndarray,
            d_f: np.ndarray) -> None:
    """Put ``q`` in ``d``'s router queue: at its tail, or its head (a preempted request)."""
    d_f[d, DF_Q_AREA] += d_i[d, DI_Q_LEN] * (t - d_f[d, DF_Q_T])
    d_f[d, DF_Q_T] = t
    if front:
        link[q] = d_i[d, DI_Q_HEAD]
        d_i[d, DI_Q_HEAD] = q
        if d_i[d, DI_Q_TAIL] < 0:
            d_i[d, DI_Q_TAIL] = q
    else:
        link[q] = -1
        if d_i[d, DI_Q_TAIL] >= 0:
            link[d_i[d, DI_Q_TAIL]] = q
        else:
            d_i[d, DI_Q_HEAD] = q
        d_i[d, DI_Q_TAIL] = q
    d_i[d, DI_Q_LEN] += 1


@njit(cache=True)
def fill(r: int, d: int, t: float, link: np.ndarray, inp: np.ndarray, out: np.ndarray,
         gen: np.ndarray, start_t: np.ndarray, replica: np.ndarray,
         d_i: np.ndarray, d_f: np.ndarray, r_i: np.ndarray, r_f: np.ndarray) -> None:
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
        need = kv_need(d, q, inp, out, gen, d_i)
        if n_r > 0 and (n_r >= maxc or r_i[r, RI_KV_RES] + need > kvcap):
            break
        nxt = link[q]
        d_i[d, DI_Q_HEAD] = nxt
        if nxt < 0:
            d_i[d, DI_Q_TAIL] = -1
        d_i[d, DI_Q_LEN] -= 1
        admit(q, r, t, need, link, inp, start_t, replica, d_i, d_f, r_i, r_f)
