"""Check the ``trtllm`` profile against TensorRT-LLM's published benchmark tables.

``python -m sim.perf.calibrate`` prints, for the current defaults, the
per-row table (row, published, model, error %) of

* TensorRT-LLM v0.17's max-load offline throughput (Llama 3.1 8B/70B, TP
  1/2/4, H200 & H100 FP8, A100 FP16): the calibration set; and
* the TP 8 rows of the same table: a hold-out for the USL extrapolation,

plus the 70B capacity cliff, and LambdaLabs' vLLM 0.5.4 sweep as published
(not compared in absolute terms: see docs/throughput.md).  ``--fit`` re-fits
the calibrated constants (Nelder–Mead on the mean absolute log error);
``--markdown FILE`` writes the tables for docs/throughput.md.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from sim.catalog._data import read_csv, read_records
from sim.perf.params import TRTLLM as DEFAULT
from sim.perf.params import PerfParams
from sim.perf.shape import Shape

# trtllm-bench caps the engine's max batch size at 4096 (finetune_setting in
# tensorrt_llm/bench/build/tuning.py) and otherwise sizes it to the requests
# whose ISL+OSL fit in the KV cache - our KV limit; its example run reports
# "Max Runtime Tokens: 8192" per iteration (perf-overview.md).
TRTLLM_MAX_BATCH = 4096
TRTLLM_TOKENS_PER_ITERATION = 8192

_TRT_COLUMNS = {
    "H200_141GB_fp8": ("H200_141GB", "FP8"),
    "H100_80GB_fp8": ("H100_80GB", "FP8"),
    "A100_SXM4_80GB_fp16": ("A100_80GB", "BF16"),  # FP16: same bytes and rate as BF16
}
_MODELS = {
    "Llama-3.1-8B": "llama-v3p1-8b-instruct",
    "Llama-3.1-70B": "llama-v3p1-70b-instruct",
}


@dataclass(frozen=True)
class BenchRow:
    source: str  # which table
    model: str
    accelerator: str
    precision: str
    gpus: int
    input_tokens: int
    output_tokens: int
    published: float  # output tokens/s of the replica

    @property
    def label(self) -> str:
        size = "70B" if "70b" in self.model else "8B"
        io = f"{self.input_tokens}/{self.output_tokens}"
        return f"{size} {self.gpus}×{self.accelerator} {self.precision} {io}"


def trtllm_rows(table: str = "trtllm_v0.17_perf_overview_llama31.csv") -> list[BenchRow]:
    """Rows of a TensorRT-LLM v0.17 throughput table (TP 1-4 by default)."""
    rows = []
    for r in read_records(table):
        for column, (accelerator, precision) in _TRT_COLUMNS.items():
            if r[column]:  # blank = not reported
                rows.append(BenchRow("trtllm", _MODELS[r["model"]], accelerator, precision,
                                     int(r["tp"]), int(r["isl"]), int(r["osl"]), float(r[column])))
    return rows


def trtllm_tp8_rows() -> list[BenchRow]:
    """The TP 8 rows of the same table: a hold-out set for the USL extrapolation."""
    return trtllm_rows("trtllm_v0.17_perf_overview_llama31_tp8.csv")


def lambda_table() -> pd.DataFrame:
    """LambdaLabs' vLLM 0.5.4 sweep: tok/s by TP degree and its ratio to TP 1 (per GPU)."""
    table = read_csv("lambda_vllm_v0.5.4_tp_scaling.csv")
    table = table[table["model"].isin(["Meta-Llama-3.1-8B-FP8", "Meta-Llama-3.1-70B-Instruct-FP8"])]
    base = table[table["n_gpus_tp"] == 1].set_index(["gpu", "model"])["output_tok_s"]
    per_gpu = table["output_tok_s"] / table["n_gpus_tp"]
    ratio = per_gpu / [base[(g, m)] for g, m in zip(table["gpu"], table["model"], strict=True)]
    return table.assign(per_gpu_vs_tp1=ratio.to_numpy()).reset_index(drop=True)


