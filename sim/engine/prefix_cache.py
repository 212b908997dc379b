"""Per-replica prefix caches of prompt blocks, on arrays the kernels compile.

A prompt is a chain of blocks: block ``j`` holds its tokens ``[j·B, (j+1)·B)``
(the last one may be shorter) and is named by an id that stands for the whole
prefix up to and including it, as vLLM's automatic prefix caching hashes a
block with its parent's hash (https://docs.vllm.ai/en/latest/design/prefix_caching/)
and as the ``hash_ids`` of public traces do.  Equal ids mean equal prefixes,
so the cached part of a prompt is the longest run of leading blocks whose ids
are resident.

Each replica's cache lives in its KV memory:

* a block is **resident** once a prefill has computed it (:func:`insert`),
  **pinned** while a request that uses it runs (a reference count), and
  **free** otherwise: free blocks stay resident, reusable, in a
  least-recently-used list; they are evicted from its head when memory is
  needed (:func:`fit`);
* a request that ends unpins its blocks from the last one to the first
  (:func:`release`), so the tail of a prompt is evicted before its head, as
  vLLM frees a request's blocks in reverse order;
* a replica that stops loses its cache (:func:`clear`).

The functions are written in the subset of Python numba compiles and run
unchanged as plain Python (``CAPSIM_NO_JIT=1``), with identical results: only
integer arithmetic, no overflow (the hash multiplies 32-bit halves by 31-bit
constants).  Block ids must be ≥ 0.

State of all replicas' caches, one region of slots and one of hash table per
replica (:class:`PrefixCacheState`):

* ``pc_r[r]`` — the replica's columns ``PC_*`` below;
* ``pc_s[s]`` — slot ``s``'s columns ``PS_*``: block id (−1: empty), its
  tokens, pins, and the links of the free-block LRU list (and of the list of
  empty slots, through ``PS_NEXT``);
* ``tab`` — open addressing with linear probing, each entry a slot or −1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.jit import njit

# Columns of PrefixCacheState.pc_r (one row per replica).
(PC_SLOT_OFF, PC_SLOTS, PC_TAB_OFF, PC_TAB_MASK, PC_EMPTY, PC_LRU_HEAD, PC_LRU_TAIL,
 PC_FREE_TOKENS, PC_RESIDENT_TOKENS, PC_RESIDENT, PC_EVICTIONS) = range(11)
N_PC = 11
# Columns of PrefixCacheState.slots (one row per slot).
PS_KEY, PS_TOK, PS_REF, PS_PREV, PS_NEXT = range(5)
N_PS = 5


@dataclass
class PrefixCacheState:
    """The arrays of every replica's prefix cache (see the module's docstring)."""

    pc_r: np.ndarray  # (replicas, N_PC) i8
    slots: np.ndarray  # (slots, N_PS) i8
    tab: np.ndarray  # i8 per table entry

    @classmethod
    def empty(cls) -> PrefixCacheState:
        return cls(np.zeros((0, N_PC), np.int64), np.zeros((0, N_PS), np.int64),
                   np.zeros(0, np.int64))

    def args(self) -> tuple[np.ndarray, ...]:
        return self.pc_r, self.slots, self.tab

    def block_ids(self) -> np.ndarray:
        """The block id in each slot (−1: empty), a view."""
        view: np.ndarray = self.slots[:, PS_KEY]
        return view

    def free_blocks(self, r: int) -> list[int]:
        """Replica ``r``'s free blocks, from least to most recently used."""
        out, s = [], int(self.pc_r[r, PC_LRU_HEAD])
        while s >= 0:
            out.append(int(self.slots[s, PS_KEY]))
            s = int(self.slots[s, PS_NEXT])
        return out

    def add_replica(self, r: int, slots: int) -> None:
        """Give replica ``r`` an empty cache of ``slots`` blocks (its regions appended).

        ``slots`` and ``tab`` are views of buffers that double when full, so a
        fleet of n replicas costs O(n) copying, not O(n²).
        """
        if r >= len(self.pc_r):
            grown = np.zeros((max(8, 2 * len(self.pc_r), r + 1), N_PC), np.int64)
            grown[: len(self.pc_r)] = self.pc_r
            self.pc_r = grown
        slots = max(int(slots), 1)
        size = 1
        while size < 2 * slots:
            size *= 2
        slot_off, tab_off = len(self.slots), len(self.tab)
        self.slots = _extend(self.slots, slots)
        self.tab = _extend(self.tab, size)
        self.slots[slot_off:] = 0
        self.slots[slot_off:, PS_KEY] = -1
        self.tab[tab_off:] = -1
        row = self.pc_r[r]
        row[:] = 0
        row[PC_SLOT_OFF], row[PC_SLOTS] = slot_off, slots
        row[PC_TAB_OFF], row[PC_TAB_MASK] = tab_off, size - 1
        clear(r, *self.args())


