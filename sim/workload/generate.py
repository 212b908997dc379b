"""Generate a deployment's whole workload up front, before the engine runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.workload.arrivals import check_replay, rate_plan, replay, sample_poisson
from sim.workload.base import Workload
from sim.workload.lengths import Column, length_distribution
from sim.workload.spec import EmpiricalLength, LengthSpec, TraceArrivals, TrafficSpec
from sim.workload.traces import load_trace, resolve_path, token_column

STREAMS = ("arrivals", "input_tokens", "output_tokens")


def child_seeds(seed: np.random.SeedSequence) -> dict[str, np.random.SeedSequence]:
    """Independent seed sequences for arrivals, input lengths and output lengths.

    They are ``seed``'s children ``0, 1, 2`` (spawn keys ``seed.spawn_key +
    (i,)``), made without :meth:`~numpy.random.SeedSequence.spawn`, so ``seed``
    is not changed and the same ``seed`` always gives the same streams.  Pass
    a seed sequence dedicated to this deployment's workload.
    """
    return {
        name: np.random.SeedSequence(
            entropy=seed.entropy, spawn_key=(*seed.spawn_key, i), pool_size=seed.pool_size
        )
        for i, name in enumerate(STREAMS)
    }


def generate(
    traffic: TrafficSpec,
    duration_s: float,
    seed: np.random.SeedSequence,
    base_dir: Path | None = None,
) -> Workload:
    """All requests of ``traffic`` arriving in ``[0, duration_s)``.

    Arrival times, input lengths and output lengths come from three
    independent streams (:func:`child_seeds`), so changing one distribution
    leaves the others' draws alone.  Trace paths are resolved against
    ``base_dir`` (the scenario file's folder).  Bad trace files raise
    :class:`~sim.errors.InputError`.
    """
    if not math.isfinite(duration_s) or duration_s < 0:
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
    seeds = child_seeds(seed)
    rng = np.random.default_rng(seeds["arrivals"])
    arrivals = traffic.arrivals
    recorded: dict[Column, np.ndarray] = {}
    if isinstance(arrivals, TraceArrivals):
        trace = load_trace(arrivals.path, base_dir)
        check_replay(trace, arrivals, str(resolve_path(arrivals.path, base_dir)))
        if duration_s > 0:
            times, rows = replay(trace, arrivals, duration_s, rng)
        else:
            times, rows = np.empty(0), np.empty(0, np.int64)
        recorded = {c: token_column(trace, c)[rows] for c in ("input", "output")}
    elif duration_s > 0:
        times = sample_poisson(rate_plan(arrivals, duration_s, rng), rng)
    else:
        times = np.empty(0)

    tokens: dict[Column, np.ndarray] = {}
    fields: tuple[tuple[Column, LengthSpec | None], ...] = (
        ("input", traffic.input_tokens),
        ("output", traffic.output_tokens),
    )
    for column, spec in fields:
        if spec is None:
            tokens[column] = recorded[column]
        else:
            dist = length_distribution(spec, default_column=column, base_dir=base_dir)
            stream = np.random.default_rng(seeds[f"{column}_tokens"])
            tokens[column] = dist.sample(stream, times.size)
    return Workload(times, tokens["input"], tokens["output"])


def validate_traffic(traffic: TrafficSpec, base_dir: Path | None = None) -> None:
    """Open and check every trace ``traffic`` refers to (for ``capsim validate``).

    Raises :class:`~sim.errors.InputError` naming the trace file and line.
    """
    arrivals = traffic.arrivals
    if isinstance(arrivals, TraceArrivals):
        trace = load_trace(arrivals.path, base_dir)
        check_replay(trace, arrivals, str(resolve_path(arrivals.path, base_dir)))
    lengths: list[LengthSpec | None] = [traffic.input_tokens, traffic.output_tokens]
    for spec in lengths:
        if isinstance(spec, EmpiricalLength):
            load_trace(spec.path, base_dir)
