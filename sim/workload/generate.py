"""Generate a deployment's workload before the engine needs it, one hourly window at a time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.workload.arrivals import (
    RatePlan,
    ReplayPlan,
    check_replay,
    rate_plan,
    restrict,
    sample_poisson,
)
from sim.workload.base import Workload
from sim.workload.fingerprint import TrafficFingerprint
from sim.workload.lengths import Column, LengthDistribution, length_distribution
from sim.workload.prefixes import draw_turns, session_workload
from sim.workload.spec import EmpiricalLength, LengthSpec, TraceArrivals, TrafficSpec
from sim.workload.traces import (
    load_trace,
    resolve_path,
    token_column,
    trace_stats,
    unit_warning,
)

STREAMS = ("arrivals", "input_tokens", "output_tokens", "sessions")


def child_seeds(seed: np.random.SeedSequence) -> dict[str, np.random.SeedSequence]:
    """Independent seed sequences for arrivals, input lengths, output lengths and the
    session model (turns, think times, system prompts).

    They are ``seed``'s children ``0, 1, 2, 3`` (spawn keys ``seed.spawn_key +
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


# Workloads are generated in windows of this many seconds, each from its own
# seed streams, so a window's requests never depend on how many windows a
# caller asks for at a time.
WINDOW_S = 3600.0


def _window_seed(seed: np.random.SeedSequence, window: int) -> np.random.SeedSequence:
    """Child ``window`` of ``seed`` (without consuming ``seed``)."""
    return np.random.SeedSequence(
        entropy=seed.entropy, spawn_key=(*seed.spawn_key, window), pool_size=seed.pool_size
    )


class WorkloadStream:
    """A deployment's workload, generated one fixed window of ``WINDOW_S`` at a time.

    Window ``k`` holds the requests arriving in ``[k·W, (k+1)·W)`` (cut at the
    end of the run), drawn from generators seeded by child ``k`` of each of
    the three streams of :func:`child_seeds`.  What a process carries from
    one window to the next is drawn once, up front, from the arrivals stream
    itself: the intensity (for ``burst``, the MMPP's whole state path, one
    entry per switch) and, for traces, the offsets of shifted copies.  So a
    window's requests are the same whether they are asked for one hour at a
    time or all at once, and memory holds only the windows being read.

    :meth:`take` returns the requests arriving in ``[t0, t1)``, for
    consecutive ranges starting at 0.
    """

    def __init__(self, traffic: TrafficSpec, duration_s: float, seed: np.random.SeedSequence,
                 base_dir: Path | None = None):
        if not math.isfinite(duration_s) or duration_s < 0:
            raise ValueError(f"duration_s must be finite and >= 0, got {duration_s!r}")
        self.duration = duration_s
        self.traffic = traffic
        self.seeds = child_seeds(seed)
        rng = np.random.default_rng(self.seeds["arrivals"])
        arrivals = traffic.arrivals
        self.trace: Workload | None = None
        self.plan: RatePlan | None = None
        if isinstance(arrivals, TraceArrivals):
            trace = load_trace(arrivals.path, base_dir)
            check_replay(trace, arrivals, str(resolve_path(arrivals.path, base_dir)))
            self.trace = trace
            self.replay = ReplayPlan(trace, arrivals, duration_s, rng)
        elif duration_s > 0:
            self.plan = rate_plan(arrivals, duration_s, rng)
        self.lengths: dict[Column, LengthDistribution | None] = {}
        fields: tuple[tuple[Column, LengthSpec | None], ...] = (
            ("input", traffic.input_tokens),
            ("output", traffic.output_tokens),
        )
        for column, spec in fields:
            self.lengths[column] = (
                None if spec is None
                else length_distribution(spec, default_column=column, base_dir=base_dir)
            )
        self.n_windows = math.ceil(duration_s / WINDOW_S) if duration_s > 0 else 0
        self._next_window = 0
        self._buffer = Workload.empty()
        self._taken_until = 0.0
        # what has been taken so far (sim.workload.fingerprint): the summary's traffic hash
        self.fingerprint = TrafficFingerprint()

    def window(self, k: int) -> Workload:
        """The requests of window ``k`` (with sessions: of the sessions that start in it,
        whose later turns may arrive after the window)."""
        a, b = k * WINDOW_S, min((k + 1) * WINDOW_S, self.duration)
        rng = np.random.default_rng(_window_seed(self.seeds["arrivals"], k))
        recorded: Workload | None = None
        if self.trace is not None:
            times, rows, tags = self.replay.window(a, b, rng)
            recorded = self.replay.requests(self.trace, rows, tags)
        elif self.plan is not None:
            times = sample_poisson(restrict(self.plan, a, b), rng)
        else:
            times = np.empty(0)
        traffic = self.traffic
        synthetic = traffic.sessions is not None or traffic.system_prompts is not None
        session_rng = np.random.default_rng(_window_seed(self.seeds["sessions"], k))
        turns = draw_turns(traffic.sessions, times.size, session_rng) if synthetic else None
        n = int(turns.sum()) if turns is not None else times.size
        tokens: dict[Column, np.ndarray] = {}
        for column, dist in self.lengths.items():
            if dist is None:
                assert recorded is not None  # only traces bring their own lengths
                tokens[column] = token_column(recorded, column)
            else:
                stream = np.random.default_rng(_window_seed(self.seeds[f"{column}_tokens"], k))
                tokens[column] = dist.sample(stream, n)
        if turns is not None:
            return session_workload(
                times, turns, self.duration, k, traffic.hash_block_tokens, traffic.sessions,
                traffic.system_prompts, tokens["input"], tokens["output"], session_rng,
            )
        if recorded is not None:
            return Workload(times, tokens["input"], tokens["output"], recorded.n_blocks,
                            recorded.block_ids, recorded.session, traffic.hash_block_tokens)
        return Workload(times, tokens["input"], tokens["output"])

    def take(self, t0: float, t1: float) -> Workload:
        """Requests arriving in ``[t0, t1)``; ``t0`` is where the previous call ended."""
        if t0 != self._taken_until:
            raise ValueError(f"take({t0}, ...) after taking up to {self._taken_until}")
        parts = [self._buffer]
        while self._next_window < self.n_windows and self._next_window * WINDOW_S < t1:
            parts.append(self.window(self._next_window))
            self._next_window += 1
        joined = Workload.concat(parts)
        if len(parts) > 1 and np.any(np.diff(joined.arrival_s) < 0):
            # later turns of earlier windows' sessions interleave with this window's
            joined = joined.take(np.argsort(joined.arrival_s, kind="stable"))
        cut = int(np.searchsorted(joined.arrival_s, t1, side="left"))
        self._buffer = joined.slice(cut, len(joined))
        self._taken_until = t1
        taken = joined.slice(0, cut)
        self.fingerprint.add(taken.arrival_s, taken.input_tokens, taken.output_tokens)
        return taken