def _extend(view: np.ndarray, rows: int) -> np.ndarray:
    """``view`` (the first rows of its buffer) with ``rows`` more rows, uninitialised: the
    same buffer while it has room, else one twice as large with ``view`` copied in."""
    n = len(view)
    base = view.base
    if (not isinstance(base, np.ndarray) or base.dtype != view.dtype
            or base.shape[1:] != view.shape[1:]
            or base.ctypes.data != view.ctypes.data):  # not the first rows of a buffer
        base = view
    if n + rows > len(base):
        base = np.empty((max(2 * len(base), n + rows), *view.shape[1:]), view.dtype)
        base[:n] = view
    out: np.ndarray = base[: n + rows]
    return out


# --------------------------------------------------------------------------- hashing


@njit(cache=True)
def _hash(key: int) -> int:
    """A non-negative mix of ``key`` ≥ 0, without overflow in int64."""
    lo = (key & 0xFFFFFFFF) * 0x5BD1E995
    hi = (key >> 32) * 0x27D4EB2F
    h = lo ^ hi
    return h ^ (h >> 29)


@njit(cache=True)
def _find(r: int, block: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> int:
    """The slot holding ``block`` in replica ``r``'s cache, or −1."""
    off = pc_r[r, PC_TAB_OFF]
    mask = pc_r[r, PC_TAB_MASK]
    i = _hash(block) & mask
    while True:
        s = tab[off + i]
        if s < 0:
            return -1
        if pc_s[s, PS_KEY] == block:
            return s
        i = (i + 1) & mask


@njit(cache=True)
def _tab_add(r: int, s: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> None:
    off = pc_r[r, PC_TAB_OFF]
    mask = pc_r[r, PC_TAB_MASK]
    i = _hash(pc_s[s, PS_KEY]) & mask
    while tab[off + i] >= 0:
        i = (i + 1) & mask
    tab[off + i] = s


@njit(cache=True)
def _tab_remove(r: int, s: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> None:
    """Remove slot ``s`` from the table, shifting later entries of its run back."""
    off = pc_r[r, PC_TAB_OFF]
    mask = pc_r[r, PC_TAB_MASK]
    i = _hash(pc_s[s, PS_KEY]) & mask
    while tab[off + i] != s:
        i = (i + 1) & mask
    tab[off + i] = -1
    j = i
    while True:
        j = (j + 1) & mask
        t = tab[off + j]
        if t < 0:
            return
        home = _hash(pc_s[t, PS_KEY]) & mask
        # t stays if its home lies cyclically in (i, j]
        stays = i < home <= j if i <= j else home > i or home <= j
        if not stays:
            tab[off + i] = t
            tab[off + j] = -1
            i = j


# --------------------------------------------------------------------------- the LRU list


@njit(cache=True)
def _unlink(r: int, s: int, pc_r: np.ndarray, pc_s: np.ndarray) -> None:
    p = pc_s[s, PS_PREV]
    n = pc_s[s, PS_NEXT]
    if p >= 0:
        pc_s[p, PS_NEXT] = n
    else:
        pc_r[r, PC_LRU_HEAD] = n
    if n >= 0:
        pc_s[n, PS_PREV] = p
    else:
        pc_r[r, PC_LRU_TAIL] = p


@njit(cache=True)
def _append(r: int, s: int, pc_r: np.ndarray, pc_s: np.ndarray) -> None:
    """Put slot ``s`` at the most recently used end of the free list."""
    tail = pc_r[r, PC_LRU_TAIL]
    pc_s[s, PS_PREV] = tail
    pc_s[s, PS_NEXT] = -1
    if tail >= 0:
        pc_s[tail, PS_NEXT] = s
    else:
        pc_r[r, PC_LRU_HEAD] = s
    pc_r[r, PC_LRU_TAIL] = s


@njit(cache=True)
def _evict_head(r: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> bool:
    """Evict the least recently used free block; False if there is none."""
    s = pc_r[r, PC_LRU_HEAD]
    if s < 0:
        return False
    _unlink(r, s, pc_r, pc_s)
    _tab_remove(r, s, pc_r, pc_s, tab)
    pc_r[r, PC_FREE_TOKENS] -= pc_s[s, PS_TOK]
    pc_r[r, PC_RESIDENT_TOKENS] -= pc_s[s, PS_TOK]
    pc_r[r, PC_RESIDENT] -= 1
    pc_r[r, PC_EVICTIONS] += 1
    pc_s[s, PS_KEY] = -1
    pc_s[s, PS_TOK] = 0
    pc_s[s, PS_NEXT] = pc_r[r, PC_EMPTY]
    pc_r[r, PC_EMPTY] = s
    return True


# --------------------------------------------------------------------------- the interface


@njit(cache=True)
def block_tokens(j: int, prompt: int, block: int) -> int:
    """Tokens of block ``j`` of a ``prompt``-token prompt cut in blocks of ``block``."""
    rest = prompt - j * block
    return block if rest > block else rest


@njit(cache=True)
def match(r: int, ids: np.ndarray, off: int, n: int, pc_r: np.ndarray, pc_s: np.ndarray,
          tab: np.ndarray) -> int:
    """How many leading blocks of the chain ``ids[off : off + n]`` replica ``r`` holds."""
    k = 0
    while k < n and _find(r, ids[off + k], pc_r, pc_s, tab) >= 0:
        k += 1
    return k


@njit(cache=True)
def _pin(r: int, s: int, pc_r: np.ndarray, pc_s: np.ndarray) -> None:
    if pc_s[s, PS_REF] == 0:
        _unlink(r, s, pc_r, pc_s)
        pc_r[r, PC_FREE_TOKENS] -= pc_s[s, PS_TOK]
    pc_s[s, PS_REF] += 1


@njit(cache=True)
def acquire(r: int, ids: np.ndarray, off: int, k: int, pc_r: np.ndarray, pc_s: np.ndarray,
            tab: np.ndarray) -> None:
    """Pin the first ``k`` blocks of a chain (all resident: ``k`` ≤ :func:`match`)."""
    for j in range(k):
        _pin(r, _find(r, ids[off + j], pc_r, pc_s, tab), pc_r, pc_s)


@njit(cache=True)
def insert(r: int, ids: np.ndarray, off: int, n: int, start: int, prompt: int, block: int,
           pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> int:
    """A prefill has computed blocks ``start .. n−1`` of a chain: cache and pin them.

    Blocks already resident (computed meanwhile by another request) are
    pinned; the others take an empty slot, or the slot of the least recently
    used free block.  Their memory was the request's own, so nothing else is
    evicted.  Returns how many leading blocks the request now pins: ``n``,
    or fewer if every slot holds a pinned block.
    """
    for j in range(start, n):
        b = ids[off + j]
        s = _find(r, b, pc_r, pc_s, tab)
        if s >= 0:
            _pin(r, s, pc_r, pc_s)
            continue
        if pc_r[r, PC_EMPTY] < 0 and not _evict_head(r, pc_r, pc_s, tab):
            return j
        s = pc_r[r, PC_EMPTY]
        pc_r[r, PC_EMPTY] = pc_s[s, PS_NEXT]
        pc_s[s, PS_KEY] = b
        t = block_tokens(j, prompt, block)
        pc_s[s, PS_TOK] = t
        pc_s[s, PS_REF] = 1
        pc_s[s, PS_PREV] = -1
        pc_s[s, PS_NEXT] = -1
        _tab_add(r, s, pc_r, pc_s, tab)
        pc_r[r, PC_RESIDENT_TOKENS] += t
        pc_r[r, PC_RESIDENT] += 1
    return n


@njit(cache=True)
def release(r: int, ids: np.ndarray, off: int, k: int, pc_r: np.ndarray, pc_s: np.ndarray,
            tab: np.ndarray) -> None:
    """Unpin the first ``k`` blocks of a chain, last block first."""
    for j in range(k - 1, -1, -1):
        s = _find(r, ids[off + j], pc_r, pc_s, tab)
        pc_s[s, PS_REF] -= 1
        if pc_s[s, PS_REF] == 0:
            _append(r, s, pc_r, pc_s)
            pc_r[r, PC_FREE_TOKENS] += pc_s[s, PS_TOK]


@njit(cache=True)
def fit(r: int, budget: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> None:
    """Evict least recently used free blocks until they hold at most ``budget`` tokens."""
    while pc_r[r, PC_FREE_TOKENS] > budget:
        if not _evict_head(r, pc_r, pc_s, tab):
            return


@njit(cache=True)
def clear(r: int, pc_r: np.ndarray, pc_s: np.ndarray, tab: np.ndarray) -> None:
    """Empty replica ``r``'s cache (the replica stopped or was lost)."""
    off = pc_r[r, PC_SLOT_OFF]
    slots = pc_r[r, PC_SLOTS]
    for i in range(slots):
        s = off + i
        pc_s[s, PS_KEY] = -1
        pc_s[s, PS_TOK] = 0
        pc_s[s, PS_REF] = 0
        pc_s[s, PS_PREV] = -1
        pc_s[s, PS_NEXT] = s + 1 if i + 1 < slots else -1
    t0 = pc_r[r, PC_TAB_OFF]
    for i in range(pc_r[r, PC_TAB_MASK] + 1):
        tab[t0 + i] = -1
    pc_r[r, PC_EMPTY] = off if slots > 0 else -1
    pc_r[r, PC_LRU_HEAD] = -1
    pc_r[r, PC_LRU_TAIL] = -1
    pc_r[r, PC_FREE_TOKENS] = 0
    pc_r[r, PC_RESIDENT_TOKENS] = 0
    pc_r[r, PC_RESIDENT] = 0


@njit(cache=True)
def hit_tokens(blocks: int, prompt: int, block: int) -> int:
    """Prompt tokens a hit of ``blocks`` leading blocks saves: at least one token is always
    computed (the last one gives the first output token), as in vLLM."""
    cached = blocks * block
    if cached > prompt - 1:
        cached = prompt - 1
    return cached
