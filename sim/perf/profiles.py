"""Serving-engine profiles: the step model's constants per engine and precision path.

A deployment names its engine with ``serving_engine`` (default ``vllm``):

* ``vllm`` — fitted to measured vLLM 0.15.1 runs at realistic load (Poisson
  and constant-rate stages of 2.5–20 req/s, docs/validation.md);
* ``trtllm`` — fitted to TensorRT-LLM's published v0.17 maximum-throughput
  table and v0.14 online-serving latencies (docs/throughput.md);
* ``sglang`` — no public SGLang measurement at realistic load was found;
  it uses the vLLM profile's constants (both run continuous batching with
  chunked prefill, CUDA graphs and FlashInfer/FlashAttention kernels), with
  the uncertainty stated in docs/throughput.md;
* a path to a profile file written by ``capsim calibrate`` (JSON): a base
  profile and the constants fitted to the user's own load test.

Each profile has one :class:`~sim.perf.params.PerfParams` per precision
path; a precision without its own path uses the BF16 one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sim.catalog.precision import PRECISIONS
from sim.errors import InputError
from sim.perf.params import TRTLLM, VLLM_BF16, VLLM_FP8, PerfParams

ENGINES = ("vllm", "sglang", "trtllm")
DEFAULT_ENGINE = "vllm"
PROFILE_FORMAT = "capsim-profile/1"


@dataclass(frozen=True)
class EngineProfile:
    """Constants of one serving engine, one :class:`PerfParams` per precision path."""

    name: str
    paths: Mapping[str, PerfParams]
    description: str = ""

    def params(self, precision: str) -> PerfParams:
        """The precision path for ``precision`` (the BF16 path when it has none of its own)."""
        return self.paths.get(precision, self.paths["BF16"])


BUILTIN: Mapping[str, EngineProfile] = MappingProxyType({
    "vllm": EngineProfile(
        "vllm", MappingProxyType({"BF16": VLLM_BF16, "FP8": VLLM_FP8}),
        "fitted to measured vLLM 0.15.1 runs (docs/validation.md)"),
    "sglang": EngineProfile(
        "sglang", MappingProxyType({"BF16": VLLM_BF16, "FP8": VLLM_FP8}),
        "vLLM's constants: no public SGLang measurement at realistic load was found"),
    "trtllm": EngineProfile(
        "trtllm", MappingProxyType({"BF16": TRTLLM}),
        "fitted to TensorRT-LLM v0.17/v0.14 published tables (docs/throughput.md)"),
})

# Constants a profile file may set (everything numeric in PerfParams but the
# per-accelerator compute table, which is given as ``compute_efficiency``).
_SCALARS = tuple(f.name for f in fields(PerfParams)
                 if f.name not in ("compute_efficiency", "notes"))
_INTEGERS = ("min_kv_tokens", "max_concurrency", "prefill_chunk")


def get_profile(name: str, base_dir: Path | None = None) -> EngineProfile:
    """A built-in profile by name, or a profile file (``.json``) by path."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name.endswith(".json"):
        path = Path(name)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        return load_profile(path)
    raise InputError(f"unknown serving_engine {name!r} (known: {', '.join(ENGINES)}, "
                     "or a profile file written by capsim calibrate, *.json)")


def profile_document(base: str, paths: Mapping[str, PerfParams],
                     fit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a profile: its base and each path's constants."""
    out: dict[str, Any] = {"format": PROFILE_FORMAT, "base": base, "paths": {}}
    for precision, p in paths.items():
        values: dict[str, Any] = {k: getattr(p, k) for k in _SCALARS}
        values["compute_efficiency"] = dict(p.compute_efficiency)
        out["paths"][precision] = values
    if fit:
        out["fit"] = dict(fit)
    return out


def load_profile(path: Path) -> EngineProfile:
    """Read a profile file written by ``capsim calibrate``."""
    shown = str(path)
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read profile: {exc.strerror or exc}", file=shown) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", file=shown, where=f"line {exc.lineno}") from None
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise InputError(f"not a capsim profile (expected \"format\": \"{PROFILE_FORMAT}\")",
                         file=shown)
    base = doc.get("base", DEFAULT_ENGINE)
    if base not in BUILTIN:
        raise InputError(f"unknown base profile {base!r} (known: {', '.join(ENGINES)})",
                         file=shown, where="base")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or ("BF16" not in paths and not paths):
        raise InputError("no precision path", file=shown, where="paths")
    built: dict[str, PerfParams] = dict(BUILTIN[base].paths)
    for precision, values in paths.items():
        where = f"paths.{precision}"
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})",
                             file=shown, where=where)
        if not isinstance(values, dict):
            raise InputError("expected an object of constants", file=shown, where=where)
        unknown = set(values) - set(_SCALARS) - {"compute_efficiency"}
        if unknown:
            raise InputError(f"unknown constant {sorted(unknown)[0]!r}", file=shown, where=where)
        changes = dict(values)
        for key, value in changes.items():
            numbers = value.values() if isinstance(value, dict) else [value]
            if not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)
                       and v >= 0) for v in numbers):
                raise InputError(f"{key} must be a number ≥ 0", file=shown, where=where)
        for key in _INTEGERS:
            if key in changes and (not isinstance(changes[key], int) or changes[key] < 1):
                raise InputError(f"{key} must be an integer ≥ 1", file=shown, where=where)
        start = BUILTIN[base].params(precision)
        if "compute_efficiency" in changes:
            table = dict(changes["compute_efficiency"])
            table.setdefault("default", start.efficiency("default"))
            changes["compute_efficiency"] = table
        built[precision] = start.with_(**changes)
    return EngineProfile(f"{path.name}", MappingProxyType(built), f"fitted: {shown}")