def generate(
    traffic: TrafficSpec,
    duration_s: float,
    seed: np.random.SeedSequence,
    base_dir: Path | None = None,
) -> Workload:
    """All requests of ``traffic`` arriving in ``[0, duration_s)``.

    Arrival times, input lengths and output lengths come from three
    independent streams (:func:`child_seeds`), so changing one distribution
    leaves the others' draws alone; each is split into hourly windows
    (:class:`WorkloadStream`, which the engine reads window by window).
    Trace paths are resolved against ``base_dir`` (the scenario file's
    folder).  Bad trace files raise :class:`~sim.errors.InputError`.
    """
    stream = WorkloadStream(traffic, duration_s, seed, base_dir)
    return stream.take(0.0, math.inf)


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


# A trace that leaves more than this share of the run without traffic gets a warning.
EMPTY_TAIL_SHARE = 0.1


def traffic_warnings(traffic: TrafficSpec, duration_s: float,
                     base_dir: Path | None = None) -> list[str]:
    """One-line warnings about a trace replay that is probably not what was meant: a
    trace that ends long before ``duration_s`` (not looped), or a rate that suggests a
    unit mistake.  Each line starts with the trace file."""
    arrivals = traffic.arrivals
    if not isinstance(arrivals, TraceArrivals):
        return []
    from sim.report.format import seconds_text

    shown = str(resolve_path(arrivals.path, base_dir))
    stats = trace_stats(load_trace(arrivals.path, base_dir))
    out = []
    unit = unit_warning(stats, shown)
    if unit is not None:
        out.append(f"{shown}: {unit}")
    end = stats.span_s * arrivals.time_scale
    if not arrivals.loop and duration_s - end > EMPTY_TAIL_SHARE * duration_s:
        out.append(f"{shown}: the trace ends at {seconds_text(end)} of a "
                   f"{seconds_text(duration_s)} run: the last {seconds_text(duration_s - end)} "
                   "have no traffic while replicas are still billed (set loop: true, or a "
                   "shorter duration)")
    return out
