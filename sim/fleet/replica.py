"""A replica serving requests by continuous batching, simulated request by request.

The batch is a processor-sharing system whose rates depend on its state, so
the replica needs an event only when a request arrives, finishes its prefill or
finishes decoding — never one per decode iteration.  Between two such events
the rates are constant and progress is advanced exactly.

Service model (the same one ``sim.perf.Shape.throughput`` assumes):

* Admitted requests are prefilled first come, first served: the head of the
  prefill queue receives the prefill capacity.  Its first token is produced
  when its prefill ends; it then decodes ``output_tokens - 1`` more tokens.
* The ``n`` decoding requests each produce one token per decode iteration of
  ``shape.decode_step_time(n, kv_tokens)`` seconds, with ``kv_tokens`` the sum
  over admitted requests of ``input + output / 2`` (their mean context).
* When a prefill is pending and requests are decoding, every iteration also
  processes a chunk of ``shape.prefill_chunk`` prompt tokens (chunked prefill):
  the iteration lasts ``step + chunk / prefill_rate`` — the two costs add.
* Decoding requests advance together, so one virtual clock ``vtime`` (tokens
  produced per decoding request) and a heap of finishing ``vtime`` values hold
  the whole decode set: each event costs O(log n).
* Admission: at most ``max_concurrency`` requests, and the reserved KV cache
  ``sum(input + output)`` may not exceed ``kv_capacity_tokens`` (an empty
  replica always admits one request, so an oversized prompt is still served).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sim.fleet.deployment import DeploymentState

# A phase has finished when its remaining work would take at most this
# fraction of the clock's value: float rounding of event times leaves crumbs.
_TIME_EPS = 1e-11


class ServiceModel(Protocol):
    """What the engine needs of a shape (``sim.perf.Shape`` provides it)."""

    gpus: int
    max_concurrency: int
    kv_capacity_tokens: int
    prefill_chunk: int

    def prefill_rate(self) -> float: ...

    def decode_step_time(self, batch: int, kv_tokens: float) -> float: ...


class Replica:
    """Runtime state of one replica.  Requests are integer ids into the run's tables."""

    __slots__ = (
        "_chunk_time",
        "_step",
        "busy_since",
        "busy_time",
        "chunk",
        "datacenter",
        "decoding",
        "deployment",
        "due",
        "id",
        "kv_capacity",
        "kv_reserved",
        "kv_tokens",
        "last_t",
        "max_concurrency",
        "n_active",
        "prefill_left",
        "prefill_rate",
        "prefilling",
        "rate_decode",
        "rate_prefill",
        "version",
        "vtime",
    )

    def __init__(self, rid: int, deployment: DeploymentState, shape: ServiceModel, datacenter: str):
        self.id = rid
        self.deployment = deployment
        self.datacenter = datacenter
        self.max_concurrency = shape.max_concurrency
        self.kv_capacity = shape.kv_capacity_tokens
        self.prefill_rate = shape.prefill_rate()
        self.chunk = float(shape.prefill_chunk)
        self._chunk_time = self.chunk / self.prefill_rate
        self._step = shape.decode_step_time
        self.n_active = 0
        self.kv_reserved = 0
        self.kv_tokens = 0.0
        self.prefilling: deque[int] = deque()
        self.prefill_left = 0.0
        self.decoding: list[tuple[float, int]] = []
        self.vtime = 0.0
        self.rate_decode = 0.0
        self.rate_prefill = 0.0
        self.last_t = 0.0
        self.due = float("inf")
        self.version = 0
        self.busy_time = 0.0
        self.busy_since = 0.0

    # -- admission ---------------------------------------------------------
    def fits(self, tokens: int) -> bool:
        """Whether a request reserving ``tokens`` of KV cache can start now."""
        if self.n_active == 0:
            return True
        return (
            self.n_active < self.max_concurrency
            and self.kv_reserved + tokens <= self.kv_capacity
        )

    def admit(self, req: int, t: float, input_tokens: int, output_tokens: int) -> None:
        """Start serving ``req`` at time ``t`` (the caller has advanced the replica to ``t``)."""
        if self.n_active == 0:
            self.busy_since = t
        self.n_active += 1
        self.kv_reserved += input_tokens + output_tokens
        self.kv_tokens += input_tokens + 0.5 * output_tokens
        if not self.prefilling:
            self.prefill_left = float(input_tokens)
        self.prefilling.append(req)

    # -- time --------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Move progress forward to ``t`` at the current (constant) rates."""
        dt = t - self.last_t
        if dt > 0.0:
            if self.decoding:
                self.vtime += self.rate_decode * dt
            if self.prefilling:
                self.prefill_left -= self.rate_prefill * dt
        self.last_t = t

    def reschedule(self) -> float:
        """Recompute the rates for the current state; return the next completion time."""
        n_dec = len(self.decoding)
        due = float("inf")
        if n_dec:
            step = self._step(n_dec, self.kv_tokens)
            if self.prefilling:
                period = step + self._chunk_time
                self.rate_decode = 1.0 / period
                self.rate_prefill = self.chunk / period
            else:
                self.rate_decode = 1.0 / step
                self.rate_prefill = 0.0
            due = self.last_t + max(self.decoding[0][0] - self.vtime, 0.0) / self.rate_decode
        elif self.prefilling:
            self.rate_prefill = self.prefill_rate
            self.rate_decode = 0.0
        else:
            self.rate_prefill = self.rate_decode = 0.0
        if self.prefilling:
            due = min(due, self.last_t + max(self.prefill_left, 0.0) / self.rate_prefill)
        self.due = due
        return due

    # -- completions -------------------------------------------------------
    def pop_prefilled(self, next_input: list[int]) -> int | None:
        """The request whose prefill has finished at ``last_t``, if any.

        ``next_input`` maps request id to input tokens, to start the next
        prefill in the queue.
        """
        if not self.prefilling:
            return None
        if self.prefill_left > self.rate_prefill * _TIME_EPS * max(self.last_t, 1.0):
            return None
        req = self.prefilling.popleft()
        if self.prefilling:
            self.prefill_left = float(next_input[self.prefilling[0]])
        return req

    def start_decode(self, req: int, tokens: int) -> None:
        heapq.heappush(self.decoding, (self.vtime + tokens, req))

    def pop_decoded(self) -> int | None:
        """A request whose decode has finished at ``last_t``, if any."""
        if self.decoding:
            slack = self.rate_decode * _TIME_EPS * max(self.last_t, 1.0)
            if self.decoding[0][0] <= self.vtime + slack:
                return heapq.heappop(self.decoding)[1]
        return None

    def release(self, t: float, input_tokens: int, output_tokens: int) -> None:
        """Forget a finished request's reservations."""
        self.n_active -= 1
        self.kv_reserved -= input_tokens + output_tokens
        self.kv_tokens -= input_tokens + 0.5 * output_tokens
        if self.n_active == 0:
            self.kv_tokens = 0.0  # no drift from repeated float subtraction
            self.busy_time += t - self.busy_since