@dataclass(frozen=True)
class OnlineRow:
    """One low-load row of TensorRT-LLM's online-serving table (BF16)."""

    model: str
    accelerator: str
    gpus: int
    input_tokens: int
    output_tokens: int
    qps: float
    itl_s: float  # published mean inter-token latency

    @property
    def label(self) -> str:
        size = "70B" if "70b" in self.model else "8B"
        return (f"{size} {self.gpus}×{self.accelerator} BF16 {self.input_tokens}/"
                f"{self.output_tokens} @ {self.qps:g} req/s")


# Rows at 2 and 4 req/s: below saturation, where the inter-token latency is a
# small-batch decode step (at 8+ req/s queueing and prefill bursts dominate).
ONLINE_QPS = (2.0, 4.0)


def online_rows() -> list[OnlineRow]:
    rows = []
    for r in read_records("trtllm_v0.14_online_serving_llama31.csv"):
        if r["qps"] != "inf" and float(r["qps"]) in ONLINE_QPS:
            rows.append(OnlineRow(_MODELS[r["model"]], r["gpu"], int(r["tp"]), int(r["isl"]),
                                  int(r["osl"]), float(r["qps"]), float(r["itl_ms"]) / 1e3))
    return rows


def predict_itl(row: OnlineRow, params: PerfParams = DEFAULT) -> float:
    """Mean inter-token latency at an offered load, by a fixed point.

    n decoding requests = λ·(out − 1)·ITL (Little's law); prefill takes a share
    ρ = λ·in/P of the time, stretching every iteration: ITL = step(n) / (1 − ρ),
    with step(n) interpolated between whole batch sizes.
    """
    shape = Shape(row.model, row.accelerator, row.gpus, "BF16", params=params,
                  serving_engine="trtllm")
    rho = row.qps * float(shape.prefill_seconds(row.input_tokens))
    context = row.input_tokens + row.output_tokens / 2

    def step(n: float) -> float:
        lo = max(1, math.floor(n))
        t_lo = shape.decode_step_time(lo, lo * context)
        t_hi = shape.decode_step_time(lo + 1, (lo + 1) * context)
        return t_lo + (t_hi - t_lo) * max(0.0, n - lo)

    itl = step(1) / (1.0 - rho)
    for _ in range(100):
        itl = step(max(1.0, row.qps * (row.output_tokens - 1) * itl)) / (1.0 - rho)
    return itl


def itl_table(params: PerfParams = DEFAULT) -> pd.DataFrame:
    out = []
    for row in online_rows():
        model = predict_itl(row, params)
        out.append({"row": row.label, "published": row.itl_s * 1e3, "model": model * 1e3,
                    "error_pct": 100.0 * (model / row.itl_s - 1.0)})
    return pd.DataFrame(out)


