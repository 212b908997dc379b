"""The fast engine against the exact one: the error table of docs/validation.md.

``python -m sim.validation.engines`` prints the table; ``--write`` also puts it
into docs/validation.md between its markers; ``--full`` runs the whole grid
(every workload × shape × replica count × load; the default is a subset).

For each workload, shape and replica count, the exact engine's saturation
rate is measured first (requests/s completed under the same overload by
both engines, :func:`saturation`); then both engines run the same requests — same seed, same
arrivals, same token counts — at fractions of it, and the table gives the
fast engine's relative error on each latency percentile and on throughput.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import sim
from sim.validation.markers import replace_between

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "scenarios" / "traces"
DOC = ROOT / "docs" / "validation.md"
BEGIN, END = "<!-- engines:begin -->", "<!-- engines:end -->"

SHAPES = {
    "8B 1×H100": ("llama-v3p1-8b-instruct", 1),
    "70B 4×H100": ("llama-v3p1-70b-instruct", 4),
}
LOADS = (0.30, 0.60, 0.85, 0.95)
METRICS = ("ttft", "tpot", "e2e")
DURATION_S = 1200.0
WARMUP_S = 200.0


def traffic(workload: str, rps: float) -> dict[str, Any]:
    """Poisson arrivals at ``rps`` with the workload's token lengths."""
    arrivals = {"kind": "poisson", "rps": rps}
    if workload in ("conversation", "code"):
        name = "conv" if workload == "conversation" else "code"
        path = str(TRACES / f"AzureLLMInferenceTrace_{name}.csv")
        return {"arrivals": arrivals, "input_tokens": {"kind": "empirical", "path": path},
                "output_tokens": {"kind": "empirical", "path": path}}
    if workload == "long-context":
        return {"arrivals": arrivals,
                "input_tokens": {"kind": "lognormal", "median": 8000, "p90": 16000},
                "output_tokens": {"kind": "lognormal", "median": 300, "p90": 600}}
    raise ValueError(f"unknown workload {workload!r}")


WORKLOADS = ("conversation", "code", "long-context")


def scenario(workload: str, shape: str, replicas: int, rps: float, engine: str, seed: int,
             *, max_queue: int | None = None, duration_s: float = DURATION_S) -> dict[str, Any]:
    model, count = SHAPES[shape]
    dep: dict[str, Any] = {
        "name": "d", "model": model,
        "shape": {"accelerator": "H100_80GB", "count": count, "precision": "FP8"},
        "autoscaler": {"policy": "static", "replicas": replicas},
        "traffic": traffic(workload, rps),
    }
    if max_queue is not None:
        dep["max_queue"] = max_queue
    return {"name": "engines", "engine": engine, "seed": seed, "duration": f"{duration_s:g}s",
            "warmup": f"{WARMUP_S:g}s", "clients": {"max_retries": 0}, "deployments": [dep]}


def overload(workload: str, shape: str, replicas: int, seed: int = 1) -> float:
    """An arrival rate twice what the exact engine completes when offered 1000 req/s
    with a bounded router queue: well beyond capacity, yet a queue that stays small."""
    doc = scenario(workload, shape, replicas, 1000.0, "exact", seed, max_queue=64 * replicas,
                   duration_s=300.0)
    req = sim.run(doc).requests
    return 2.0 * float((req["status"] == "ok").sum()) / 300.0


def saturation(workload: str, shape: str, replicas: int, engine: str, rps: float,
               seed: int = 1) -> float:
    """Requests/s completed under overload: arrivals at ``rps`` (:func:`overload`) queue
    without bound, so both engines serve the same requests in the same order and only
    their speed differs; completions between 200 s and 600 s."""
    doc = scenario(workload, shape, replicas, rps, engine, seed, duration_s=600.0)
    req = sim.run(doc).requests
    ok = req[(req["status"] == "ok") & (req["finish_s"] >= 200.0) & (req["finish_s"] < 600.0)]
    return len(ok) / 400.0


@dataclass
class Point:
    workload: str
    shape: str
    replicas: int
    load: float
    seeds: int
    errors: dict[str, float]  # metric → fast/exact − 1
    exact: dict[str, float]


