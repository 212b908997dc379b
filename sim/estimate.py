"""How big a run will be, before it starts: requests, control-plane events, timeline
rows, memory, output size and wall time — and whether to run it at all.

:func:`estimate` reads only the scenario (and the length of its traces); it is
cheap enough to run before every simulation.  Beyond a **hard limit** a run
cannot finish on any machine capsim is meant for (a billion requests, a timeline
of ten million rows, a day of wall time, more memory than the machine has):
:meth:`Estimate.refuse` raises an :class:`~sim.errors.InputError` naming the
reason, so the command exits 2 before anything is written.  Beyond a **soft
limit** the run is merely long or large: :meth:`Estimate.warnings` gives one
line each, which ``capsim run`` prints unless ``--yes`` is given or the
scenario sets ``large_run_ok: true``.

The figures are upper-bound-ish estimates, calibrated on this engine (see
``docs/performance.md``): requests are the arrival model's mean rate times the
horizon (a trace: its length, scaled and looped; sessions: times their mean
number of turns), retries not included; the
wall time adds the cost per request, per replica and per control-plane event.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sim.errors import InputError

if TYPE_CHECKING:
    from sim.scenario.loader import LoadedScenario
    from sim.workload.spec import ArrivalsSpec

# Calibration (a shared 2-core machine, numba on; docs/performance.md): fitted on
# 24 runs of `sim.run(..., keep_requests=False)` (non-negative least squares on
# relative error), the start-up and the writing timed on `capsim run`.
WALL_FIXED_S = 3.0  # start-up: imports (2.3 s), loading the compiled kernels, traffic set-up
WALL_PER_REQUEST_S = 1.3e-6  # simulating one request (queues draining after the horizon included)
WALL_PER_EVENT_S = 5.2e-5  # one control-plane event or timeline row
WALL_PER_SAMPLE_S = 8.7e-7  # one sync period of an autoscaler's metrics window, per decision
WALL_PER_REPLICA2_HOUR_S = 3.5e-8  # replicas² per simulated hour (fleet bookkeeping)
WRITE_FIXED_S = 1.5  # plots and the report
WRITE_PER_REQUEST_S = 4.5e-6  # writing requests.parquet, its exact percentiles and the CDFs
MEMORY_FIXED_B = 320e6  # the interpreter with numpy, pandas, numba, matplotlib
MEMORY_PER_REQUEST_B = 520.0  # the request table and its temporaries
# ``capsim run`` streams the table to disk (sim.io.RequestsFile): what stays per request
# is the read-back for the exact percentiles (a byte for the selection, one float64 of
# one latency metric); measured: the week's read-back alone 553 MiB for 30.4 M rows
STREAMED_MEMORY_PER_REQUEST_B = 9.0
MEMORY_PER_ROW_B = 400.0  # a timeline row (per deployment)
OUTPUT_FIXED_B = 1e6  # summary, plots, report
OUTPUT_PER_REQUEST_B = 80.0  # requests.parquet
OUTPUT_PER_ROW_B = 40.0  # timeline.parquet

DRAIN_LIMIT_S = 3600.0  # the engine drains for max(duration, this) after the horizon

# Hard limits: refused (exit 2).
MAX_REQUESTS = 1e9
MAX_TIMELINE_ROWS = 1e7
MAX_CONTROL_EVENTS = 1e9
MAX_WALL_S = 24 * 3600.0
# Soft limits: one warning line each.
SOFT_REQUESTS = 2e7
SOFT_TIMELINE_ROWS = 1e6
SOFT_CONTROL_EVENTS = 1e7
SOFT_WALL_S = 600.0
SOFT_OUTPUT_B = 4e9
SOFT_MEMORY_SHARE = 0.5  # of the machine's memory


@dataclass(frozen=True)
class DeploymentEstimate:
    name: str
    requests: float  # expected arrivals over the horizon (first attempts)
    replicas: int  # the most replicas it may hold (max_replicas)
    control_events: float  # autoscaler decisions and replica crashes
    samples: float = 0.0  # decisions × sync periods in the metrics window (their cost)


@dataclass(frozen=True)
class Estimate:
    """The expected size of one run (``keep_requests``: with its request table)."""

    requests: float
    control_events: float
    timeline_rows: float
    memory_bytes: float
    output_bytes: float
    wall_s: float
    keep_requests: bool
    machine_memory_bytes: float | None
    max_timeline_rows: float = 0.0  # with the longest drain after the horizon
    max_control_events: float = 0.0  # likewise
    deployments: Sequence[DeploymentEstimate] = field(default_factory=tuple)

    def refusals(self) -> list[str]:
        """Why the run cannot be done (empty: it can)."""
        out = []
        if self.requests > MAX_REQUESTS:
            out.append(f"≈ {_count(self.requests)} requests (at most {MAX_REQUESTS:.0e} per run); "
                       "shorten duration or lower the request rate")
        if max(self.timeline_rows, self.max_timeline_rows) > MAX_TIMELINE_ROWS:
            out.append(f"up to {_count(self.max_timeline_rows)} timeline rows (at most "
                       f"{MAX_TIMELINE_ROWS:.0e}); raise timeline_interval")
        if max(self.control_events, self.max_control_events) > MAX_CONTROL_EVENTS:
            out.append(f"up to {_count(self.max_control_events)} control-plane events (at most "
                       f"{MAX_CONTROL_EVENTS:.0e}); raise the sync period or replica_mtbf, "
                       "or lower max_replicas")
        if self.wall_s > MAX_WALL_S:
            out.append(f"≈ {_duration(self.wall_s)} of wall time (at most "
                       f"{_duration(MAX_WALL_S)})")
        if self.machine_memory_bytes and self.memory_bytes > self.machine_memory_bytes:
            hint = "; try --no-requests" if self.keep_requests else ""
            out.append(f"needs ≈ {_bytes(self.memory_bytes)} of memory, this machine has "
                       f"{_bytes(self.machine_memory_bytes)}{hint}")
        return out

    def warnings(self) -> list[str]:
        """One line per soft limit the run exceeds (empty: a small run)."""
        out = []
        if self.requests > SOFT_REQUESTS:
            out.append(f"a large run: ≈ {_count(self.requests)} requests")
        if self.timeline_rows > SOFT_TIMELINE_ROWS:
            out.append(f"a long timeline: ≈ {_count(self.timeline_rows)} rows")
        if self.control_events > SOFT_CONTROL_EVENTS:
            out.append(f"many control-plane events: ≈ {_count(self.control_events)}")
        if self.wall_s > SOFT_WALL_S:
            out.append(f"a long run: ≈ {_duration(self.wall_s)} of wall time")
        if self.keep_requests and self.output_bytes > SOFT_OUTPUT_B:
            out.append(f"large results: ≈ {_bytes(self.output_bytes)} on disk "
                       "(--no-requests keeps no request table)")
        if (self.machine_memory_bytes and self.memory_bytes > SOFT_MEMORY_SHARE
                * self.machine_memory_bytes):
            out.append(f"≈ {_bytes(self.memory_bytes)} of memory, of "
                       f"{_bytes(self.machine_memory_bytes)} on this machine")
        return out

    def refuse(self, file: str | None = None) -> Estimate:
        """Raise an InputError (exit 2) when the run is beyond a hard limit; else ``self``."""
        reasons = self.refusals()
        if reasons:
            raise InputError("run refused before it starts: " + "; ".join(reasons), file=file)
        return self

    def line(self) -> str:
        """The estimate in one line, for ``capsim validate``."""
        return (f"≈ {_count(self.requests)} requests, {_count(self.control_events)} control-plane "
                f"events, {_count(self.timeline_rows)} timeline rows, {_bytes(self.memory_bytes)} "
                f"of memory, {_bytes(self.output_bytes)} of results, "
                f"{_duration(self.wall_s)} of wall time")


def estimate(loaded: LoadedScenario, *, keep_requests: bool = True,
             streamed: bool = False) -> Estimate:
    """The expected size of ``loaded``'s run (see the module docstring)."""
    from sim.policies.registry import get_policy

    spec = loaded.spec
    duration = spec.duration
    deps = []
    for dep in spec.deployments:
        policy = get_policy(dep.autoscaler.policy)(dep.autoscaler)
        replicas = dep.resolved_max_replicas
        sync = max(float(policy.sync_period_s), 1e-3)
        decisions = duration / sync
        window = max([float(policy.window_s), *map(float, policy.windows_s)])
        crashes = (replicas * duration / spec.faults.replica_mtbf
                   if spec.faults.replica_mtbf else 0.0)
        requests = _requests(dep.traffic.arrivals, duration, loaded)
        if dep.traffic.sessions is not None:  # the arrivals start sessions of many turns
            from sim.workload.lengths import length_distribution

            requests *= length_distribution(dep.traffic.sessions.turns).mean
        deps.append(DeploymentEstimate(dep.name, requests, replicas, decisions + crashes,
                                       decisions * (1.0 + window / sync)))
    requests = sum(d.requests for d in deps)
    events = (sum(d.control_events for d in deps) + len(spec.faults.outages)
              + sum(len(b.steps) for b in spec.background_demand))
    rows = (math.floor(duration / spec.timeline_interval) + 1) * len(deps)
    # Requests in flight at the horizon drain for at most max(duration, 1 h) more
    # (the engine's drain limit): the timeline and the control loops go on meanwhile.
    simulated_max = duration + max(duration, DRAIN_LIMIT_S)
    max_rows = (math.floor(simulated_max / spec.timeline_interval) + 1) * len(deps)
    max_events = events * simulated_max / duration
    replicas2 = sum(d.replicas for d in deps) ** 2
    wall = (WALL_FIXED_S + requests * WALL_PER_REQUEST_S + (events + rows) * WALL_PER_EVENT_S
            + sum(d.samples for d in deps) * WALL_PER_SAMPLE_S
            + replicas2 * (1.0 + duration / 3600.0) * WALL_PER_REPLICA2_HOUR_S)
    if keep_requests:
        wall += WRITE_FIXED_S + requests * WRITE_PER_REQUEST_S
    per_request = STREAMED_MEMORY_PER_REQUEST_B if streamed else MEMORY_PER_REQUEST_B
    memory = MEMORY_FIXED_B + rows * MEMORY_PER_ROW_B + (
        requests * per_request if keep_requests else 0.0)
    output = OUTPUT_FIXED_B + rows * OUTPUT_PER_ROW_B + (
        requests * OUTPUT_PER_REQUEST_B if keep_requests else 0.0)
    return Estimate(requests, events, rows, memory, output, wall, keep_requests,
                    _machine_memory(), max_rows, max_events, tuple(deps))


