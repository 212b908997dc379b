"""The step model against measured vLLM runs at realistic load, through ``sim.run``.

``python -m sim.perf.validate`` replays every measured run of
``vllm_v0.15_llama31_load_runs.csv`` (its load stages back to back, evenly
spaced arrivals at each stage's rate, the measured lengths, ``max_num_seqs``
as ``max_concurrency``, one replica, scenario defaults otherwise) and prints,
per run and stage, the error of capsim's mean and p99 TTFT, mean TPOT and mean
and p99 E2E against the measured ones.  ``--fit`` re-fits the vLLM BF16
profile on the fit runs (:data:`FIT_RUNS`) and prints the constants;
``--write`` rewrites the "Against real measurements" section of
docs/validation.md with the table.

Fit and hold-out are split by hardware and workload: the fit set is one
H100 run on one GPU and one on two GPUs, both the general workload; every
other run (other workloads, other scheduler budgets, the 70B model on four
GPUs) is held out.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize

from sim.catalog._data import read_records
from sim.perf.params import VLLM_BF16, PerfParams
from sim.perf.profiles import BUILTIN, get_profile, profile_document

DATA = "vllm_v0.15_llama31_load_runs.csv"
# Fit on general-workload H100 runs at TP 1 and TP 2 (default scheduler budget).
FIT_RUNS = ("16", "26")
SECTION = "## Against real measurements"
METRICS = ("ttft_mean", "ttft_p99", "tpot_mean", "e2e_mean", "e2e_p99")


@dataclass(frozen=True)
class Stage:
    rate_rps: float
    duration_s: float
    input_tokens: int
    output_tokens: int
    measured: dict[str, float]  # seconds


@dataclass(frozen=True)
class MeasuredRun:
    run: str
    workload: str
    model: str
    accelerator: str
    gpus: int
    precision: str
    max_num_seqs: int
    max_batched_tokens: int
    stages: tuple[Stage, ...]
    arrivals: str = "constant"  # or "poisson"

    @property
    def label(self) -> str:
        size = "70B" if "70b" in self.model else "8B"
        gpu = self.accelerator.split("_")[0]
        return (f"{self.run} {size} {self.gpus}×{gpu} {self.workload} "
                f"(chunk {self.max_batched_tokens})")

    @property
    def fit(self) -> bool:
        return self.run in FIT_RUNS


def implied_output_tokens(e2e: float, ttft: float, itl: float) -> int:
    """Output length consistent with the measured means: E2E = TTFT + (out − 1)·ITL."""
    return max(2, round(1.0 + (e2e - ttft) / itl))


def measured_runs(name: str = DATA) -> list[MeasuredRun]:
    """The runs of ``name`` whose stage rates are published (the others are not replayable)."""
    by_run: dict[str, list[dict[str, str]]] = {}
    for r in read_records(name):
        by_run.setdefault(r["run"], []).append(r)
    runs = []
    for run, rows in by_run.items():
        if any(not r["rate_rps"] for r in rows):
            continue
        rows.sort(key=lambda r: int(r["stage"]))
        stages = []
        for r in rows:
            ms = {k: float(r[f"{k}_ms"]) / 1e3 for k in
                  ("ttft_mean", "ttft_p90", "ttft_p99", "itl_mean", "e2e_mean", "e2e_p90",
                   "e2e_p99")}
            ms["tpot_mean"] = ms.pop("itl_mean")
            out = implied_output_tokens(ms["e2e_mean"], ms["ttft_mean"], ms["tpot_mean"])
            stages.append(Stage(float(r["rate_rps"]), float(r["stage_s"]), int(r["input_tokens"]),
                                out, ms))
        r0 = rows[0]
        runs.append(MeasuredRun(run, r0["workload"], r0["model"], r0["accelerator"], int(r0["tp"]),
                                r0["precision"], int(r0["max_num_seqs"]),
                                int(r0["max_num_batched_tokens"]), tuple(stages)))
    return runs


def _trace(run: MeasuredRun, folder: Path) -> tuple[Path, list[tuple[float, float]]]:
    """Arrivals stage after stage (evenly spaced, or Poisson with a fixed seed);
    returns the trace file and each stage's window."""
    start = datetime(2026, 1, 1)
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    windows, t0 = [], 0.0
    rng = np.random.default_rng(1)
    for st in run.stages:
        n = round(st.rate_rps * st.duration_s)
        if run.arrivals == "poisson":
            times = t0 + np.sort(rng.uniform(0.0, st.duration_s, n))
        else:
            times = t0 + np.arange(n) / st.rate_rps
        for t in times:
            stamp = (start + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S.%f")
            lines.append(f"{stamp},{st.input_tokens},{st.output_tokens}")
        windows.append((t0, t0 + st.duration_s))
        t0 += st.duration_s
    path = folder / f"run_{run.run}.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, windows


def scenario(run: MeasuredRun, trace: Path, serving_engine: str = "vllm",
             engine: str = "fast") -> dict[str, Any]:
    """The capsim scenario replaying ``run`` (scenario defaults otherwise)."""
    total = sum(st.duration_s for st in run.stages)
    return {
        "name": f"measured-{run.run}",
        "seed": 1,
        "engine": engine,
        "duration": f"{total + 120:g}s",
        "deployments": [{
            "name": "replica",
            "model": run.model,
            "shape": {"accelerator": run.accelerator, "count": run.gpus,
                      "precision": run.precision},
            "region": "GLOBAL",
            "autoscaler": {"policy": "static", "replicas": 1},
            "max_concurrency": run.max_num_seqs,
            "max_num_batched_tokens": run.max_batched_tokens,
            "serving_engine": serving_engine,
            "traffic": {"arrivals": {"kind": "trace", "path": str(trace)}},
        }],
    }


def simulate(run: MeasuredRun, params: PerfParams | None = None,
             serving_engine: str = "vllm", engine: str = "fast") -> list[dict[str, float]]:
    """capsim's per-stage statistics of ``run`` (seconds; ``ok`` = share completed).

    ``params``: price the run with these constants as the profile's
    ``run.precision`` path instead of ``serving_engine``'s (written as a
    profile file, as ``capsim calibrate`` writes them).
    """
    import sim
    from sim.scenario.loader import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        trace, windows = _trace(run, Path(tmp))
        if params is not None:
            profile = Path(tmp) / "profile.json"
            doc = profile_document(_base_name(serving_engine), {run.precision: params})
            profile.write_text(json.dumps(doc), encoding="utf-8")
            serving_engine = str(profile)
        result = sim.run(load_scenario(scenario(run, trace, serving_engine, engine)))
    return stage_stats(result.requests, windows)


def _base_name(serving_engine: str) -> str:
    return serving_engine if serving_engine in BUILTIN else "vllm"


def stage_stats(q: pd.DataFrame, windows: Sequence[tuple[float, float]]) -> list[dict[str, float]]:
    """Mean and p99 latencies of the requests arriving in each window."""
    out = []
    for t0, t1 in windows:
        s = q[(q.arrival_s >= t0) & (q.arrival_s < t1)]
        ok = s[s.status == "ok"]
        out.append({
            "ok": len(ok) / max(len(s), 1),
            "ttft_mean": float(ok.ttft_s.mean()), "ttft_p99": float(ok.ttft_s.quantile(0.99)),
            "tpot_mean": float(ok.tpot_s.mean()), "e2e_mean": float(ok.e2e_s.mean()),
            "e2e_p99": float(ok.e2e_s.quantile(0.99)),
        })
    return out


def sustained(stats: dict[str, float]) -> bool:
    """Whether capsim served the stage: every request completed, TTFT p99 under 2 s."""
    return stats["ok"] >= 0.999 and stats["ttft_p99"] < 2.0


def error_table(runs: Sequence[MeasuredRun], params: PerfParams | None = None,
                serving_engine: str = "vllm", engine: str = "fast") -> pd.DataFrame:
    """One row per run and stage: signed % error of each metric, and whether it was sustained."""
    rows = []
    for run in runs:
        got_all = simulate(run, params, serving_engine, engine)
        for i, (st, got) in enumerate(zip(run.stages, got_all, strict=True)):
            row: dict[str, Any] = {"run": run.label, "stage": f"{st.rate_rps:g} req/s",
                                   "set": "fit" if run.fit else "held out", "stage_index": i}
            for m in METRICS:
                row[m] = 100.0 * (got[m] / st.measured[m] - 1.0) if got["ok"] > 0 else math.inf
            row["sustained"] = sustained(got)
            rows.append(row)
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Median |error| % of each metric over the table's rows, and stages not sustained."""
    out = {m: float(table[m].abs().median()) for m in METRICS}
    out["not_sustained"] = float((~table["sustained"]).sum())
    return out


# --- fitting -----------------------------------------------------------------

# (field, lower, upper): the constants the fit moves, within physical bounds.
FREE = (
    ("bandwidth_efficiency", 0.5, 1.0),
    ("kv_bandwidth_efficiency", 0.2, 1.0),
    ("compute_default", 0.2, 1.0),
    ("gemm_half_tokens", 0.0, 512.0),
    ("step_overhead_s", 0.0, 0.005),
    ("allreduce_latency_s", 0.0, 50e-6),
)


def _with(base: PerfParams, x: Sequence[float]) -> PerfParams:
    values = dict(zip((f for f, _, _ in FREE), x, strict=True))
    compute = values.pop("compute_default")
    return base.with_(compute_efficiency={"default": compute}, **values)


def _vector(p: PerfParams) -> list[float]:
    values = {"compute_default": p.efficiency("default"),
              **{f: getattr(p, f) or 0.0 for f, _, _ in FREE if f != "compute_default"}}
    values["kv_bandwidth_efficiency"] = p.kv_efficiency
    return [float(values[f]) for f, _, _ in FREE]


def loss(runs: Sequence[MeasuredRun], params: PerfParams) -> float:
    """Mean |log error| of mean TTFT, TPOT and E2E over the runs' stages."""
    total, n = 0.0, 0
    for run in runs:
        for st, got in zip(run.stages, simulate(run, params), strict=True):
            for m in ("ttft_mean", "tpot_mean", "e2e_mean"):
                value = got[m] if got["ok"] > 0 and math.isfinite(got[m]) else 1e3
                total += abs(math.log(max(value, 1e-9) / st.measured[m]))
                n += 1
    return total / n


def fit(runs: Sequence[MeasuredRun], start: PerfParams = VLLM_BF16,
        iterations: int = 150, report: Callable[[str], None] | None = None,
        free: Sequence[tuple[str, float, float]] = FREE) -> PerfParams:
    """Constants of ``free`` (default :data:`FREE`) minimising :func:`loss`
    (scipy's Nelder–Mead in the unit box); the others keep ``start``'s values."""
    lo = np.array([b for _, b, _ in free])
    hi = np.array([b for _, _, b in free])
    names = [f for f, _, _ in free]

    def params_at(u: np.ndarray) -> PerfParams:
        x = dict(zip(names, lo + (hi - lo) * np.clip(u, 0.0, 1.0), strict=True))
        full = [x.get(f, v) for (f, _, _), v in zip(FREE, _vector(start), strict=True)]
        return _with(start, full)

    def f(u: np.ndarray) -> float:
        penalty = float(np.sum(np.maximum(0.0, -u) + np.maximum(0.0, u - 1.0)))
        return loss(runs, params_at(u)) + penalty

    u0 = (np.array([v for (f, _, _), v in zip(FREE, _vector(start), strict=True)
                    if f in names]) - lo) / (hi - lo)
    n = len(u0)
    simplex = [u0] + [u0 + 0.15 * np.eye(n)[i] * (1 if u0[i] < 0.85 else -1) for i in range(n)]
    calls = [0]

    def progress(intermediate_result: OptimizeResult) -> None:
        if report and calls[0] % 10 == 0:
            report(f"iteration {calls[0]}: loss {intermediate_result.fun:.4f}")
        calls[0] += 1

    best = minimize(f, u0, method="Nelder-Mead", callback=progress,
                    options={"initial_simplex": np.array(simplex), "maxiter": iterations})
    return params_at(best.x)


# --- H200 against H100 -------------------------------------------------------

def generation_ratios(serving_engine: str = "vllm") -> pd.DataFrame:
    """H200/H100 maximum throughput, published (TensorRT-LLM v0.17, FP8) and modelled.

    Each pair is one row of the table at the same model, TP and lengths on both
    GPUs; the model's throughput is taken at the concurrency limit (where it
    peaks) with TensorRT-LLM's batch and token limits, the profile's constants.
    """
    from sim.errors import InputError
    from sim.perf import calibrate as C
    from sim.perf.shape import Shape

    rows = {(r.model, r.gpus, r.input_tokens, r.output_tokens, r.accelerator): r.published
            for r in C.trtllm_rows() if r.precision == "FP8"}
    profile = get_profile(serving_engine)

    def model(key: tuple[str, int, int, int, str]) -> float | None:
        m, g, i, o, acc = key
        params = profile.params("FP8").with_(prefill_chunk=C.TRTLLM_TOKENS_PER_ITERATION)
        try:
            shape = Shape(m, acc, g, "FP8", max_concurrency=C.TRTLLM_MAX_BATCH, params=params,
                          serving_engine=profile)
        except InputError:
            return None
        return shape.throughput(shape.concurrency_limit(i, o), i, o)

    out = []
    for key, h200 in rows.items():
        if key[4] != "H200_141GB" or (*key[:4], "H100_80GB") not in rows:
            continue
        h100_key = (*key[:4], "H100_80GB")
        a, b = model(key), model(h100_key)
        if not a or not b:
            continue
        size = "70B" if "70b" in key[0] else "8B"
        out.append({"row": f"{size} TP{key[1]} {key[2]}/{key[3]}",
                    "published": h200 / rows[h100_key], "model": a / b})
    return pd.DataFrame(out)


# --- report ------------------------------------------------------------------

def markdown(table: pd.DataFrame) -> str:
    lines = ["| run | stage | set | TTFT mean | TTFT p99 | TPOT mean | E2E mean | E2E p99 | "
             "sustained |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in table.itertuples(index=False):
        cells = " | ".join(f"{getattr(r, m):+.1f} %" for m in METRICS)
        lines.append(f"| {r.run} | {r.stage} | {r.set} | {cells} | "
                     f"{'yes' if r.sustained else '**no**'} |")
    return "\n".join(lines)


def section(table: pd.DataFrame, exact: pd.DataFrame, ratios: pd.DataFrame | None = None) -> str:
    """The docs/validation.md section, generated (``table``: fast engine, ``exact``: exact)."""
    ratios = generation_ratios() if ratios is None else ratios
    ratio_err = (ratios["model"] / ratios["published"] - 1.0).abs()
    held = table[table["set"] == "held out"]
    s_all, s_held = summary(table), summary(held)

    def line(name: str, s: dict[str, float]) -> str:
        return (f"| {name} | {s['ttft_mean']:.1f} % | {s['ttft_p99']:.1f} % | "
                f"{s['tpot_mean']:.1f} % | {s['e2e_mean']:.1f} % | {s['e2e_p99']:.1f} % | "
                f"{int(s['not_sustained'])} |")

    return "\n".join([
        SECTION, "",
        "<!-- generated by `python -m sim.perf.validate --write`; do not edit by hand -->", "",
        "Measured vLLM 0.15.1 runs (Llama-3.1-8B-Instruct and 70B-Instruct, BF16, H100; "
        "source, settings and licence in `sim/catalog/data/" + DATA + "`) replayed through "
        "`sim.run` with the scenario defaults (the fast engine; the exact engine's medians "
        "below the table) and the default `serving_engine: vllm`: each "
        "run's load stages back to back at their measured rates (evenly spaced arrivals, as "
        "the load generator's constant-rate stages), the measured prompt and output lengths, "
        "`max_num_seqs` as `max_concurrency`, the run's `max_num_batched_tokens`, one "
        "replica.  Signed error of capsim against "
        "the measurement, per stage; *fit* rows are the ones the vLLM profile's constants "
        "were fitted on (`python -m sim.perf.validate --fit`), every other row is held out "
        "(other workloads, scheduler budgets, model size and GPU count).", "",
        markdown(table), "",
        "| median \\|error\\| | TTFT mean | TTFT p99 | TPOT mean | E2E mean | E2E p99 | "
        "stages not sustained |", "|---|---:|---:|---:|---:|---:|---:|",
        line("held out, fast engine", s_held), line("all, fast engine", s_all),
        line("held out, exact engine", summary(exact[exact["set"] == "held out"])),
        line("all, exact engine", summary(exact)), "",
        "Targets: median |error| ≤ 10 % on mean E2E and mean TPOT, ≤ 20 % on mean TTFT, and "
        "no saturation where the server sustained the load: met on the held-out runs by "
        "both engines (they price every iteration with the same `Shape.iteration_time`).  "
        "The reasoning run (4 req/s, ~1,390-token outputs) and the 70B run on four GPUs are "
        "sustained, as on the server.  Residual error: TPOT is over-predicted by about 25 % "
        "at 20 req/s on one H100 (the stage at ~45 concurrent requests, where prefill takes "
        "the largest share of the iterations) and by 73 % on the 70B run at 10 req/s, and "
        "under-predicted by 19 % on the reasoning run (long contexts: the KV-read efficiency "
        "sits at the bound of its fit, 1.0, so long-context decode cannot get cheaper); both "
        "point at prefill priced too high inside mixed iterations and at tensor-parallel "
        "prefill on four GPUs, which no fit run covers.  TTFT p99 is under-predicted by "
        "about 20 % (the replay's arrivals are exactly evenly spaced; the server also pays "
        "tokenisation and streaming jitter) and TTFT on two GPUs by 17–25 %; the inputs "
        "replayed are the configured lengths (the sources publish no measured input length).  "
        "A100, H200, B200, FP8 and SGLang have no replayable measurement here (throughput.md "
        "§7 states their uncertainty).", "",
        "H200 against H100: no vLLM run on H200 with published rates was found, so the "
        "profile's H100-fitted efficiencies are applied to the H200's datasheet bandwidth and "
        f"FLOP/s.  Checked against the {len(ratios)} FP8 row pairs (same model, TP and "
        "lengths on both GPUs) of TensorRT-LLM's v0.17 maximum-throughput table: published "
        f"H200/H100 median {ratios['published'].median():.2f}, the vllm profile "
        f"{ratios['model'].median():.2f}, median |error| of the ratio "
        f"{100 * ratio_err.median():.0f} % (max {100 * ratio_err.max():.0f} %, on long outputs "
        "of 70B on one GPU, where the H200's larger HBM holds more KV cache).  B200 has no "
        "measurement at all here.", "",
    ])


def write_section(path: Path, text: str) -> None:
    """Replace (or append) the section in ``path``, leaving the rest of the file alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Validation\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1:] if nxt >= 0 else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.perf.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="re-fit the vLLM BF16 constants")
    parser.add_argument("--write", action="store_true",
                        help="rewrite the section of docs/validation.md")
    args = parser.parse_args(argv)
    runs = measured_runs()
    params = None
    if args.fit:
        params = fit([r for r in runs if r.fit], report=print)
        print("fitted:", {f: round(v, 6) for (f, _, _), v in zip(FREE, _vector(params),
                                                                   strict=True)})
    table = error_table(runs, params)
    exact = error_table(runs, params, engine="exact")
    text = section(table, exact)
    print(text)
    if args.write:
        write_section(Path("docs") / "validation.md", text)  # from a checkout


if __name__ == "__main__":
    main()
