"""Analytic pruning: what the throughput model says before anything is simulated.

Two necessary conditions, from :class:`~sim.perf.Shape`:

* **idle latency** — the 99th-percentile prompt alone on an idle replica
  reaches its first token after its prefill iterations
  (:meth:`Shape.iteration_time` per chunk); if that is above the TTFT
  objective, more than 1 % of requests miss it at any replica count.  Likewise
  one decode iteration at batch 1 against the TPOT objective.
* **capacity** — a replica produces at most :meth:`Shape.max_throughput`
  output tokens/s for the workload's mean lengths; the traffic's mean output
  rate over that is the fewest replicas that are not overloaded.  The bound is
  loosened by :data:`CAPACITY_SLACK` (the closed-loop rate is the model's
  estimate, not a proof), and a shape whose bound exceeds ``replicas.max`` is
  dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.engine.rng import seed_sequence
from sim.errors import InputError
from sim.perf import Shape, build_shape
from sim.scenario.loader import LoadedScenario
from sim.scenario.schema import DeploymentSpec
from sim.workload import generate

CAPACITY_SLACK = 0.10


@dataclass(frozen=True)
class Traffic:
    """What the bounds need of a deployment's traffic, measured on its generated requests."""

    rps: float
    mean_input: float
    mean_output: float
    p99_input: float

    @property
    def output_rate(self) -> float:
        """Output tokens/s the fleet must produce on average."""
        return self.rps * self.mean_output


def measure_traffic(loaded: LoadedScenario, dep: DeploymentSpec) -> Traffic:
    """The request rate and token lengths of ``dep``'s traffic over the scenario's horizon."""
    spec = loaded.spec
    work = generate(dep.traffic, spec.duration,
                    seed_sequence(spec.seed, "deployment", dep.name, "traffic"),
                    base_dir=loaded.base_dir)
    if len(work) == 0:
        raise InputError("no request arrives in the scenario's duration: nothing to size",
                         where=f"deployments[{dep.name}].traffic")
    return Traffic(
        rps=len(work) / spec.duration,
        mean_input=float(np.mean(work.input_tokens)),
        mean_output=float(np.mean(work.output_tokens)),
        p99_input=float(np.percentile(work.input_tokens, 99)),
    )


def idle_ttft(shape: Shape, prompt_tokens: float) -> float:
    """Seconds from the start of prefill to the first token of one prompt on an idle replica."""
    left, done, total = math.ceil(prompt_tokens), 0, 0.0
    chunk = shape.prefill_chunk
    while left > 0:
        n = min(chunk, left)
        total += shape.iteration_time(0, 0.0, n, float(n * done))
        done += n
        left -= n
    return total


@dataclass(frozen=True)
class Bound:
    """A shape's analytic verdict: the fewest replicas worth simulating, or why none."""

    shape: Shape | None
    min_replicas: int  # fewest replicas that are not overloaded (0 if dropped)
    per_replica_tokens_s: float
    idle_ttft_s: float | None
    reason: str | None  # None: keep the shape

    def as_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape.name if self.shape is not None else None,
            "usd_per_replica_hour": self.shape.usd_per_hour if self.shape is not None else None,
            "min_replicas": self.min_replicas,
            "per_replica_output_tokens_s": self.per_replica_tokens_s,
            "idle_ttft_p99_prompt_s": self.idle_ttft_s,
            "pruned": self.reason,
        }


def bound(
    dep: DeploymentSpec,
    shape_spec: Any,
    traffic: Traffic,
    slo: dict[str, float | None],
    max_replicas: int,
    base_dir: Any = None,
) -> Bound:
    """The analytic verdict on one shape for ``dep``'s traffic under ``slo``."""
    try:
        shape = build_shape(dep.model, shape_spec, max_concurrency=dep.max_concurrency,
                            base_dir=base_dir)
    except InputError as err:
        return Bound(None, 0, 0.0, None, f"does not fit: {err.reason}")
    ttft = idle_ttft(shape, traffic.p99_input)
    limit = slo.get("ttft_p99")
    if limit is not None and ttft > limit:
        return Bound(shape, 0, 0.0, ttft,
                     f"even idle, the 99th-percentile prompt ({traffic.p99_input:,.0f} tokens) "
                     f"takes {ttft:.3g} s to its first token, above the {limit:g} s objective")
    tpot_limit = slo.get("tpot_p99")
    if tpot_limit is not None:
        step = shape.decode_step_time(1, traffic.mean_input + traffic.mean_output / 2)
        if step > tpot_limit:
            return Bound(shape, 0, 0.0, ttft,
                         f"even alone, a request decodes one token per {step * 1e3:.3g} ms, "
                         f"above the {tpot_limit * 1e3:g} ms TPOT objective")
    per = shape.max_throughput(traffic.mean_input, traffic.mean_output)
    if per <= 0:
        return Bound(shape, 0, 0.0, ttft, "a request of the mean size does not fit in its KV cache")
    need = max(1, math.ceil(traffic.output_rate / (per * (1.0 + CAPACITY_SLACK))))
    if need > max_replicas:
        return Bound(shape, need, per, ttft,
                     f"needs at least {need} replicas to carry {traffic.output_rate:,.0f} output "
                     f"tokens/s ({per:,.0f} per replica at best), above replicas.max = "
                     f"{max_replicas}")
    return Bound(shape, need, per, ttft, None)
