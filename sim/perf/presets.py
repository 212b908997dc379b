"""The rules that choose a model's ``minimal``, ``throughput`` and ``fast`` shapes.

Candidates: every accelerator type × 1, 2, 4 or 8 GPUs (one node) × the
model's native precision, plus FP8 for a BF16-native model (the usual serving
quantization; FP4 is not assumed to keep quality).  A candidate must fit
(weights + minimum KV cache).  Reference workload: 1000 input / 200 output
tokens, the shape's default max concurrency.

* ``minimal``: lowest USD/hour; ties → higher max throughput.
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
        return min(pool, key=lambda s: (round(s.usd_per_hour, 6), -s.max_throughput(
            REFERENCE_INPUT, REFERENCE_OUTPUT)))
    if preset == "throughput":
        return max(pool, key=_tokens_per_usd)
    if preset == "fast":
        best = min(_decode_time_at_one(s) for s in pool)
        near = [s for s in pool if _decode_time_at_one(s) <= best * (1.0 + FAST_TOLERANCE)]
        return min(near, key=lambda s: (s.usd_per_hour, _decode_time_at_one(s)))
    raise InputError(f"unknown shape preset {preset!r} (known: minimal, throughput, fast)")
