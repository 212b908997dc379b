"""The price of one iteration in the compiled engines: ``Shape.iteration_time`` from tables.

``Shape.iteration_terms`` tabulates what ``iteration_time`` computes per
batch size and per token count; :func:`iter_time` combines the tables with
the same operations in the same order, so it returns the same float (a test
checks it on several shapes).
"""

from __future__ import annotations

import numpy as np

from sim.engine.jit import njit
from sim.engine.layout import (
    DF_ATTN,
    DF_C1,
    DF_C1R,
    DF_FLOPS,
    DF_KEEP,
    DF_LIN,
    DF_M1,
    DF_M1R,
    DF_MODE,
    DF_OVERHEAD,
    T_CM,
    T_CR,
    T_CRAW,
    T_G,
    T_MR,
    T_PT,
    T_W,
    T_WI,
)


@njit(cache=True, inline="always")
def iter_time(d: int, b: int, kv: float, p: int, pkv: float, d_M: np.ndarray,
              d_C: np.ndarray, d_f: np.ndarray, d_PF: np.ndarray) -> float:
    """``Shape.iteration_time(b, kv, p, pkv)`` from the tables of ``Shape.iteration_terms``:
    the same operations in the same order, so the same float."""
    if b <= 0 and p <= 0:
        return 0.0
    decode = 0.0
    if b > 0:
        mem = d_M[d, b] + kv * d_f[d, DF_M1]
        comp = d_C[d, b] + kv * d_f[d, DF_C1]
        decode = mem if mem > comp else comp
    if p <= 0:
        return decode
    mode = d_f[d, DF_MODE]
    if mode == 1.0:
        return decode + d_PF[d, T_CR, p]
    t = p + b
    chunk = float(p)
    lin = d_f[d, DF_LIN]
    attention = chunk * d_PF[d, T_PT, p] + pkv * d_f[d, DF_ATTN]
    compute = lin * chunk / d_PF[d, T_G, t] + attention / d_f[d, DF_FLOPS]
    if mode == 2.0 and b > 0:
        return decode + compute + (d_PF[d, T_CM, t] - d_PF[d, T_CM, b])
    memory = d_PF[d, T_W, t]
    if b > 0:
        memory += kv * d_f[d, DF_M1R] + d_PF[d, T_MR, b] - d_PF[d, T_WI, b]
        compute += (d_PF[d, T_CRAW, b] - lin * b / d_PF[d, T_G, b] + lin * b / d_PF[d, T_G, t]
                    + kv * d_f[d, DF_C1R])
    hi = memory if memory > compute else compute
    lo = compute if memory > compute else memory
    return hi + d_f[d, DF_KEEP] * lo + d_f[d, DF_OVERHEAD] + d_PF[d, T_CM, t]


@njit(cache=True)
def decode_run(d: int, b: int, kv0: float, k: int, d_M: np.ndarray, d_C: np.ndarray,
               d_f: np.ndarray, d_PF: np.ndarray) -> float:
    """Seconds of ``k`` decode iterations of ``b`` requests whose contexts hold ``kv0``
    tokens at the first (each iteration adds ``b``).

    Each lasts ``max(M + kv·m1, C + kv·c1)``.  When the same side is the larger
    at the first and the last iteration it is the larger throughout (both are
    affine in kv), and the sum has a closed form: k·(M + kv0·m1) + m1·b·k(k−1)/2.
    Otherwise the iterations are added one by one.
    """
    if k <= 0:
        return 0.0
    m1 = d_f[d, DF_M1]
    c1 = d_f[d, DF_C1]
    last = kv0 + (k - 1) * b
    mem0 = d_M[d, b] + kv0 * m1
    comp0 = d_C[d, b] + kv0 * c1
    mem1 = d_M[d, b] + last * m1
    comp1 = d_C[d, b] + last * c1
    pairs = 0.5 * k * (k - 1) * b
    if mem0 >= comp0 and mem1 >= comp1:
        return k * mem0 + pairs * m1
    if comp0 >= mem0 and comp1 >= mem1:
        return k * comp0 + pairs * c1
    total = 0.0
    kv = kv0
    for _ in range(k):
        total += iter_time(d, b, kv, 0, 0.0, d_M, d_C, d_f, d_PF)
        kv += b
    return total
