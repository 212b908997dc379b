"""The traffic fingerprint: a hash of the requests a deployment's workload generated.

The hash covers, in arrival order, every request's arrival time (float64) and
input and output token counts (int64), little-endian, each column through its
own BLAKE2b so that the digest does not depend on how the arrays were cut into
windows.  Two runs with equal fingerprints simulated the same requests; a
changed fingerprint for the same scenario and seed means the code now generates
different traffic (a new seeding rule, a fixed trace loader), and results made
before cannot be paired with results made after.
"""

from __future__ import annotations

import hashlib

import numpy as np

PREFIX = "b2-"  # the format: BLAKE2b-128 of the three column digests and the count


class TrafficFingerprint:
    """Fed window by window (:meth:`add`); :meth:`hexdigest` at any time."""

    def __init__(self) -> None:
        self._cols = [hashlib.blake2b(digest_size=16) for _ in range(3)]
        self.count = 0

    def add(self, arrival_s: np.ndarray, input_tokens: np.ndarray,
            output_tokens: np.ndarray) -> None:
        for h, column, dtype in zip(self._cols, (arrival_s, input_tokens, output_tokens),
                                    ("<f8", "<i8", "<i8"), strict=True):
            h.update(np.ascontiguousarray(column, dtype=dtype).tobytes())
        self.count += len(arrival_s)

    def hexdigest(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for col in self._cols:
            h.update(col.digest())
        h.update(self.count.to_bytes(8, "little"))
        return PREFIX + h.hexdigest()


def fingerprint(arrival_s: np.ndarray, input_tokens: np.ndarray,
                output_tokens: np.ndarray) -> str:
    """The fingerprint of one whole set of requests."""
    fp = TrafficFingerprint()
    fp.add(arrival_s, input_tokens, output_tokens)
    return fp.hexdigest()
