"""Workloads: arrival processes, token lengths and trace files, as arrays.

A deployment's requests are generated before the engine runs, so every policy
sees the same requests::

    from sim.workload import TrafficSpec, generate
    traffic = TrafficSpec.model_validate({
        "arrivals": {"kind": "poisson", "rps": 2},
        "input_tokens": {"kind": "lognormal", "median": 1000, "p90": 3000},
        "output_tokens": {"kind": "exponential", "mean": 200},
    })
    w = generate(traffic, duration_s=3600, seed=np.random.SeedSequence(7))
    w.arrival_s, w.input_tokens, w.output_tokens

Definitions of every kind: ``docs/workload.md``.
"""

from sim.workload.base import Workload
from sim.workload.generate import child_seeds, generate, validate_traffic
from sim.workload.lengths import LengthDistribution, length_distribution
from sim.workload.prefixes import reusable_tokens
from sim.workload.spec import (
    MAX_TOKENS,
    ArrivalsSpec,
    BurstArrivals,
    DiurnalArrivals,
    EmpiricalLength,
    ExponentialLength,
    FixedLength,
    LengthSpec,
    LognormalLength,
    PoissonArrivals,
    RampArrivals,
    Spike,
    SpikesArrivals,
    TraceArrivals,
    TrafficSpec,
)
from sim.workload.traces import read_trace, write_trace

__all__ = [
    "MAX_TOKENS",
    "ArrivalsSpec",
    "BurstArrivals",
    "DiurnalArrivals",
    "EmpiricalLength",
    "ExponentialLength",
    "FixedLength",
    "LengthDistribution",
    "LengthSpec",
    "LognormalLength",
    "PoissonArrivals",
    "RampArrivals",
    "Spike",
    "SpikesArrivals",
    "TraceArrivals",
    "TrafficSpec",
    "Workload",
    "child_seeds",
    "generate",
    "length_distribution",
    "read_trace",
    "reusable_tokens",
    "validate_traffic",
    "write_trace",
]
