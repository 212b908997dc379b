"""``capsim bench --scale``: wall time and peak memory of long runs (the scaling curve).

The week-long benchmark scenario (``scenarios/bench/week.yaml``: three
deployments in two mega-regions, ≈ 50 req/s, fireworks autoscaling with cold
starts) is run for 1 hour, 1 day and 1 week without the per-request table.
Each horizon runs in a fresh Python process, so its peak resident memory
(``ru_maxrss``) is its own; the parent reads wall time, peak memory and the
request count from the child's one line of JSON.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Relative to the current folder (a checkout of the repository); any other is passed in.
SCENARIO = Path("scenarios") / "bench" / "week.yaml"
HORIZONS = (("1 hour", "1h"), ("1 day", "1d"), ("1 week", "7d"))
WEEK_WALL_TARGET_S = 600.0
WEEK_MEMORY_TARGET_MIB = 2048.0

# What the child process runs: one scenario, one horizon, no per-request table.
_CHILD = """
import json, resource, sys, time
import sim
t0 = time.perf_counter()
res = sim.run(sys.argv[1], {"duration": sys.argv[2]}, keep_requests=False)
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "requests": res.summary["total"]["requests"],
    "wall_s": wall,
    "peak_rss_mib": usage.ru_maxrss / 1024.0,
    "simulated_s": res.summary["simulated_s"],
}))
"""


@dataclass(frozen=True)
class Point:
    label: str
    duration: str
    requests: int
    wall_s: float
    cpu_s: float  # of the whole child process, start-up and imports included
    peak_rss_mib: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0


def measure(duration: str, scenario: Path = SCENARIO, label: str = "") -> Point:
    """Run ``scenario`` for ``duration`` in a child process; its wall time and peak RSS."""
    import sim

    root = Path(sim.__file__).resolve().parents[1]  # the child imports this same capsim
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(scenario), duration],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the {duration} run failed:\n{proc.stderr.strip()}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return Point(label or duration, duration, int(out["requests"]), float(out["wall_s"]),
                 float(out["cpu_s"]), float(out["peak_rss_mib"]))


def main(horizons: tuple[tuple[str, str], ...] = HORIZONS,
         scenario: str | Path | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from sim.errors import InputError
    from sim.scenario.loader import load_scenario

    scenario = Path(scenario) if scenario is not None else SCENARIO
    if not scenario.is_file():
        raise InputError("no such scenario: run from a capsim checkout (it has "
                         f"{SCENARIO}) or pass --scenario FILE", file=str(scenario))
    load_scenario(scenario)  # bad input: one line, before any child process

    console = Console()
    measure("30m", scenario, "warm-up")  # compile the kernel once (numba caches it on disk)
    table = Table(title=f"{scenario.name}: simulated horizon against wall time and memory "
                        f"({platform.processor() or platform.machine()}, "
                        f"Python {platform.python_version()}, one process per row)")
    for col in ("horizon", "requests", "wall (s)", "process CPU (s)", "peak RSS (MiB)",
                "simulated req / wall-s"):
        table.add_column(col, justify="right")
    points = []
    for label, duration in horizons:
        p = measure(duration, scenario, label)
        points.append(p)
        table.add_row(label, f"{p.requests:,}", f"{p.wall_s:,.1f}", f"{p.cpu_s:,.1f}",
                      f"{p.peak_rss_mib:,.0f}", f"{p.requests_per_s:,.0f}")
    console.print(table)
    week = next((p for p in points if p.duration == "7d"), None)
    if week is not None:
        wall_ok = week.wall_s < WEEK_WALL_TARGET_S
        mem_ok = week.peak_rss_mib < WEEK_MEMORY_TARGET_MIB
        console.print(
            f"week: {week.wall_s:,.0f} s wall (target < {WEEK_WALL_TARGET_S:.0f} s: "
            f"{'met' if wall_ok else 'MISSED'}), {week.peak_rss_mib:,.0f} MiB peak "
            f"(target < {WEEK_MEMORY_TARGET_MIB:.0f} MiB: {'met' if mem_ok else 'MISSED'})"
        )
    return 0
