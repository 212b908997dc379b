"""numba's ``njit`` when it is installed and wanted, else an identity decorator.

``CAPSIM_NO_JIT=1`` runs the kernels as plain Python; they then give results
identical to the compiled ones, bit for bit (they only add, multiply, divide
and compare floats: no transcendental functions, no random draws).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


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
