"""The rules that choose a model's ``minimal``, ``throughput`` and ``fast`` shapes.

Candidates: every accelerator type × 1, 2, 4 or 8 GPUs (one node) × the
model's native precision, plus FP8 for a BF16-native model (the usual serving
quantization; FP4 is not assumed to keep quality).  A candidate must fit
(weights + minimum KV cache).  Reference workload: 1000 input / 200 output
tokens, the shape's default max concurrency.

* ``minimal``: lowest USD/hour; ties → higher max throughput, then faster
  decode at concurrency 1.
* ``throughput``: most output tokens per USD (max_throughput / USD per hour).
* ``fast``: the cheapest shape whose decode time per output token at
  concurrency 1 is within 10 % of the lowest (closer is below the model's
  resolution: its low-load inter-token latency errors are 7 % median, 19 %
  max, docs/throughput.md); ties → faster.
"""

from __future__ import annotations

from sim.catalog.accelerators import accelerator_names
from sim.catalog.models import get_model
from sim.catalog.precision import Precision
from sim.errors import InputError
from sim.perf.shape import Shape

COUNTS = (1, 2, 4, 8)
REFERENCE_INPUT = 1000
REFERENCE_OUTPUT = 200
FAST_TOLERANCE = 0.10


def candidate_precisions(model: str) -> tuple[Precision, ...]:
    native = get_model(model).native_precision
    return ("BF16", "FP8") if native == "BF16" else (native,)


def candidates(model: str) -> list[Shape]:
    """Every candidate shape of ``model`` that fits."""
    out = []
    for accelerator in accelerator_names():
        for count in COUNTS:
            for precision in candidate_precisions(model):
                try:
                    out.append(Shape(model, accelerator, count, precision))
                except InputError:
                    continue
    return out


def _decode_time_at_one(shape: Shape) -> float:
    return shape.decode_step_time(1, REFERENCE_INPUT + REFERENCE_OUTPUT / 2)


def _tokens_per_usd(shape: Shape) -> float:
    per_hour = shape.max_throughput(REFERENCE_INPUT, REFERENCE_OUTPUT) * 3600.0
    return per_hour / shape.usd_per_hour


def choose(model: str, preset: str, shapes: list[Shape] | None = None) -> Shape:
    """The shape the rule for ``preset`` picks among ``shapes`` (default: all candidates)."""
    pool = candidates(model) if shapes is None else shapes
    if not pool:
        raise InputError(f"no candidate shape of {model} fits on up to {COUNTS[-1]} GPUs")
    if preset == "minimal":
        return min(pool, key=lambda s: (round(s.usd_per_hour, 6), -round(s.max_throughput(
            REFERENCE_INPUT, REFERENCE_OUTPUT), 6), _decode_time_at_one(s)))
    if preset == "throughput":
        return max(pool, key=_tokens_per_usd)
    if preset == "fast":
        best = min(_decode_time_at_one(s) for s in pool)
        near = [s for s in pool if _decode_time_at_one(s) <= best * (1.0 + FAST_TOLERANCE)]
        return min(near, key=lambda s: (s.usd_per_hour, _decode_time_at_one(s)))
    raise InputError(f"unknown shape preset {preset!r} (known: minimal, throughput, fast)")


_RULE_SOURCE = {
    "minimal": "capsim rule: lowest USD/hour that fits",
    "throughput": "capsim rule: most output tokens per USD at 1000/200",
    "fast": "capsim rule: cheapest within 10% of the lowest decode time per token at concurrency 1",
}


def derive() -> list[tuple[str, str, Shape]]:
    """(model, preset, shape) for every model without published presets, by the rules."""
    from sim.catalog import PRESET_NAMES, all_presets, model_names

    published = {p.model for p in all_presets() if p.source.startswith("published")}
    out: list[tuple[str, str, Shape]] = []
    for model in model_names():
        if model in published:
            continue
        pool = candidates(model)
        out.extend((model, preset, choose(model, preset, pool)) for preset in PRESET_NAMES)
    return out


def doc_table() -> str:
    """The markdown table of every preset in docs/catalog.md."""
    from sim.catalog import all_presets
    from sim.perf import build_shape

    lines = ["| model | preset | GPUs | precision | weights GiB | KV tokens | "
             "max tok/s (1000/200) | USD/h | from |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    for p in all_presets():
        s = build_shape(p.model, p.preset)
        lines.append(
            f"| {p.model} | {p.preset} | {s.gpus} × {s.accelerator} | {s.precision} | "
            f"{s.weight_bytes / 2**30:.1f} | {s.kv_capacity_tokens:,} | "
            f"{s.max_throughput(REFERENCE_INPUT, REFERENCE_OUTPUT):,.0f} | "
            f"{s.usd_per_hour:g} | {p.source.split(' ')[0].replace('capsim', 'rule')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.perf.presets [--write]``: re-derive the rule-chosen presets.

    Prints the rows of ``presets.csv`` the rules give today; ``--write`` puts
    them in place of the file's rule rows (published rows and the header kept).
    """
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(prog="python -m sim.perf.presets", description=main.__doc__)
    ap.add_argument("--write", action="store_true", help="rewrite sim/catalog/data/presets.csv")
    ap.add_argument("--table", action="store_true",
                    help="print docs/catalog.md's table of every preset instead")
    args = ap.parse_args(argv)
    if args.table:
        print(doc_table())
        return 0
    rows = [f"{m},{p},{s.accelerator},{s.gpus},{s.precision},{_RULE_SOURCE[p]}"
            for m, p, s in derive()]
    if not args.write:
        print("\n".join(rows))
        return 0
    path = Path(__file__).resolve().parents[1] / "catalog" / "data" / "presets.csv"
    kept = [line for line in path.read_text().splitlines()
            if line.startswith("#") or line.startswith("model,") or ",published" in line]
    path.write_text("\n".join(kept + rows) + "\n")
    print(f"wrote {len(rows)} rule rows to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
