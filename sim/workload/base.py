"""The workload: one deployment's requests as aligned arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Tokens per prompt block a chain of block ids refers to, unless the workload says
# otherwise (the block size of the public traces that carry ``hash_ids``).
DEFAULT_BLOCK_TOKENS = 512


def _frozen(a: NDArray[np.int64] | None, mine: object) -> NDArray[np.int64] | None:
    if a is None:
        return None
    out = np.ascontiguousarray(a, dtype=np.int64)
    if out is mine:
        out = out.view()  # never freeze the caller's own array
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests in arrival order: ``arrival_s[i]``, ``input_tokens[i]``, ``output_tokens[i]``.

    ``arrival_s`` is float64 seconds, ascending; token counts are int64 >= 1.
    Optionally, prefix information:

    * ``n_blocks[i]`` blocks of ``block_tokens`` tokens cover the start of
      request ``i``'s prompt; their ids are ``block_ids[off[i] : off[i] +
      n_blocks[i]]`` (``off`` = :attr:`block_offsets`), one flat array for
      all requests.  An id names the prompt's whole prefix up to the end of
      its block: two requests share their first ``k`` blocks exactly when
      their first ``k`` ids are equal;
    * ``session[i]``: the conversation the request belongs to (−1: none).

    The arrays are read-only, so a workload can be shared by runs.
    """

    arrival_s: NDArray[np.float64]
    input_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]
    n_blocks: NDArray[np.int64] | None = None
    block_ids: NDArray[np.int64] | None = None
    session: NDArray[np.int64] | None = None
    block_tokens: int = DEFAULT_BLOCK_TOKENS

    def __post_init__(self) -> None:
        arrays = {
            "arrival_s": np.ascontiguousarray(self.arrival_s, dtype=np.float64),
            "input_tokens": np.ascontiguousarray(self.input_tokens, dtype=np.int64),
            "output_tokens": np.ascontiguousarray(self.output_tokens, dtype=np.int64),
        }
        lengths = {name: a.shape for name, a in arrays.items()}
        for name in ("n_blocks", "session"):
            a = getattr(self, name)
            if a is not None:
                lengths[name] = np.shape(a)
        if len(set(lengths.values())) != 1 or arrays["arrival_s"].ndim != 1:
            raise ValueError(f"workload arrays must be 1-D and of one length, got {lengths}")
        if (self.n_blocks is None) != (self.block_ids is None):
            raise ValueError("n_blocks and block_ids go together")
        if (self.n_blocks is not None and self.block_ids is not None
                and int(np.sum(self.n_blocks)) != np.size(self.block_ids)):
            raise ValueError("block_ids must hold sum(n_blocks) ids")
        for name, a in arrays.items():
            if a is getattr(self, name):
                a = a.view()  # never freeze the caller's own array
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        for name in ("n_blocks", "block_ids", "session"):
            object.__setattr__(self, name, _frozen(getattr(self, name), getattr(self, name)))

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    @property
    def has_prefixes(self) -> bool:
        """True if the requests carry block ids."""
        return self.n_blocks is not None

    @property
    def block_offsets(self) -> NDArray[np.int64]:
        """``off[i]``: where request ``i``'s ids start in ``block_ids`` (length n + 1)."""
        counts = self.n_blocks if self.n_blocks is not None else np.zeros(len(self), np.int64)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    @classmethod
    def empty(cls) -> Workload:
        """A workload with no requests."""
        return cls(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))

    def take(self, rows: NDArray[np.int64]) -> Workload:
        """The requests ``rows`` (in that order), with their block ids and sessions."""
        n_blocks = block_ids = None
        if self.n_blocks is not None and self.block_ids is not None:
            n_blocks = self.n_blocks[rows]
            off = self.block_offsets[rows]
            block_ids = self.block_ids[index_ranges(off, n_blocks)]
        return Workload(
            self.arrival_s[rows], self.input_tokens[rows], self.output_tokens[rows],
            n_blocks, block_ids, None if self.session is None else self.session[rows],
            self.block_tokens,
        )

    def slice(self, a: int, b: int) -> Workload:
        """Requests ``a .. b−1``."""
        n_blocks = block_ids = None
        if self.n_blocks is not None and self.block_ids is not None:
            off = self.block_offsets
            n_blocks = self.n_blocks[a:b]
            block_ids = self.block_ids[off[a] : off[b]]
        return Workload(
            self.arrival_s[a:b], self.input_tokens[a:b], self.output_tokens[a:b],
            n_blocks, block_ids, None if self.session is None else self.session[a:b],
            self.block_tokens,
        )

    @classmethod
    def concat(cls, parts: Sequence[Workload]) -> Workload:
        """The requests of ``parts`` one after the other (prefix information kept if all
        parts carry it)."""
        full = [p for p in parts if len(p)]
        if len(full) == 1:
            return full[0]
        if not full:
            return parts[0] if parts else cls.empty()
        prefixes = all(p.has_prefixes for p in full)
        sessions = all(p.session is not None for p in full)

        def cat(name: str) -> NDArray[np.int64]:
            return np.concatenate([getattr(p, name) for p in full])

        return cls(
            np.concatenate([p.arrival_s for p in full]), cat("input_tokens"),
            cat("output_tokens"),
            cat("n_blocks") if prefixes else None, cat("block_ids") if prefixes else None,
            cat("session") if sessions else None, full[0].block_tokens,
        )


def index_ranges(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])``, vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    shift = np.repeat(starts - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + shift
