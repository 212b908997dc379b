"""``capsim bench``: simulated requests per wall-second, as a ratio to a baseline.

The baseline is the textbook SimPy model of an M/M/c queue — one process per
request, a ``simpy.Resource`` with c servers.  capsim's engine runs the same
system: c replicas of one request each, whose measured curve makes a request's
service time exactly ``(output_tokens − 1) / rate``.  Both models are fed the
same arrival times and service times, both are checked against Erlang C, and
the speed ratio is measured in the same process, so the machine cancels out.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

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

    console = Console()
    theory = erlang_c_wait(c, rho * c, 1.0)
    t0 = time.perf_counter()
    run_engine(mmc_workload(1000, c, rho, seed=0), c)  # compile the kernel (cached on disk)
    warm = time.perf_counter() - t0
    rows: dict[str, tuple[list[float], list[float]]] = {
        "capsim engine": ([], []), "naive SimPy": ([], [])
    }
    for k in range(repeats):
        work = mmc_workload(requests, c, rho, seed=1 + k)
        for label, fn in (("capsim engine", run_engine), ("naive SimPy", run_naive)):
            wall, wait = _timed(fn, work, c)
            rows[label][0].append(wall)
            rows[label][1].append(wait)
    table = Table(title=f"M/M/{c}, ρ = {rho}, {requests:,} requests × {repeats} seeds "
                        f"({platform.processor() or platform.machine()}, "
                        f"Python {platform.python_version()})")
    for col in ("model", "requests / wall-s (best)", "mean wait (s)", "Erlang C (s)", "error"):
        table.add_column(col, justify="right")
    speed = {}
    for label, (walls, waits) in rows.items():
        speed[label] = requests / min(walls)
        mean_wait = float(np.mean(waits))
        table.add_row(label, f"{speed[label]:,.0f}", f"{mean_wait:.4f}", f"{theory:.4f}",
                      f"{(mean_wait - theory) / theory:+.1%}")
    console.print(table)
    ratio = speed["capsim engine"] / speed["naive SimPy"]
    from sim.engine.kernel import JIT

    console.print(f"speed ratio capsim / naive SimPy: [bold]{ratio:.1f}×[/bold] "
                  f"(kernel {'compiled by numba' if JIT else 'pure Python'}; "
                  f"first-call warm-up {warm:.1f} s)")
    return 0
