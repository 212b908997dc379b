"""``capsim calibrate``: fit a serving-engine profile to the user's own load test.

Input, one or more files:

* a CSV with one row per load level: ``rate_rps`` (offered requests/s),
  ``input_tokens``, ``output_tokens`` (means), ``ttft_mean_ms``,
  ``tpot_mean_ms`` (or ``itl_mean_ms``), ``e2e_mean_ms``, and optionally
  ``duration_s`` (default 300) and ``arrivals`` (``poisson``, the default, or
  ``constant``);
* the JSON result of vLLM's ``benchmark_serving.py --save-result`` /
  ``vllm bench serve --save-result`` (one file per request rate; Poisson
  arrivals at ``request_rate``, means from ``mean_ttft_ms``,
  ``mean_tpot_ms``, ``mean_e2el_ms``, token counts over ``completed``).

Every load level is replayed through ``sim.run`` (one replica of the given
shape, ``--max-concurrency`` as the server's ``max_num_seqs``); the profile's
bandwidth efficiency, compute efficiency and per-iteration overhead are fitted
on all levels but the highest-rate one, which is held out and scored.  The
result is a profile file (JSON) a scenario names with ``serving_engine:``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim.catalog.models import get_model
from sim.errors import InputError
from sim.perf import validate as V
from sim.perf.profiles import BUILTIN, ENGINES, get_profile, profile_document

FITTED = ("bandwidth_efficiency", "compute_default", "step_overhead_s")


def _number(row: dict[str, Any], key: str, shown: str, where: str) -> float:
    try:
        value = float(row[key])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"missing or non-numeric {key!r}", file=shown, where=where) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{key} must be a number > 0 (got {row[key]!r})", file=shown, where=where)
    return value


def _level(rate: float, inp: float, out: float, ttft: float, tpot: float, e2e: float,
           duration: float, arrivals: str) -> dict[str, Any]:
    return {"rate_rps": rate, "input_tokens": round(inp), "output_tokens": max(2, round(out)),
            "duration_s": duration, "arrivals": arrivals,
            "measured": {"ttft_mean": ttft / 1e3, "tpot_mean": tpot / 1e3, "e2e_mean": e2e / 1e3}}


def read_levels(path: Path) -> list[dict[str, Any]]:
    """The load levels of one file (CSV or benchmark_serving JSON)."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", file=shown) from None
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc.msg}", file=shown,
                             where=f"line {exc.lineno}") from None
        if not isinstance(doc, dict):
            raise InputError("expected a benchmark_serving result object", file=shown)
        rate = doc.get("request_rate")
        if rate in (None, "inf") or (isinstance(rate, float) and math.isinf(rate)):
            raise InputError("request_rate must be finite (an open-loop run at a set rate)",
                             file=shown, where="request_rate")
        done = _number(doc, "completed", shown, "completed")
        return [_level(_number(doc, "request_rate", shown, "request_rate"),
                       _number(doc, "total_input_tokens", shown, "total_input_tokens") / done,
                       _number(doc, "total_output_tokens", shown, "total_output_tokens") / done,
                       _number(doc, "mean_ttft_ms", shown, "mean_ttft_ms"),
                       _number(doc, "mean_tpot_ms", shown, "mean_tpot_ms"),
                       _number(doc, "mean_e2el_ms", shown, "mean_e2el_ms"),
                       _number(doc, "duration", shown, "duration"), "poisson")]
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    if not rows:
        raise InputError("no load level (expected a header and one row per rate)", file=shown)
    levels = []
    for i, row in enumerate(rows, start=2):
        where = f"line {i}"
        tpot_key = "tpot_mean_ms" if row.get("tpot_mean_ms") else "itl_mean_ms"
        arrivals = (row.get("arrivals") or "poisson").strip()
        if arrivals not in ("poisson", "constant"):
            raise InputError(f"arrivals must be poisson or constant (got {arrivals!r})",
                             file=shown, where=where)
        duration = _number(row, "duration_s", shown, where) if row.get("duration_s") else 300.0
        rate, inp, out, ttft, tpot, e2e = (_number(row, k, shown, where) for k in (
            "rate_rps", "input_tokens", "output_tokens", "ttft_mean_ms", tpot_key, "e2e_mean_ms"))
        levels.append(_level(rate, inp, out, ttft, tpot, e2e, duration, arrivals))
    return levels


