"""numba's ``njit`` when it is installed and wanted, else an identity decorator.

``CAPSIM_NO_JIT=1`` runs the kernels as plain Python; they then give results
identical to the compiled ones, bit for bit (they only add, multiply, divide
and compare floats: no transcendental functions, no random draws).

The kernels are compiled without numba's reference-counting runtime (NRT).
They never allocate, return or keep an array: every array they touch is
owned by the caller (:class:`sim.engine.layout.KernelState`) for the whole
call.  With NRT on, each compiled function increments and decrements an
atomic count for every array argument it binds — a request passes some
hundreds of arrays from function to function, and those atomics were two
thirds of the kernel's time (``perf`` on ``capsim bench``'s M/M/10: 65 % of
samples in ``NRT_incref``/``NRT_decref``).  A kernel that did allocate
would fail to compile, loudly, rather than run unsafely.

The functions a request's events run through (``fast.event``,
``fast.reschedule``, ``fast.fill_fast``, ``exact.event``, ``exact.touch``,
``exact.schedule``, ``heaps.ih_update``, ``price.iter_time``) are compiled
with ``inline="always"``, into their callers.  A call between compiled
functions passes each array as its whole descriptor (seven to nine machine
words), and ``fast.event`` takes twenty arrays: LLVM left these calls out of
line (the assembly of ``run_until`` called them by address), and inlining
them made ``capsim bench``'s kernel and end-to-end runs 15–40 % faster.  The
price is compile time: the first call compiles for about 70 s instead of 50.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
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
    _invalidate_stale_cache()
    return _without_nrt(njit), True


def _without_nrt(njit: Callable[..., Any]) -> Callable[..., Any]:
    """``njit`` with NRT off by default (numba's ``_nrt`` option, where it has one)."""
    from numba.core.cpu import CPUTargetOptions

    if not hasattr(CPUTargetOptions, "_nrt"):
        return njit

    def jit(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_nrt", False)
        return njit(*args, **kwargs)

    return jit


def _invalidate_stale_cache() -> None:
    """Drop numba's on-disk cache when any engine source changed.

    numba checks only the source file of the function it caches, not those of
    the functions it calls in other modules (``run_until`` calls ``fast`` and
    ``exact``), so an edit there would otherwise run stale compiled code.
    """
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in sorted(here.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / "engine-sources.sha256"
    want = digest.hexdigest()
    try:
        if stamp.read_text() == want:
            return
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for old in (*cache.glob("*.nbi"), *cache.glob("*.nbc")):
            old.unlink(missing_ok=True)
        stamp.write_text(want)
    except OSError:
        pass  # a read-only install: numba then caches elsewhere or not at all


njit, JIT = _load_jit()


def compile_notice(cache: Path | None = None) -> str | None:
    """A line to show before a run that will compile the kernels first (a minute or
    more of silence otherwise), or None when they are cached or nothing compiles.

    Looks for numba's index of ``run_until`` in ``cache`` (default: beside the
    sources); where ``NUMBA_CACHE_DIR`` moves the cache it does not look, and
    says nothing.
    """
    if not JIT or os.environ.get("NUMBA_CACHE_DIR"):
        return None
    cache = cache or Path(__file__).resolve().parent / "__pycache__"
    if any(cache.glob("kernel.run_until-*.nbi")):
        return None
    return ("compiling the engine's kernels for this machine first (once: about a minute "
            "on 2 cores; later runs load them from the cache)")
