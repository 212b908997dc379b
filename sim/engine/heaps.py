"""The engine's heaps, on arrays: replicas by next event, client retries, decodes.

* an indexed min-heap of replicas keyed by the time of their next event;
* the retry heap: (time, sequence) → request;
* per-replica decode heaps: (finishing virtual time, request).
"""

from __future__ import annotations

import numpy as np

from sim.engine.jit import njit
from sim.engine.layout import C_RETRY_SEQ, C_RETRY_SIZE


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


@njit(cache=True, inline="always")
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
def rt_push(rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray, counters: np.ndarray,
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
def rt_pop(rt_t: np.ndarray, rt_seq: np.ndarray, rt_req: np.ndarray, counters: np.ndarray) -> int:
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
def dh_push(hv: np.ndarray, hr: np.ndarray, off: int, n: int, v: float, req: int) -> None:
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
def dh_pop(hv: np.ndarray, hr: np.ndarray, off: int, n: int) -> int:
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

