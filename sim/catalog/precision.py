"""Numeric precisions of weights and math: ``BF16``, ``FP8``, ``FP4``."""

from __future__ import annotations

from typing import Literal

Precision = Literal["BF16", "FP8", "FP4"]
PRECISIONS: tuple[Precision, ...] = ("BF16", "FP8", "FP4")

# Bytes per weight.  FP4 is MXFP4 as shipped by gpt-oss: blocks of 32 4-bit
# values sharing one 8-bit (E8M0) scale = 4.25 bits (OCP Microscaling Formats
# spec v1.0; the gpt-oss-120b checkpoint is 60.8 GiB for 114.7 B MXFP4 expert
# weights + 2.1 B BF16 weights, which these numbers reproduce within 2 %).
BYTES_PER_PARAM: dict[str, float] = {"BF16": 2.0, "FP8": 1.0, "FP4": 4.25 / 8}

# Bytes per cached K/V element.  A quantized shape (FP8 or FP4) keeps its KV
# cache in FP8: "If you specify FP8 quantization, the KV cache will
# automatically be set to FP8 as well" (TensorRT-LLM perf-overview.md, v0.17),
# and vLLM's --kv-cache-dtype fp8 halves it likewise.  BF16 shapes cache BF16.
KV_BYTES_PER_ELEMENT: dict[str, float] = {"BF16": 2.0, "FP8": 1.0, "FP4": 1.0}


def check_precision(value: str) -> Precision:
    """``value`` as a :data:`Precision`, or an InputError listing the known ones."""
    from sim.catalog._data import unknown

    for p in PRECISIONS:
        if value == p:
            return p
    raise unknown("precision", value, PRECISIONS)