def runs_of(levels: Sequence[dict[str, Any]], model: str, accelerator: str, gpus: int,
            precision: str, max_concurrency: int) -> list[V.MeasuredRun]:
    """One measured run per load level."""
    out = []
    for i, lv in enumerate(levels):
        stage = V.Stage(lv["rate_rps"], lv["duration_s"], lv["input_tokens"], lv["output_tokens"],
                        lv["measured"])
        out.append(V.MeasuredRun(f"level{i}", f"{lv['rate_rps']:g} req/s", model, accelerator,
                                 gpus, precision, max_concurrency, 2048, (stage,),
                                 arrivals=lv["arrivals"]))
    return out


def _errors(runs: Sequence[V.MeasuredRun], params: Any, base: str) -> list[dict[str, float]]:
    rows = []
    for run in runs:
        got = V.simulate(run, params, base)[0]
        st = run.stages[0]
        rows.append({m: 100.0 * (got[m] / st.measured[m] - 1.0)
                     for m in ("ttft_mean", "tpot_mean", "e2e_mean")})
    return rows


def calibrate(files: Sequence[str], model: str, accelerator: str, gpus: int,
              precision: str | None, base: str, max_concurrency: int,
              out: Path, report: Any = print) -> dict[str, Any]:
    """Fit, score and write the profile; returns the profile document."""
    if base not in BUILTIN:
        raise InputError(f"unknown serving engine {base!r} (known: {', '.join(ENGINES)})")
    precision = precision or get_model(model).native_precision
    levels = [lv for f in files for lv in read_levels(Path(f))]
    levels.sort(key=lambda lv: lv["rate_rps"])
    runs = runs_of(levels, model, accelerator, gpus, precision, max_concurrency)
    fit_runs, held = (runs[:-1], runs[-1:]) if len(runs) >= 2 else (runs, [])
    start = get_profile(base).params(precision)
    free = tuple(f for f in V.FREE if f[0] in FITTED)
    params = V.fit(fit_runs, start=start, free=free, iterations=60)
    fit_err = _errors(fit_runs, params, base)
    held_err = _errors(held, params, base)

    def median_abs(rows: list[dict[str, float]], m: str) -> float:
        values = sorted(abs(r[m]) for r in rows)
        return values[len(values) // 2] if values else math.nan

    metrics = ("ttft_mean", "tpot_mean", "e2e_mean")
    fit_pct = {m: median_abs(fit_err, m) for m in metrics}
    fit_doc: dict[str, Any] = {
        "model": model, "accelerator": accelerator, "count": gpus, "precision": precision,
        "max_concurrency": max_concurrency, "files": [str(f) for f in files],
        "fit_levels": [r.stages[0].rate_rps for r in fit_runs],
        "held_out_levels": [r.stages[0].rate_rps for r in held],
        "fit_error_pct": fit_pct,
        "held_out_error_pct": {m: held_err[0][m] for m in metrics} if held_err else None,
    }
    doc = profile_document(base, {precision: params}, fit_doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    report(f"fitted on {len(fit_runs)} load level(s): " + ", ".join(
        f"{k} {getattr(params, k) if k != 'compute_default' else params.efficiency('default'):.4g}"
        for k in FITTED))
    report("fit |error| (median): " + ", ".join(
        f"{m} {v:.1f} %" for m, v in fit_pct.items()))
    if held_err:
        report(f"held out ({held[0].stages[0].rate_rps:g} req/s): " + ", ".join(
            f"{m} {v:+.1f} %" for m, v in held_err[0].items()))
    else:
        report("held out: none (one load level; give two or more to score a held-out one)")
    report(f"wrote {out} (name it in a scenario: serving_engine: {out.name})")
    return doc


def add_parser(sub: Any) -> None:
    c = sub.add_parser("calibrate", help="fit a serving-engine profile to your own load test",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("files", nargs="+", help="load-test CSV or benchmark_serving JSON files")
    c.add_argument("--model", required=True, help="catalog model name")
    c.add_argument("--accelerator", required=True, help="catalog accelerator name")
    c.add_argument("--count", type=int, default=1, help="GPUs per replica (tensor parallel)")
    c.add_argument("--precision", help="BF16, FP8 or FP4 (default: the model's native)")
    c.add_argument("--serving-engine", default="vllm", choices=ENGINES,
                   help="profile to start from and to keep for what the test cannot show")
    c.add_argument("--max-concurrency", type=int, default=256,
                   help="the server's max_num_seqs during the test (default 256)")
    c.add_argument("--out", default="profile.json", help="profile file to write")
    c.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.count < 1 or args.max_concurrency < 1:
        raise InputError("--count and --max-concurrency must be ≥ 1")
    calibrate(args.files, args.model, args.accelerator, args.count, args.precision,
              args.serving_engine, args.max_concurrency, Path(args.out))
    return 0
