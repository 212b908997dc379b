"""The per-replica prefix cache against a brute-force reference and by hand."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import prefix_cache as pc

ROOT = Path(__file__).resolve().parents[2]


class Cache:
    """The module's functions on one replica's cache, with chains as lists."""

    def __init__(self, slots: int):
        self.state = pc.PrefixCacheState.empty()
        self.state.add_replica(0, slots)

    def _ids(self, chain: list[int]) -> np.ndarray:
        return np.asarray(chain, np.int64)

    def match(self, chain: list[int]) -> int:
        s = self.state
        return pc.match(0, self._ids(chain), 0, len(chain), *s.args())

    def acquire(self, chain: list[int], k: int) -> None:
        pc.acquire(0, self._ids(chain), 0, k, *self.state.args())

    def insert(self, chain: list[int], start: int, prompt: int, block: int) -> int:
        return pc.insert(0, self._ids(chain), 0, len(chain), start, prompt, block,
                         *self.state.args())

    def release(self, chain: list[int], k: int) -> None:
        pc.release(0, self._ids(chain), 0, k, *self.state.args())

    def fit(self, budget: int) -> None:
        s = self.state
        pc.fit(0, budget, *s.args())

    def resident(self) -> set[int]:
        s = self.state
        return {int(k) for k in s.block_ids() if k >= 0}

    def free_order(self) -> list[int]:
        """Free blocks from least to most recently used."""
        return self.state.free_blocks(0)

    def col(self, c: int) -> int:
        return int(self.state.pc_r[0, c])


class Reference:
    """The same cache written the obvious way: dicts and an OrderedDict."""

    def __init__(self, slots: int):
        self.slots = slots
        self.tok: dict[int, int] = {}
        self.ref: dict[int, int] = {}
        self.free: OrderedDict[int, None] = OrderedDict()  # LRU first

    def match(self, chain: list[int]) -> int:
        k = 0
        while k < len(chain) and chain[k] in self.tok:
            k += 1
        return k

    def _pin(self, b: int) -> None:
        if self.ref[b] == 0:
            del self.free[b]
        self.ref[b] += 1

    def acquire(self, chain: list[int], k: int) -> None:
        for b in chain[:k]:
            self._pin(b)

    def _evict(self) -> bool:
        if not self.free:
            return False
        b, _ = self.free.popitem(last=False)
        del self.tok[b], self.ref[b]
        return True

    def insert(self, chain: list[int], start: int, prompt: int, block: int) -> int:
        for j in range(start, len(chain)):
            b = chain[j]
            if b in self.tok:
                self._pin(b)
                continue
            if len(self.tok) >= self.slots and not self._evict():
                return j
            self.tok[b] = min(block, prompt - j * block)
            self.ref[b] = 1
        return len(chain)

    def release(self, chain: list[int], k: int) -> None:
        for b in reversed(chain[:k]):
            self.ref[b] -= 1
            if self.ref[b] == 0:
                self.free[b] = None

    def fit(self, budget: int) -> None:
        while sum(self.tok[b] for b in self.free) > budget and self._evict():
            pass

    def free_tokens(self) -> int:
        return sum(self.tok[b] for b in self.free)


# --------------------------------------------------------------------------- by hand


def test_lru_eviction_by_hand():
    """Blocks of 4 tokens.  A = [1, 2, 3] (12 tokens), B = [1, 4] (8), C = [5] (4).

    A runs and ends: its blocks become free in the order 3, 2, 1 (tail first).
    B hits block 1 (pins it), inserts 4, ends: free order 3, 2, then 4, 1.
    Fitting the free blocks into 8 tokens evicts 3 then 2 (16 → 8 tokens);
    C then finds nothing, and fitting into 4 tokens evicts 4: block 1 — the
    shared head — is the last one left.
    """
    c = Cache(slots=8)
    a, b = [1, 2, 3], [1, 4]
    assert c.match(a) == 0
    assert c.insert(a, 0, 12, 4) == 3
    c.release(a, 3)
    assert c.free_order() == [3, 2, 1]
    assert c.col(pc.PC_FREE_TOKENS) == 12
    assert c.match(b) == 1
    c.acquire(b, 1)
    assert c.free_order() == [3, 2]
    assert c.insert(b, 1, 8, 4) == 2
    c.release(b, 2)
    assert c.free_order() == [3, 2, 4, 1]
    c.fit(8)
    assert c.free_order() == [4, 1]
    assert c.col(pc.PC_EVICTIONS) == 2
    assert c.match([5]) == 0
    c.fit(4)
    assert c.resident() == {1}
    assert c.match(a) == 1 and c.match(b) == 1


def test_pinned_blocks_are_never_evicted():
    c = Cache(slots=4)
    c.insert([1, 2], 0, 8, 4)  # pinned by a running request
    c.fit(0)
    assert c.resident() == {1, 2}
    c.release([1, 2], 2)
    c.fit(0)
    assert c.resident() == set()
    assert c.col(pc.PC_RESIDENT_TOKENS) == 0


def test_partial_last_block_and_slot_pressure():
    """A 10-token prompt in blocks of 4: blocks of 4, 4 and 2 tokens.  With 3
    slots, a second chain of 2 blocks evicts the two least recently used
    free blocks (the first chain's tail, then its middle)."""
    c = Cache(slots=3)
    c.insert([7, 8, 9], 0, 10, 4)
    assert c.col(pc.PC_RESIDENT_TOKENS) == 10
    c.release([7, 8, 9], 3)
    assert c.insert([20, 21], 0, 8, 4) == 2
    assert c.resident() == {7, 20, 21}
    assert c.insert([30], 0, 4, 4) == 1  # evicts 7, the last free block
    assert c.resident() == {20, 21, 30}
    # every slot pinned: a further block is not cached
    assert c.insert([31], 0, 4, 4) == 0


def test_hit_tokens_leave_one_token_to_compute():
    assert pc.hit_tokens(0, 100, 16) == 0
    assert pc.hit_tokens(2, 100, 16) == 32
    assert pc.hit_tokens(7, 100, 16) == 99  # the whole prompt cached: one token computed
    assert pc.hit_tokens(1, 16, 16) == 15


def test_clear_empties_the_cache():
    c = Cache(slots=4)
    c.insert([1, 2, 3], 0, 12, 4)
    pc.clear(0, *c.state.args())
    assert c.resident() == set() and c.match([1]) == 0
    assert c.insert([4, 5, 6, 7], 0, 16, 4) == 4  # every slot usable again


# --------------------------------------------------------------------------- against the reference


ops = st.lists(
    st.tuples(
        st.sampled_from(["run", "fit"]),
        st.lists(st.integers(0, 12), min_size=1, max_size=6),
        st.integers(0, 40),
    ),
    min_size=1,
    max_size=40,
)


def _chain(raw: list[int]) -> list[int]:
    """A prefix chain: each id depends on the ids before it (like hash_ids)."""
    out, h = [], 0
    for x in raw:
        h = h * 13 + x + 1
        out.append(h % 10_007)
    return out


@settings(max_examples=150, deadline=None)
@given(ops=ops, slots=st.integers(1, 8), block=st.integers(1, 8))
def test_matches_brute_force_reference(ops, slots, block):
    """Random runs of requests (lookup, pin, insert, sometimes overlapping) and
    evictions give the same hits, resident blocks and LRU order as the reference."""
    c, ref = Cache(slots), Reference(slots)
    running: list[tuple[list[int], int, int]] = []
    for kind, raw, x in ops:
        if kind == "fit":
            c.fit(x)
            ref.fit(x)
        else:
            chain = _chain(raw)
            prompt = (len(chain) - 1) * block + 1 + x % block
            k = c.match(chain)
            assert k == ref.match(chain)
            c.acquire(chain, k)
            ref.acquire(chain, k)
            n = c.insert(chain, k, prompt, block)
            assert n == ref.insert(chain, k, prompt, block)
            running.append((chain, n, prompt))
            if x % 3:  # end the oldest running request
                done, m, _ = running.pop(0)
                c.release(done, m)
                ref.release(done, m)
        assert c.resident() == set(ref.tok)
        assert c.free_order() == list(ref.free)
        assert c.col(pc.PC_FREE_TOKENS) == ref.free_tokens()
        assert c.col(pc.PC_RESIDENT_TOKENS) == sum(ref.tok.values())
        assert c.col(pc.PC_RESIDENT) == len(ref.tok)


# --------------------------------------------------------------------------- hit counts


def replay(chains: list[list[int]], prompts: list[int], block: int, capacity: int | None
           ) -> int:
    """Cached tokens of requests served one after the other on one replica whose
    free blocks may hold ``capacity`` tokens (None: unbounded)."""
    slots = sum(len(c) for c in chains) + 1
    c = Cache(slots)
    hits = 0
    for chain, prompt in zip(chains, prompts, strict=True):
        k = c.match(chain)
        hits += pc.hit_tokens(k, prompt, block)
        c.acquire(chain, k)
        n = c.insert(chain, k, prompt, block)
        c.release(chain, n)
        if capacity is not None:
            c.fit(capacity)
    return hits


def exact_hits(chains: list[list[int]], prompts: list[int], block: int) -> int:
    """Cached tokens with a cache that forgets nothing, counted from the ids alone."""
    seen: set[int] = set()
    total = 0
    for chain, prompt in zip(chains, prompts, strict=True):
        k = 0
        while k < len(chain) and chain[k] in seen:
            k += 1
        total += min(k * block, prompt - 1)
        seen.update(chain)
    return total


requests = st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=6), min_size=1,
                    max_size=30)


