"""The workload: one deployment's requests as three aligned arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class Workload:
    """Requests in arrival order: ``arrival_s[i]``, ``input_tokens[i]``, ``output_tokens[i]``.

    ``arrival_s`` is float64 seconds, ascending; token counts are int64 >= 1.
    The arrays are read-only, so a workload can be shared by runs.
    """

    arrival_s: NDArray[np.float64]
    input_tokens: NDArray[np.int64]
    output_tokens: NDArray[np.int64]

    def __post_init__(self) -> None:
        arrays = {
            "arrival_s": np.ascontiguousarray(self.arrival_s, dtype=np.float64),
            "input_tokens": np.ascontiguousarray(self.input_tokens, dtype=np.int64),
            "output_tokens": np.ascontiguousarray(self.output_tokens, dtype=np.int64),
        }
        lengths = {name: a.shape for name, a in arrays.items()}
        if len(set(lengths.values())) != 1 or arrays["arrival_s"].ndim != 1:
            raise ValueError(f"workload arrays must be 1-D and of one length, got {lengths}")
        for name, a in arrays.items():
            if a is getattr(self, name):
                a = a.view()  # never freeze the caller's own array
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    @classmethod
    def empty(cls) -> Workload:
        """A workload with no requests."""
        return cls(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
