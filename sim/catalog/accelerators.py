"""Accelerator types: memory, bandwidth, dense FLOP/s per precision, price.

Numbers come from ``data/gpu_specs.csv`` (NVIDIA datasheets, dense = half the
sparse figure) and prices from ``data/accelerators.csv`` (Fireworks pricing,
with source and date).  Memory sizes are read as GiB: ``nvidia-smi`` reports
81920 MiB for an A100 80GB and 81559 MiB for an H100 80GB (listed in
modal-labs/modal-client PR #2797), i.e. 80 and 79.6 GiB, so "80 GB" on the
datasheet means 80 GiB to within 0.5 %, and 80 GB (decimal) would understate
the device by 7 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from sim.catalog._data import read_records, unknown
from sim.catalog.precision import Precision

GiB = 2.0**30


@dataclass(frozen=True)
class Accelerator:
    """One accelerator type.  Rates are per GPU, in bytes/s and FLOP/s."""

    name: str
    spec_gpu: str
    hbm_bytes: float
    hbm_bandwidth: float
    dense_flops: MappingProxyType[str, float]  # precisions with tensor-core support only
    nvlink_bandwidth: float  # total bidirectional per GPU
    tdp_w: float
    usd_per_gpu_hour: float
    price_source: str
    price_as_of: str

    def supports(self, precision: Precision) -> bool:
        """Whether the tensor cores run ``precision`` natively."""
        return precision in self.dense_flops

    def flops(self, precision: Precision) -> float:
        """Dense FLOP/s for math at ``precision``.

        A precision without tensor-core support (FP8 on A100, FP4 before
        Blackwell) runs as weight-only quantization: the weights are stored at
        that precision (less memory and bandwidth) and dequantized to BF16 for
        the math, as vLLM's Marlin FP8/MXFP4 kernels do on Ampere and Hopper,
        so it computes at the BF16 rate.  It is never rejected.
        """
        return self.dense_flops.get(precision, self.dense_flops["BF16"])


@cache
def _load() -> dict[str, Accelerator]:
    specs = {row["gpu"]: row for row in read_records("gpu_specs.csv")}
    out: dict[str, Accelerator] = {}
    for row in read_records("accelerators.csv"):
        s = specs[row["spec_gpu"]]
        flops = {"BF16": float(s["bf16_dense_tflops"]) * 1e12}
        for precision, column in (("FP8", "fp8_dense_tflops"), ("FP4", "fp4_dense_tflops")):
            if s[column]:
                flops[precision] = float(s[column]) * 1e12
        out[row["name"]] = Accelerator(
            name=row["name"],
            spec_gpu=row["spec_gpu"],
            hbm_bytes=float(s["hbm_gb"]) * GiB,
            hbm_bandwidth=float(s["hbm_bw_tb_s"]) * 1e12,
            dense_flops=MappingProxyType(flops),
            nvlink_bandwidth=float(s["nvlink_gb_s"]) * 1e9,
            tdp_w=float(s["tdp_w"]),
            usd_per_gpu_hour=float(row["usd_per_gpu_hour"]),
            price_source=row["price_source"],
            price_as_of=row["price_as_of"],
        )
    return out


def all_accelerators() -> dict[str, Accelerator]:
    """Every accelerator type, by name."""
    return dict(_load())


def accelerator_names() -> tuple[str, ...]:
    return tuple(_load())


def get_accelerator(name: str) -> Accelerator:
    """The accelerator called ``name``, or an InputError listing the known ones."""
    try:
        return _load()[name]
    except KeyError:
        raise unknown("accelerator", name, accelerator_names()) from None


accelerator = get_accelerator
