"""A deployment at run time: its router queue, its ready replicas, its monitors."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sim.fleet.replica import Replica, ServiceModel


@dataclass(eq=False)
class DeploymentState:
    """Mutable state of one deployment during a run (the spec stays separate)."""

    index: int
    name: str
    shape: ServiceModel
    max_queue: int | None
    queue_on_cold_start: bool
    replicas: list[Replica] = field(default_factory=list)
    queue: deque[int] = field(default_factory=deque)
    # Level monitor of the queue length: area under the curve since t = 0.
    queue_area: float = 0.0
    queue_t: float = 0.0
    # Counters of responses by kind (every attempt counts).
    http_503: int = 0
    http_429: int = 0
    first_arrivals: int = 0
    completions: int = 0
    # Replica-time integrals, updated when replicas change: ready replica-seconds.
    ready_area: float = 0.0
    ready_t: float = 0.0
    max_ready: int = 0

    def touch_queue(self, t: float) -> None:
        """Account the queue length up to ``t`` before it changes."""
        self.queue_area += len(self.queue) * (t - self.queue_t)
        self.queue_t = t

    def touch_ready(self, t: float) -> None:
        """Account ready replicas up to ``t`` before their number changes."""
        self.ready_area += len(self.replicas) * (t - self.ready_t)
        self.ready_t = t

    def add_replica(self, replica: Replica, t: float) -> None:
        self.touch_ready(t)
        replica.last_t = t
        self.replicas.append(replica)
        self.max_ready = max(self.max_ready, len(self.replicas))

    def pick_replica(self, tokens: int) -> Replica | None:
        """Least-loaded ready replica that can admit a request of ``tokens`` now.

        Ties go to the replica created first, so routing is deterministic.
        """
        best: Replica | None = None
        best_load = 1 << 62
        for rep in self.replicas:
            if rep.n_active < best_load and rep.fits(tokens):
                best, best_load = rep, rep.n_active
                if best_load == 0:
                    break
        return best

    def busy_time(self, t: float) -> float:
        """Replica-seconds with at least one request in service, up to ``t``."""
        total = 0.0
        for rep in self.replicas:
            total += rep.busy_time
            if rep.n_active:
                total += t - rep.busy_since
        return total