def fit_overhead(params: PerfParams = DEFAULT) -> float:
    """The per-iteration overhead (s) minimising mean |log error| of the ITL rows."""
    rows = online_rows()

    def err(overhead: float) -> float:
        p = params.with_(step_overhead_s=overhead)
        return sum(abs(math.log(predict_itl(r, p) / r.itl_s)) for r in rows) / len(rows)

    lo, hi = 0.0, 0.010  # golden-section search over 0-10 ms
    g = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if err(a) < err(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2.0


def bench_shape(row: BenchRow, params: PerfParams = DEFAULT) -> Shape:
    """The shape the benchmark ran, with its engine's batch and chunk limits."""
    p = params.with_(prefill_chunk=TRTLLM_TOKENS_PER_ITERATION)
    return Shape(row.model, row.accelerator, row.gpus, row.precision,
                 max_concurrency=TRTLLM_MAX_BATCH, params=p, serving_engine="trtllm")


def predict(row: BenchRow, params: PerfParams = DEFAULT) -> float:
    """Model output tokens/s for a benchmark row: max_throughput at its ISL/OSL."""
    return bench_shape(row, params).max_throughput(row.input_tokens, row.output_tokens)


def error_table(rows: Sequence[BenchRow], params: PerfParams = DEFAULT) -> pd.DataFrame:
    """One line per row: label, published, model, error % (model vs published)."""
    out = []
    for row in rows:
        model = predict(row, params)
        out.append({"row": row.label, "published": row.published, "model": model,
                    "error_pct": 100.0 * (model / row.published - 1.0)})
    return pd.DataFrame(out)


def summary(table: pd.DataFrame) -> dict[str, float]:
    err = table["error_pct"].abs()
    return {"rows": float(len(table)), "median_abs_error_pct": float(err.median()),
            "mean_abs_error_pct": float(err.mean()), "max_abs_error_pct": float(err.max())}


def cliff_ratio(params: PerfParams = DEFAULT, accelerator: str = "H100_80GB",
                input_tokens: int = 1000, output_tokens: int = 1000) -> float:
    """Per-GPU throughput of 70B FP8 on 1 GPU over that on 2 (TensorRT-LLM limits)."""
    one, two = (predict(BenchRow("trtllm", "llama-v3p1-70b-instruct", accelerator, "FP8", n,
                                 input_tokens, output_tokens, 1.0), params) for n in (1, 2))
    return one / (two / 2.0)


CLIFF_CASES = ((128, 2048), (500, 2000), (1000, 1000), (2048, 128), (5000, 500))


def published_cliff_ratio(input_tokens: int, output_tokens: int,
                          accelerator: str = "H100_80GB") -> float:
    """The same ratio from the TensorRT-LLM table."""
    def value(n: int) -> float:
        return next(r.published for r in trtllm_rows() if r.gpus == n and r.accelerator ==
                    accelerator and "70b" in r.model and r.input_tokens == input_tokens
                    and r.output_tokens == output_tokens)
    return value(1) / (value(2) / 2.0)


# --- fitting ----------------------------------------------------------------

_FITTED = ("bandwidth_efficiency", "compute_default", "compute_a100", "overlap", "sigma",
           "kappa", "memory_reserve")


def _unpack(z: np.ndarray) -> dict[str, float]:
    """Unconstrained z → parameters in their ranges (logistic / square maps)."""
    def unit(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))
    return {"bandwidth_efficiency": unit(z[0]), "compute_default": unit(z[1]),
            "compute_a100": unit(z[2]), "overlap": unit(z[3]), "sigma": z[4] ** 2,
            "kappa": z[5] ** 2, "memory_reserve": 0.3 * unit(z[6])}


def _pack(p: PerfParams) -> np.ndarray:
    def logit(v: float) -> float:
        v = min(max(v, 1e-4), 1 - 1e-4)
        return math.log(v / (1.0 - v))
    return np.array([logit(p.bandwidth_efficiency), logit(p.efficiency("H100_80GB")),
                     logit(p.efficiency("A100_80GB")), logit(p.overlap), math.sqrt(p.sigma),
                     math.sqrt(p.kappa), logit(p.memory_reserve / 0.3)])


def _params(values: dict[str, float], base: PerfParams) -> PerfParams:
    return base.with_(
        bandwidth_efficiency=values["bandwidth_efficiency"],
        compute_efficiency={"default": values["compute_default"],
                            "A100_80GB": values["compute_a100"]},
        overlap=values["overlap"], sigma=values["sigma"], kappa=values["kappa"],
        memory_reserve=values["memory_reserve"])


def loss(rows: Sequence[BenchRow], params: PerfParams) -> float:
    """Mean absolute log error; a row that does not fit counts as a large error.

    Throughput is taken at the concurrency limit, where max_throughput is
    reached (it is non-decreasing in concurrency; the validation tests check).
    """
    total = 0.0
    for row in rows:
        try:
            shape = bench_shape(row, params)
            limit = shape.concurrency_limit(row.input_tokens, row.output_tokens)
            model = shape.throughput(limit, row.input_tokens, row.output_tokens)
        except Exception:  # the shape no longer fits with these parameters
            model = 0.0
        total += abs(math.log(max(model, 1e-9) / row.published))
    return total / len(rows)


def fit(rows: Sequence[BenchRow] | None = None, start: PerfParams = DEFAULT,
        free: Sequence[str] = _FITTED) -> PerfParams:
    """Fitted constants: those named in ``free`` move, the others keep ``start``'s values."""
    rows = list(rows or trtllm_rows())
    unknown = set(free) - set(_FITTED)
    if unknown:
        raise ValueError(f"cannot fit {sorted(unknown)} (fittable: {', '.join(_FITTED)})")
    fixed = _unpack(_pack(start))

    def values(z: np.ndarray) -> dict[str, float]:
        return {k: (v if k in free else fixed[k]) for k, v in _unpack(z).items()}

    def objective(z: np.ndarray) -> float:
        return loss(rows, _params(values(z), start))

    z = _pack(start)
    for step in (0.5, 0.2, 0.05):  # restarts with a shrinking simplex
        simplex = np.vstack([z, z + step * np.eye(len(z))])
        z = minimize(objective, z, method="Nelder-Mead",
                     options={"initial_simplex": simplex, "maxiter": 300}).x
    return _params(values(z), start)