def measures(res: sim.Result) -> dict[str, float]:
    req = res.requests
    ok = req[(req["status"] == "ok") & (req["arrival_s"] >= WARMUP_S)]
    out: dict[str, float] = {}
    for m in METRICS:
        values = ok[f"{m}_s"].dropna().to_numpy()
        out[f"{m}_p50"] = float(np.percentile(values, 50))
        out[f"{m}_p99"] = float(np.percentile(values, 99))
    done = req[(req["status"] == "ok") & (req["finish_s"] >= WARMUP_S)
               & (req["finish_s"] < DURATION_S)]
    out["throughput"] = float(done["output_tokens"].sum()) / (DURATION_S - WARMUP_S)
    return out


def compare(workload: str, shape: str, replicas: int, load: float, capacity: float,
            seeds: Iterable[int]) -> Point:
    """Mean over seeds of each measure on both engines; the fast engine's relative error."""
    fast: list[dict[str, float]] = []
    exact: list[dict[str, float]] = []
    seeds = list(seeds)
    for seed in seeds:
        rps = load * capacity
        fast.append(measures(sim.run(scenario(workload, shape, replicas, rps, "fast", seed))))
        exact.append(measures(sim.run(scenario(workload, shape, replicas, rps, "exact", seed))))
    keys = fast[0].keys()
    f = {k: float(np.mean([x[k] for x in fast])) for k in keys}
    e = {k: float(np.mean([x[k] for x in exact])) for k in keys}
    return Point(workload, shape, replicas, load, len(seeds),
                 {k: f[k] / e[k] - 1.0 for k in keys}, e)


def grid(full: bool) -> list[tuple[str, str, int]]:
    if full:
        return [(w, s, n) for w in WORKLOADS for s in SHAPES for n in (1, 4)]
    return [("conversation", "8B 1×H100", 1), ("code", "8B 1×H100", 1),
            ("long-context", "8B 1×H100", 1), ("conversation", "70B 4×H100", 4),
            ("code", "70B 4×H100", 4)]


def run(full: bool = False, seeds: tuple[int, ...] = (1, 2, 3)) -> tuple[list[str], list[Point]]:
    """(saturation rows, points) of the grid."""
    sat_rows: list[str] = []
    points: list[Point] = []
    for workload, shape, replicas in grid(full):
        rps = overload(workload, shape, replicas)
        cap_exact = saturation(workload, shape, replicas, "exact", rps)
        cap_fast = saturation(workload, shape, replicas, "fast", rps)
        sat_rows.append(f"| {workload} | {shape} | {replicas} | {cap_exact:.3g} | "
                        f"{cap_fast:.3g} | {cap_fast / cap_exact - 1.0:+.1%} |")
        for load in LOADS:
            points.append(compare(workload, shape, replicas, load, cap_exact, seeds))
            print(_row(points[-1]), file=sys.stderr, flush=True)
    return sat_rows, points


def _row(p: Point) -> str:
    cells = [f"{p.errors[f'{m}_{q}']:+.1%}" for m in METRICS for q in ("p50", "p99")]
    return (f"| {p.workload} | {p.shape} | {p.replicas} | {p.load:.0%} | "
            f"{p.exact['ttft_p50'] * 1e3:.0f} | {p.exact['tpot_p50'] * 1e3:.1f} | "
            + " | ".join(cells) + f" | {p.errors['throughput']:+.1%} |")


def table(sat_rows: list[str], points: list[Point], command: str) -> str:
    lines = [
        f"Generated by `{command}` (seeds 1–3, {DURATION_S / 60:.0f} simulated minutes per run,"
        f" the first {WARMUP_S / 60:.0f} excluded).",
        "",
        "Saturation (requests/s one deployment completes under overload):",
        "",
        "| workload | shape | replicas | exact | fast | fast error |",
        "|---|---|---:|---:|---:|---:|",
        *sat_rows,
        "",
        "Fast engine's error against the exact one (fast / exact − 1, means over seeds) at a"
        " fraction of the exact engine's saturation rate; exact TTFT p50 in ms and TPOT p50"
        " in ms for scale:",
        "",
        "| workload | shape | replicas | load | exact TTFT p50 | exact TPOT p50 | TTFT p50 |"
        " TTFT p99 | TPOT p50 | TPOT p99 | E2E p50 | E2E p99 | throughput |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[_row(p) for p in points],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.validation.engines",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the whole grid (slow)")
    parser.add_argument("--write", action="store_true", help="update docs/validation.md")
    args = parser.parse_args(argv)
    command = "python -m sim.validation.engines" + (" --full" if args.full else "") + " --write"
    sat_rows, points = run(full=args.full)
    text = table(sat_rows, points, command)
    print(text)
    if args.write:
        replace_between(DOC, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