def _requests(arrivals: ArrivalsSpec, duration: float, loaded: LoadedScenario) -> float:
    """Expected arrivals over ``duration`` from the arrival model's mean rate."""
    from sim.workload.spec import (
        BurstArrivals,
        DiurnalArrivals,
        PoissonArrivals,
        RampArrivals,
        SpikesArrivals,
        TraceArrivals,
    )

    if isinstance(arrivals, PoissonArrivals):
        return arrivals.rps * duration
    if isinstance(arrivals, DiurnalArrivals):  # the horizon may hold part of a day
        return _expected_arrivals(arrivals, duration)
    if isinstance(arrivals, BurstArrivals):
        return arrivals.mean_rps * duration
    if isinstance(arrivals, RampArrivals):
        ramp = min(arrivals.ramp_duration or duration, duration)
        full = arrivals.ramp_duration or duration
        end_of_ramp = arrivals.start_rps + (arrivals.end_rps - arrivals.start_rps) * ramp / full
        return ((arrivals.start_rps + end_of_ramp) / 2 * ramp
                + arrivals.end_rps * (duration - ramp))
    if isinstance(arrivals, SpikesArrivals):
        total = arrivals.base_rps * duration
        for s in arrivals.spikes:
            inside = max(0.0, min(s.at + s.duration, duration) - max(s.at, 0.0))
            total += (s.rps - arrivals.base_rps) * inside
        return total
    if isinstance(arrivals, TraceArrivals):
        from sim.workload.traces import load_trace

        trace = load_trace(arrivals.path, loaded.base_dir)
        n = len(trace)
        span = float(trace.arrival_s[-1]) * arrivals.time_scale if n else 0.0
        if arrivals.loop and n > 1 and span > 0:
            passes = duration / (span * n / (n - 1))
        else:
            passes = min(1.0, duration / span) if span > 0 else 1.0
        return n * arrivals.rate_scale * passes
    return 0.0  # an arrival model added later: no estimate of its size


def _expected_arrivals(arrivals: ArrivalsSpec, duration: float) -> float:
    """∫ intensity dt over ``[0, duration)`` of a deterministic intensity: Gauss–Legendre
    (8 nodes) on each segment of its rate plan (piecewise constant: exact)."""
    import numpy as np

    from sim.workload.arrivals import rate_plan

    plan = rate_plan(arrivals, duration, np.random.default_rng(0))
    a, b = plan.edges[:-1], plan.edges[1:]
    if plan.rate is None:
        return float(np.sum(plan.bound * (b - a)))
    x, w = np.polynomial.legendre.leggauss(8)
    mid, half = (a + b) / 2, (b - a) / 2
    t = mid[:, None] + half[:, None] * x[None, :]
    return float(np.sum(half * (plan.rate(t.ravel()).reshape(t.shape) @ w)))


def _machine_memory() -> float | None:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _count(n: float) -> str:
    if n < 1e6:
        return f"{float(f'{n:.3g}'):,.0f}"
    return f"{n / 1e9:.3g} billion" if n >= 1e9 else f"{n / 1e6:.3g} million"


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"