@settings(max_examples=150, deadline=None)
@given(raw=requests, block=st.integers(1, 6))
def test_hits_bounded_by_exact_count_and_monotone_in_capacity(raw, block):
    """Unbounded: the exact count.  Bounded: never more, and never fewer with more
    room (LRU is a stack algorithm: a bigger cache holds a superset).  Blocks are
    full, so a block's size does not depend on the prompt that holds it."""
    chains = [_chain(r) for r in raw]
    prompts = [len(ch) * block for ch in chains]
    exact = exact_hits(chains, prompts, block)
    assert replay(chains, prompts, block, None) == exact
    previous = -1
    for capacity in range(0, 6 * block * 6, max(block, 1)):
        h = replay(chains, prompts, block, capacity)
        assert h <= exact
        assert h >= previous
        previous = h


# --------------------------------------------------------------------------- JIT and Python


_SCRIPT = """
import hashlib, numpy as np
from sim.engine import prefix_cache as pc
rng = np.random.default_rng(5)
s = pc.PrefixCacheState.empty()
for r in range(2):
    s.add_replica(r, 40)
for step in range(800):
    r = int(rng.integers(2))
    n = int(rng.integers(1, 9))
    ids = np.cumsum(rng.integers(0, 3, n)).astype(np.int64) * 1000003 + int(rng.integers(3))
    k = pc.match(r, ids, 0, n, *s.args())
    pc.acquire(r, ids, 0, k, *s.args())
    m = pc.insert(r, ids, 0, n, k, n * 16 - 3, 16, *s.args())
    pc.release(r, ids, 0, m, *s.args())
    pc.fit(r, int(rng.integers(0, 400)), *s.args())
    if step % 397 == 0:
        pc.clear(r, *s.args())
h = hashlib.sha256()
for a in s.args():
    h.update(a.tobytes())
print(h.hexdigest())
"""


