"""The engine's interfaces: what it needs of a shape, what the control plane drives.

``sim.fleet.control`` depends on :class:`RequestPath` only (not on the engine's
modules), so the engine imports the control plane and never the reverse.
Both engines (``fast`` and ``exact``) sit behind the same request path.
"""

from __future__ import annotations

from typing import Any, Protocol

import simpy


class ServiceShape(Protocol):
    """What the engine needs of a shape, as ``sim.perf.Shape`` provides it."""

    gpus: int
    max_concurrency: int
    kv_capacity_tokens: int
    prefill_chunk: int

    def prefill_seconds(self, input_tokens: Any) -> Any:
        """Seconds of exclusive prefill for each prompt length (array in, array out)."""

    def step_table(self, max_batch: int) -> tuple[Any, float, Any, float]:
        """``(M, m1, C, c1)``: step(b, kv) = max(M[b] + kv·m1, C[b] + kv·c1)."""

    def iteration_terms(self, max_batch: int, max_tokens: int) -> dict[str, Any]:
        """Tables from which ``iteration_time`` is computed (see ``sim.perf.Shape``)."""


class RequestPath(Protocol):
    """The request path as the control plane drives it (``sim.engine.core.Simulation``)."""

    @property
    def env(self) -> simpy.Environment:
        """The run's clock (SimPy's environment)."""

    def ready_replica(self, dep: int, datacenter: str) -> int:
        """A replica of ``dep`` starts serving now; its index in the request path."""

    def drain_replica(self, r: int) -> bool:
        """Stop routing to ``r``; True if it is already empty (stopped now)."""

    def crash_replica(self, r: int) -> int:
        """Lose ``r`` now; its requests reach the router again; how many there were."""

    def set_notify_cold(self, dep: int, on: bool) -> None:
        """Ask to be told (``on_cold``) when a request meets no ready replica."""

    def last_attempt(self, dep: int) -> float:
        """Time of ``dep``'s latest client attempt."""

    def cumulative(self, dep: int, t: float) -> tuple[float, ...]:
        """(t, attempts, ∫ requests queued or in service dt, prompt tokens, output tokens,
        first attempts)."""

    def mean_sizes(self, dep: int) -> tuple[float, float] | None:
        """(prompt, output) tokens per request served so far; None before the first finishes."""

    def capacity_per_replica(self, dep: int) -> float:
        """Requests one replica holds at once."""