# --- command line -------------------------------------------------------------

def _markdown(table: pd.DataFrame, unit: str = "tok/s") -> str:
    lines = [f"| row | published {unit} | model {unit} | error % |", "|---|---:|---:|---:|"]
    digits = 1 if unit.startswith("ITL") else 0
    for r in table.itertuples(index=False):
        lines.append(f"| {r.row} | {r.published:,.{digits}f} | {r.model:,.{digits}f} | "
                     f"{r.error_pct:+.1f} |")
    return "\n".join(lines)


def report(params: PerfParams = DEFAULT) -> str:
    """The calibration report (markdown) for ``params``."""
    parts = []
    for title, rows in (("TensorRT-LLM v0.17, TP 1-4 (calibration set)", trtllm_rows()),
                        ("TensorRT-LLM v0.17, 70B TP 8 (hold-out)", trtllm_tp8_rows())):
        table = error_table(rows, params)
        s = summary(table)
        parts.append(f"### {title}\n\n{_markdown(table)}\n\n"
                     f"{int(s['rows'])} rows: median |error| {s['median_abs_error_pct']:.1f} %, "
                     f"mean {s['mean_abs_error_pct']:.1f} %, max {s['max_abs_error_pct']:.1f} %.")
    table = itl_table(params)
    s = summary(table)
    parts.append("### TensorRT-LLM v0.14 online serving: inter-token latency (ms) at 2 and 4 "
                 f"req/s\n\n{_markdown(table, 'ITL ms')}\n\n{int(s['rows'])} rows: median "
                 f"|error| {s['median_abs_error_pct']:.1f} %, mean {s['mean_abs_error_pct']:.1f} %,"
                 f" max {s['max_abs_error_pct']:.1f} %.")
    lines = ["| ISL/OSL | published | model |", "|---|---:|---:|"]
    for i, o in CLIFF_CASES:
        lines.append(f"| {i}/{o} | {published_cliff_ratio(i, o):.2f} | "
                     f"{cliff_ratio(params, 'H100_80GB', i, o):.2f} |")
    parts.append("### 70B capacity cliff on H100 FP8: per-GPU throughput of TP 1 / TP 2\n\n"
                 + "\n".join(lines))
    lam = ["| GPU | model | TP | output tok/s | per GPU vs TP 1 |", "|---|---|---:|---:|---:|"]
    for r in lambda_table().itertuples(index=False):
        lam.append(f"| {r.gpu} | {r.model} | {r.n_gpus_tp} | {r.output_tok_s:,.0f} | "
                   f"{r.per_gpu_vs_tp1:.2f} |")
    parts.append("### vLLM 0.5.4 (LambdaLabs), as published\n\n" + "\n".join(lam))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim.perf.calibrate", description=__doc__)
    parser.add_argument("--fit", action="store_true", help="re-fit the calibrated constants")
    parser.add_argument("--markdown", metavar="FILE", help="write the report to FILE")
    args = parser.parse_args(argv)
    params = DEFAULT
    if args.fit:
        # The max-load rows barely see the overhead and the ITL rows barely see
        # anything else, so fit them in turn: max-load, overhead, max-load.
        params = fit()
        params = params.with_(step_overhead_s=fit_overhead(params))
        params = fit(start=params)
        params = params.with_(step_overhead_s=fit_overhead(params))
        fitted = {k: round(v, 4) for k, v in _unpack(_pack(params)).items()}
        print("fitted:", fitted, "step_overhead_s", round(params.step_overhead_s, 5))
        before, after = loss(trtllm_rows(), DEFAULT), loss(trtllm_rows(), params)
        print(f"mean |log error| {after:.4f} (current defaults: {before:.4f})")
    text = report(params)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
