"""``capsim bench``: simulated requests per wall-second, as a ratio to a baseline.

The baseline is the textbook SimPy model of an M/M/c queue — one process per
request, a ``simpy.Resource`` with c servers.  capsim's engine runs the same
system: c replicas of one request each, whose measured curve makes a request's
service time exactly ``(output_tokens − 1) / rate``.  Both models are fed the
same arrival times and service times, both are checked against Erlang C, and
the speed ratio is measured in the same process, so the machine cancels out.

End to end, ``sim.run`` (scenario in, summary and request table out) runs the
same system from a scenario — the same arrival rate, service distribution
and number of requests — on each engine, ``fast`` and ``exact``.  Each
request's 1-token prompt then costs one forward pass alone (the weights read
once), which the Erlang C figure of those rows includes in the service time.
"""

from __future__ import annotations

import math
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import simpy

from sim.engine.core import ClientPolicy, DeploymentPlan, Simulation
from sim.perf import Shape
from sim.perf.curve import MeasuredCurve

DECODE_RATE = 1000.0  # tokens/s of the bench replica at concurrency 1
PREFILL_RATE = 1e12  # tokens/s: a one-token prompt takes 1 ps, i.e. nothing


def erlang_c_wait(c: int, lam: float, mu: float) -> float:
    """Mean wait in queue of M/M/c (Erlang C formula)."""
    a = lam / mu
    rho = a / c
    if rho >= 1:
        return math.inf
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1 - rho)
    p_wait = last / (total + last)
    return p_wait / (c * mu - lam)


@dataclass(frozen=True)
class MMcWorkload:
    arrival_s: np.ndarray
    output_tokens: np.ndarray
    service_s: np.ndarray


def mmc_workload(n: int, c: int, rho: float, seed: int) -> MMcWorkload:
    """Poisson arrivals at ρ·c per second, exponential service of mean 1 s (in tokens)."""
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / (rho * c), n))
    decode = np.maximum(np.rint(rng.exponential(DECODE_RATE, n)), 1).astype(np.int64)
    out = decode + 1
    service = 1.0 / PREFILL_RATE + decode / DECODE_RATE
    return MMcWorkload(arrival, out, service)


def bench_shape(c_max: int = 1) -> Shape:
    curve = MeasuredCurve([1], [DECODE_RATE], PREFILL_RATE, source="bench")
    return Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                 max_concurrency=c_max, curve=curve)


def run_engine(work: MMcWorkload, c: int) -> np.ndarray:
    """Queue waits of every request in capsim's engine."""
    n = len(work.arrival_s)
    plan = DeploymentPlan(
        name="mmc", shape=bench_shape(), arrival_s=work.arrival_s,
        input_tokens=np.ones(n, np.int64), output_tokens=work.output_tokens,
        replicas=c, datacenter="bench",
    )
    sim = Simulation([plan], horizon_s=float(work.arrival_s[-1]) + 1e-9,
                     clients=ClientPolicy(max_retries=0), jitter_rng=np.random.default_rng(0),
                     timeline_interval_s=3600.0)
    sim.run()
    return np.asarray(sim.state.start_t - sim.state.attempt_t)


def mmc_scenario(n: int, c: int, rho: float, seed: int, curve: Path,
                 engine: str) -> dict[str, object]:
    """The bench's M/M/c as a scenario: Poisson arrivals, ~exponential service of 1 s."""
    rate = rho * c
    return {
        "name": "bench", "engine": engine, "seed": seed, "duration": f"{n / rate:.6g}s",
        "timeline_interval": "1h", "clients": {"max_retries": 0},
        "deployments": [{
            "name": "mmc", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "curve": str(curve)},
            "max_concurrency": 1, "autoscaler": {"policy": "static", "replicas": c},
            "traffic": {"arrivals": {"kind": "poisson", "rps": rate},
                        "input_tokens": {"kind": "fixed", "value": 1},
                        "output_tokens": {"kind": "exponential", "mean": DECODE_RATE + 1}},
        }],
    }


def run_scenario(doc: dict[str, object]) -> tuple[int, float]:
    """``sim.run`` end to end, scenario in, summary out: (requests, mean queue wait).

    The mean wait is the time-average queue length over the arrival rate
    (Little's law, from the timeline: no per-request table is kept).
    """
    from sim.run import run

    res = run(doc, keep_requests=False)
    n = int(res.summary["total"]["requests"])
    tl = res.timeline
    return n, float((tl["queue_depth"] * tl["interval_s"]).sum()) / max(n, 1)