def test_compiled_and_pure_python_agree():
    digests = []
    for flag in ("", "1"):
        env = {**os.environ, "CAPSIM_NO_JIT": flag, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                             text=True, check=True, cwd=ROOT)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(hashlib.sha256().hexdigest())


@pytest.mark.parametrize("slots", [1, 3, 64])
def test_table_survives_many_removals(slots):
    """Backward-shift deletion keeps every resident block findable."""
    c = Cache(slots)
    rng = np.random.default_rng(slots)
    for _ in range(500):
        chain = [int(x) for x in rng.integers(0, 50, size=1)]
        k = c.match(chain)
        c.acquire(chain, k)
        n = c.insert(chain, k, 4, 4)
        c.release(chain, n)
        for b in c.resident():
            assert c.match([b]) == 1


# --------------------------------------------------------------------------- a fleet of caches


def test_a_fleets_caches_grow_by_doubling_and_start_empty():
    """n replicas' caches are appended without re-copying all earlier ones each time
    (a 1,000-replica fleet once took 11 s here), and each starts empty and separate."""
    s = pc.PrefixCacheState.empty()
    copies, last = 0, None
    for r in range(200):
        s.add_replica(r, 37 + r % 5)
        buffer = s.slots.base if s.slots.base is not None else s.slots
        copies += buffer is not last
        last = buffer
        # a block cached in replica r is not in any other's cache
        ids = np.array([10_000 + r], np.int64)
        pc.insert(r, ids, 0, 1, 0, 16, 16, *s.args())
    assert copies <= 10  # log2 of the final size, not one copy per replica
    assert len(s.slots) == sum(37 + r % 5 for r in range(200))
    for r in range(200):
        off, n = int(s.pc_r[r, pc.PC_SLOT_OFF]), int(s.pc_r[r, pc.PC_SLOTS])
        assert n == 37 + r % 5 and off == sum(37 + k % 5 for k in range(r))
        assert pc.match(r, np.array([10_000 + r], np.int64), 0, 1, *s.args()) == 1
        other = (r + 1) % 200
        assert pc.match(r, np.array([10_000 + other], np.int64), 0, 1, *s.args()) == 0
