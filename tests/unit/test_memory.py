"""sim.memory: glibc's mmap threshold is pinned where glibc is the allocator."""

from __future__ import annotations

import platform
import sys

import pytest

from sim.memory import steady_heap


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_threshold_is_pinned_on_glibc():
    assert steady_heap() is True
