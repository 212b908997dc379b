"""Routers: which ready replica of a deployment takes a new request.

A router is a function over the deployment's replicas, compiled like the
kernel (pure Python when numba is absent, with identical results).  The
engine gives it, for the ``n`` replicas of the routing list ``reps``:

* ``load[r]`` — requests on replica ``r`` (running or waiting for prefill);
* ``admit[k]`` — whether ``reps[k]`` can take the request now (its
  concurrency and KV limits, the engine's rule);
* ``hit[k]`` — prompt blocks of the request ``reps[k]`` holds in its prefix
  cache (``prefix_aware`` only);

and returns the chosen replica, or −1 when none can take it (the request
then waits in the deployment's queue and goes to the first replica with room).

* ``least_loaded`` — fewest requests; ties: the oldest replica.
* ``prefix_aware`` — the replica holding the longest cached prefix of the
  prompt (ties: least loaded), unless it is overloaded: its load exceeds the
  least loaded replica's by more than ``balance_abs`` requests *and* by a
  factor of more than ``balance_rel`` — then the least loaded one.  This is
  the rule of the cache-aware policy of SGLang's router and the vLLM router
  derived from it (https://github.com/vllm-project/router, defaults 64 and
  1.5), with the cache tree replaced by the replicas' actual caches, as the
  prefix-cache scorer of llm-d's inference scheduler scores endpoints by the
  share of the prompt's blocks they hold
  (https://llm-d.ai/docs/architecture/Components/inf-scheduler).  No hit
  anywhere: the least loaded replica.
* ``session`` — sticky by session: a session's requests go to the replica
  that served its previous one while that replica is in the routing list,
  can admit and is not overloaded (the same test); otherwise to the least
  loaded replica, which becomes the session's.  As the provider's
  ``x-session-affinity`` header (https://docs.fireworks.ai/guides/prompt-caching)
  and vLLM production-stack's session router.  Requests without a session:
  least loaded.
* ``round_robin`` — the next replica in the list after the previous choice
  that can admit.
* ``random`` — uniformly among the replicas that can admit, from a
  pre-drawn uniform (runs stay deterministic).
"""

from __future__ import annotations

import numpy as np

from sim.engine import prefix_cache as pc
from sim.engine.jit import njit
from sim.engine.layout import (
    C_ROUTER_UNIFORM,
    DF_BAL_ABS,
    DF_BAL_REL,
    DI_KVCAP,
    DI_MAXC,
    DI_NREPS,
    DI_PREFIX,
    DI_ROUTER,
    DI_RR,
    PX_N,
    PX_OFF,
    PX_SESS,
    RI_KV_RES,
    RI_N,
)

LEAST_LOADED, PREFIX_AWARE, SESSION, ROUND_ROBIN, RANDOM = range(5)
NAMES = ("least_loaded", "prefix_aware", "session", "round_robin", "random")


@njit(cache=True)
def least_loaded(reps: np.ndarray, n: int, load: np.ndarray, admit: np.ndarray) -> int:
    """Index ``k`` in ``reps`` of the least loaded replica that can admit, or −1."""
    best = -1
    best_n = 1 << 62
    for k in range(n):
        if admit[k] and load[reps[k]] < best_n:
            best = k
            best_n = load[reps[k]]
            if best_n == 0:
                break
    return best


@njit(cache=True)
def overloaded(load_c: int, load_min: int, balance_abs: float, balance_rel: float) -> bool:
    """The sticky or cache-holding replica's load against the least loaded one's."""
    return load_c - load_min > balance_abs and load_c > balance_rel * load_min


@njit(cache=True)
def prefix_aware(reps: np.ndarray, n: int, load: np.ndarray, admit: np.ndarray,
                 hit: np.ndarray, balance_abs: float, balance_rel: float) -> int:
    """Index of the replica with the longest cached prefix unless overloaded, or −1."""
    ll = least_loaded(reps, n, load, admit)
    if ll < 0:
        return -1
    best = -1
    for k in range(n):
        if admit[k] and hit[k] > 0 and (
            best < 0 or hit[k] > hit[best]
            or (hit[k] == hit[best] and load[reps[k]] < load[reps[best]])
        ):
            best = k
    if best < 0 or overloaded(load[reps[best]], load[reps[ll]], balance_abs, balance_rel):
        return ll
    return best


