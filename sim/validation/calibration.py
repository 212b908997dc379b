"""The calibration tables as users run them: TensorRT-LLM's rows through ``sim.run``.

docs/throughput.md compares the closed-form ``Shape.max_throughput`` with
TensorRT-LLM v0.17's published maximum throughput.  A planner gets neither:
they get what the engine serves.  For every row of the table, this runs one
replica of the row's shape (``serving_engine: trtllm``) through the exact
engine, overloaded at fixed input/output lengths, and measures the output
tokens/s it sustains, twice:

* **benchmark limits**: the limits trtllm-bench ran with (a batch of up to
  4096, 8192 tokens per iteration), so the difference from the closed form is
  the engine's, not the configuration's;
* **scenario defaults**: nothing but the shape set — the engine limits a
  scenario gets when it does not set them (docs/catalog.md), so the
  difference from the published figure is what a user running the defaults
  sees.

``python -m sim.validation.calibration`` prints the table; ``--write`` puts it
into docs/throughput.md between its markers (about ten minutes on one core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sim
from sim.perf import calibrate as C
from sim.perf.calibrate import BenchRow
from sim.perf.profiles import get_profile
from sim.perf.shape import Shape
from sim.validation.markers import replace_between

DOC = Path(__file__).resolve().parents[2] / "docs" / "throughput.md"
BEGIN, END = "<!-- engine-calibration:begin -->", "<!-- engine-calibration:end -->"
OVERLOAD = 1.5  # arrivals at this multiple of the closed-form capacity


def _shape(row: BenchRow, bench: bool) -> Shape:
    if bench:
        return C.bench_shape(row)
    params = get_profile("trtllm").params(row.precision)
    return Shape(row.model, row.accelerator, row.gpus, row.precision, params=params,
                 serving_engine="trtllm")


def scenario(row: BenchRow, bench: bool, seed: int = 1) -> tuple[dict[str, Any], float, float]:
    """(scenario, warm-up end s, measurement end s) that overloads one replica of ``row``."""
    shape = _shape(row, bench)
    i, o = row.input_tokens, row.output_tokens
    capacity = shape.max_throughput(i, o)  # output tokens/s, closed form
    concurrency = shape.concurrency_limit(i, o)
    # one "generation": the time a request spends in a saturated batch
    generation = concurrency * o / capacity
    warmup = max(2.0 * generation, 30.0)
    end = warmup + max(4.0 * generation, 60.0)
    dep: dict[str, Any] = {
        "name": "row", "model": row.model,
        "shape": {"accelerator": row.accelerator, "count": row.gpus,
                  "precision": row.precision},
        "serving_engine": "trtllm",
        "autoscaler": {"policy": "static", "replicas": 1},
        "max_queue": concurrency,
        "traffic": {"arrivals": {"kind": "poisson", "rps": OVERLOAD * capacity / o},
                    "input_tokens": {"kind": "fixed", "value": i},
                    "output_tokens": {"kind": "fixed", "value": o}},
    }
    if bench:
        dep["max_concurrency"] = C.TRTLLM_MAX_BATCH
        dep["max_num_batched_tokens"] = C.TRTLLM_TOKENS_PER_ITERATION
    doc = {"name": "calibration-row", "engine": "exact", "seed": seed,
           "duration": f"{end:.3f}s", "clients": {"max_retries": 0}, "deployments": [dep]}
    return doc, warmup, end


def tokens_per_s(requests: pd.DataFrame, start: float, end: float) -> float:
    """Output tokens produced in [start, end) per second.

    Each served request's first token at ``first_token_s``, the rest spread
    evenly until ``finish_s`` (a fixed-length decode in a saturated batch).
    """
    ok = requests[requests["status"] == "ok"]
    first = ok["first_token_s"].to_numpy()
    finish = ok["finish_s"].to_numpy()
    rest = ok["output_tokens"].to_numpy() - 1.0
    tokens = ((first >= start) & (first < end)).astype(float)
    span = finish - first
    overlap = np.clip(np.minimum(finish, end) - np.maximum(first, start), 0.0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(span > 0, overlap / span, ((finish >= start) & (finish < end)))
    return float((tokens + rest * share).sum() / (end - start))


def served(row: BenchRow, bench: bool) -> float:
    """Output tokens/s the exact engine sustains for ``row``."""
    doc, warmup, end = scenario(row, bench)
    return tokens_per_s(sim.run(doc).requests, warmup, end)


def table(rows: list[BenchRow] | None = None) -> pd.DataFrame:
    """Per row: published, closed form and exact engine (both limits), in output tokens/s."""
    rows = C.trtllm_rows() if rows is None else rows
    out = []
    for n, row in enumerate(rows, 1):
        print(f"[{n}/{len(rows)}] {row.label}", file=sys.stderr, flush=True)
        out.append({"row": row.label, "published": row.published,
                    "closed_form": C.predict(row),
                    "engine_bench": served(row, bench=True),
                    "engine_defaults": served(row, bench=False)})
    return pd.DataFrame(out)


def errors(t: pd.DataFrame) -> pd.DataFrame:
    """Signed errors (%) against the published figure."""
    return pd.DataFrame({c: 100.0 * (t[c] / t["published"] - 1.0)
                         for c in ("closed_form", "engine_bench", "engine_defaults")})


def markdown(t: pd.DataFrame) -> str:
    e = errors(t)
    lines = ["<!-- generated by `python -m sim.validation.calibration --write`; "
             "do not edit by hand -->", "",
             "| row | published tok/s | closed form | exact engine, benchmark limits | "
             "exact engine, scenario defaults |", "|---|---:|---:|---:|---:|"]
    for r, er in zip(t.itertuples(index=False), e.itertuples(index=False), strict=True):
        lines.append(f"| {r.row} | {r.published:,.0f} | {er.closed_form:+.1f} % | "
                     f"{er.engine_bench:+.1f} % | {er.engine_defaults:+.1f} % |")
    a = e.abs()
    lines += ["", "| median \\|error\\| (max) | closed form | exact engine, benchmark limits | "
              "exact engine, scenario defaults |", "|---|---:|---:|---:|",
              f"| {len(t)} rows | {a.closed_form.median():.1f} % ({a.closed_form.max():.0f} %) | "
              f"{a.engine_bench.median():.1f} % ({a.engine_bench.max():.0f} %) | "
              f"{a.engine_defaults.median():.1f} % ({a.engine_defaults.max():.0f} %) |"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.validation.calibration",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="update docs/throughput.md")
    args = ap.parse_args(argv)
    text = markdown(table())
    print(text)
    if args.write:
        replace_between(DOC, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
