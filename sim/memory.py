"""Process memory: keep glibc's heap from growing with a long run's temporaries.

A run allocates and frees large temporary arrays every window (the engine's
state is re-packed, each window's request table converted and written).
glibc serves allocations above its mmap threshold with ``mmap`` and returns
them to the system on ``free`` — but it *raises* that threshold (up to
32 MiB) each time such a block is freed, so later temporaries of a few MiB
come from the heap, which fragments and never shrinks: a simulated week's
resident memory grew by several hundred MiB that way.  Pinning the threshold
at 1 MiB (``mallopt(M_MMAP_THRESHOLD)``, which also turns the adjustment off;
https://man7.org/linux/man-pages/man3/mallopt.3.html) keeps resident memory
flat.  Measured on 12 simulated hours of scenarios/bench/week.yaml: resident
memory grew 54 MiB over the run at 1 MiB against 185 MiB unpinned; glibc's
initial 128 KiB grew it 81 MiB and doubled the system time (mmap churn).

Pinning the mmap threshold also pins the trim threshold at glibc's 128 KiB
default: whenever the top of the heap held more than that free, ``free``
gave it back, and the next window's arrays (a few hundred KiB each) took it
again, a page fault per 4 KiB.  ``capsim bench``'s 200,000-request run took
~15,000 page faults that way; with the trim threshold at 32 MiB (at most that
much free memory stays resident), ~1,500, and the run is ~20 % faster.

Elsewhere (not glibc) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_THRESHOLD_BYTES = 1 << 20
_TRIM_BYTES = 32 << 20


def steady_heap() -> bool:
    """Pin glibc's mmap and trim thresholds; True if they were set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)
                    and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
    except (OSError, AttributeError):
        return False
