"""numba's ``njit`` when it is installed and wanted, else an identity decorator.

``CAPSIM_NO_JIT=1`` runs the compiled request path as plain Python, with
identical results (the functions only add, multiply, divide and compare).
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