def run_naive(work: MMcWorkload, c: int) -> np.ndarray:
    """Queue waits in the naive SimPy model: one process per request."""
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=c)
    arrival = work.arrival_s.tolist()
    service = work.service_s.tolist()
    waits = np.empty(len(arrival))

    def request(i: int) -> simpy.events.ProcessGenerator:
        with servers.request() as slot:
            yield slot
            waits[i] = env.now - arrival[i]
            yield env.timeout(service[i])

    def source() -> simpy.events.ProcessGenerator:
        last = 0.0
        for i, t in enumerate(arrival):
            yield env.timeout(t - last)
            last = t
            env.process(request(i))

    env.process(source())
    env.run()
    return waits


def _timed(
    fn: Callable[[MMcWorkload, int], np.ndarray], work: MMcWorkload, c: int
) -> tuple[float, float]:
    t0 = time.perf_counter()
    waits = fn(work, c)
    wall = time.perf_counter() - t0
    cut = len(waits) // 10  # warm-up: the first 10 % of requests
    return wall, float(np.mean(waits[cut:]))


def main(requests: int = 200_000, repeats: int = 3, c: int = 10, rho: float = 0.9) -> int:
    from rich.console import Console
    from rich.table import Table

    from sim.engine.kernel import JIT

    console = Console()
    theory = erlang_c_wait(c, rho * c, 1.0)
    first_pass = bench_shape().iteration_time(0, 0, 1)  # the end-to-end rows' prompt pass
    theory_run = erlang_c_wait(c, rho * c, 1.0 / (1.0 + first_pass))
    with tempfile.TemporaryDirectory() as tmp:
        curve = Path(tmp) / "bench.csv"
        curve.write_text("concurrency,output_tokens_per_s,prefill_tokens_per_s\n"
                         f"1,{DECODE_RATE:g},{PREFILL_RATE:g}\n")
        t0 = time.perf_counter()
        run_engine(mmc_workload(1000, c, rho, seed=0), c)  # compile the kernel (cached on disk)
        for engine in ("fast", "exact"):
            run_scenario(mmc_scenario(1000, c, rho, 0, curve, engine))
        warm = time.perf_counter() - t0
        labels = ("capsim kernel", "sim.run fast", "sim.run exact", "naive SimPy")
        walls: dict[str, list[float]] = {label: [] for label in labels}
        waits: dict[str, list[float]] = {label: [] for label in labels}
        counts: dict[str, int] = dict.fromkeys(labels, requests)
        for k in range(repeats):
            work = mmc_workload(requests, c, rho, seed=1 + k)
            for label, fn in (("capsim kernel", run_engine), ("naive SimPy", run_naive)):
                wall, wait = _timed(fn, work, c)
                walls[label].append(wall)
                waits[label].append(wait)
            for engine in ("fast", "exact"):
                label = f"sim.run {engine}"
                doc = mmc_scenario(requests, c, rho, 1 + k, curve, engine)
                t1 = time.perf_counter()
                n, wait = run_scenario(doc)
                walls[label].append(time.perf_counter() - t1)
                waits[label].append(wait)
                counts[label] = n
    table = Table(title=f"M/M/{c}, ρ = {rho}, {requests:,} requests × {repeats} seeds "
                        f"({platform.processor() or platform.machine()}, "
                        f"Python {platform.python_version()})")
    for col in ("model", "requests / wall-s (best)", "× naive SimPy", "mean wait (s)",
                "Erlang C (s)", "error"):
        table.add_column(col, justify="right")
    speed = {label: counts[label] / min(walls[label]) for label in labels}
    for label in labels:
        mean_wait = float(np.mean(waits[label]))
        want = theory_run if label.startswith("sim.run") else theory
        table.add_row(label, f"{speed[label]:,.0f}", f"{speed[label] / speed['naive SimPy']:.1f}×",
                      f"{mean_wait:.4f}", f"{want:.4f}", f"{(mean_wait - want) / want:+.1%}")
    console.print(table)
    ratio = speed["capsim kernel"] / speed["naive SimPy"]
    console.print(f"speed ratio capsim / naive SimPy: [bold]{ratio:.1f}×[/bold] kernel, "
                  f"[bold]{speed['sim.run fast'] / speed['naive SimPy']:.1f}×[/bold] sim.run fast,"
                  f" [bold]{speed['sim.run exact'] / speed['naive SimPy']:.1f}×[/bold] sim.run "
                  f"exact (kernel {'compiled by numba' if JIT else 'pure Python'}; "
                  f"first-call warm-up {warm:.1f} s)")
    return 0