@njit(cache=True)
def sticky(reps: np.ndarray, n: int, load: np.ndarray, admit: np.ndarray, home: int,
           balance_abs: float, balance_rel: float) -> int:
    """Index of replica ``home`` if it may take the request, else the least loaded's."""
    ll = least_loaded(reps, n, load, admit)
    if ll < 0 or home < 0:
        return ll
    for k in range(n):
        if reps[k] == home:
            if admit[k] and not overloaded(load[home], load[reps[ll]], balance_abs,
                                           balance_rel):
                return k
            return ll
    return ll


@njit(cache=True)
def round_robin(n: int, admit: np.ndarray, start: int) -> int:
    """Index of the first replica from ``start`` on (cyclically) that can admit, or −1."""
    for i in range(n):
        k = (start + i) % n
        if admit[k]:
            return k
    return -1


@njit(cache=True)
def uniform_pick(n: int, admit: np.ndarray, u: float) -> int:
    """Index of the ``⌊u·m⌋``-th of the ``m`` replicas that can admit, or −1."""
    m = 0
    for k in range(n):
        if admit[k]:
            m += 1
    if m == 0:
        return -1
    target = int(u * m)
    if target >= m:
        target = m - 1
    for k in range(n):
        if admit[k]:
            if target == 0:
                return k
            target -= 1
    return -1


@njit(cache=True)
def route(q: int, d: int, need: int, rq_i: np.ndarray, blk_ids: np.ndarray, d_i: np.ndarray,
          d_f: np.ndarray, d_reps: np.ndarray, r_i: np.ndarray, pc_r: np.ndarray, pc_s: np.ndarray,
          pc_tab: np.ndarray, sess_rep: np.ndarray, scratch: np.ndarray, ru: np.ndarray,
          counters: np.ndarray) -> int:
    """The replica deployment ``d``'s router picks for request ``q`` (``need``: the KV
    tokens it would set aside), or −1.  ``least_loaded`` is the engine's own ``pick``."""
    n = d_i[d, DI_NREPS]
    reps = d_reps[d]
    admit = scratch[0]
    hit = scratch[1]
    maxc = d_i[d, DI_MAXC]
    kvcap = d_i[d, DI_KVCAP]
    load = r_i[:, RI_N]
    for k in range(n):
        r = reps[k]
        n_r = r_i[r, RI_N]
        admit[k] = 1 if n_r == 0 or (n_r < maxc and r_i[r, RI_KV_RES] + need <= kvcap) else 0
    kind = d_i[d, DI_ROUTER]
    bal_abs = d_f[d, DF_BAL_ABS]
    bal_rel = d_f[d, DF_BAL_REL]
    if kind == PREFIX_AWARE:
        chain = rq_i[q, PX_N] if d_i[d, DI_PREFIX] == 1 else 0
        for j in range(n):
            hit[j] = 0
            if admit[j] and chain > 0:
                hit[j] = pc.match(reps[j], blk_ids, rq_i[q, PX_OFF], chain, pc_r, pc_s, pc_tab)
        k = prefix_aware(reps, n, load, admit, hit, bal_abs, bal_rel)
    elif kind == SESSION:
        s = rq_i[q, PX_SESS]
        home = sess_rep[s] if s >= 0 else -1
        k = sticky(reps, n, load, admit, home, bal_abs, bal_rel)
    elif kind == ROUND_ROBIN:
        k = round_robin(n, admit, d_i[d, DI_RR] % n if n > 0 else 0)
        if k >= 0:
            d_i[d, DI_RR] = k + 1
    elif kind == RANDOM:
        u = ru[counters[C_ROUTER_UNIFORM]]
        counters[C_ROUTER_UNIFORM] += 1
        k = uniform_pick(n, admit, u)
    else:
        k = least_loaded(reps, n, load, admit)
    return reps[k] if k >= 0 else -1


class SessionIndex:
    """Dense numbers for a deployment's session ids, in order of first appearance,
    so the engine keeps each session's replica in a flat array."""

    def __init__(self) -> None:
        self._dense: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._dense)

    def dense(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` (−1: no session) as numbers 0, 1, … (−1 kept)."""
        out = np.full(len(ids), -1, np.int64)
        has = ids >= 0
        if not has.any():
            return out
        uniq, first, inverse = np.unique(ids[has], return_index=True, return_inverse=True)
        codes = np.empty(len(uniq), np.int64)
        for j in np.argsort(first, kind="stable").tolist():
            codes[j] = self._dense.setdefault(int(uniq[j]), len(self._dense))
        out[has] = codes[inverse]
        return out
