"""DataFrames behind ``capsim catalog [accelerators|shapes|regions|prices]``."""

from __future__ import annotations

import math

import pandas as pd

from sim.catalog.accelerators import GiB, all_accelerators
from sim.catalog.models import all_models
from sim.catalog.presets import all_presets
from sim.catalog.regions import datacenters

SHAPE_INPUT_TOKENS = 1000
SHAPE_OUTPUT_TOKENS = 200


def accelerators_table() -> pd.DataFrame:
    """One row per accelerator type: memory, bandwidth, dense TFLOP/s, price."""
    rows = []
    for a in all_accelerators().values():
        rows.append(
            {
                "accelerator": a.name,
                "hbm_gib": a.hbm_bytes / GiB,
                "hbm_tb_s": a.hbm_bandwidth / 1e12,
                "bf16_tflops": a.dense_flops["BF16"] / 1e12,
                "fp8_tflops": a.dense_flops.get("FP8", math.nan) / 1e12,
                "fp4_tflops": a.dense_flops.get("FP4", math.nan) / 1e12,
                "nvlink_gb_s": a.nvlink_bandwidth / 1e9,
                "usd_per_gpu_hour": a.usd_per_gpu_hour,
                "price_source": a.price_source,
                "price_as_of": a.price_as_of,
            }
        )
    return pd.DataFrame(rows)


def shapes_table() -> pd.DataFrame:
    """Every model × preset: GPUs, precision, weights, KV capacity, max throughput.

    Throughput is output tokens/s per replica at 1000 input / 200 output
    tokens, at the best concurrency up to the shape's default max concurrency.
    """
    from sim.perf.spec import build_shape

    rows = []
    for p in all_presets():
        shape = build_shape(p.model, p.preset)
        rows.append(
            {
                "model": p.model,
                "preset": p.preset,
                "accelerator": p.accelerator,
                "gpus": p.count,
                "precision": p.precision,
                "weight_gib": shape.weight_bytes / GiB,
                "kv_capacity_tokens": shape.kv_capacity_tokens,
                "max_concurrency": shape.max_concurrency,
                "max_tokens_per_s": shape.max_throughput(SHAPE_INPUT_TOKENS, SHAPE_OUTPUT_TOKENS),
                "usd_per_hour": shape.usd_per_hour,
                "source": p.source,
            }
        )
    return pd.DataFrame(rows)


def regions_table() -> pd.DataFrame:
    """One row per datacenter and accelerator type it offers, with default inventory."""
    rows = []
    for d in datacenters().values():
        for accelerator, gpus in d.inventory.items():
            rows.append(
                {
                    "datacenter": d.name,
                    "mega_region": d.mega_region,
                    "accelerator": accelerator,
                    "default_gpus": gpus,
                    "quota_by_default": d.quota_by_default[accelerator],
                }
            )
    return pd.DataFrame(rows)


def prices_table() -> pd.DataFrame:
    """On-demand USD per GPU-hour and serverless USD per 1M tokens, with sources.

    Models without a published serverless price have NaN prices.
    """
    rows = []
    for a in all_accelerators().values():
        rows.append(
            {
                "item": a.name,
                "kind": "on_demand_gpu_hour",
                "usd_per_gpu_hour": a.usd_per_gpu_hour,
                "input_per_1m": math.nan,
                "cached_input_per_1m": math.nan,
                "output_per_1m": math.nan,
                "source": a.price_source,
                "as_of": a.price_as_of,
            }
        )
    for m in all_models().values():
        p = m.serverless
        rows.append(
            {
                "item": m.name,
                "kind": "serverless_per_1m_tokens",
                "usd_per_gpu_hour": math.nan,
                "input_per_1m": p.input if p else math.nan,
                "cached_input_per_1m": p.cached_input if p else math.nan,
                "output_per_1m": p.output if p else math.nan,
                "source": p.source if p else "no published price",
                "as_of": p.as_of if p else "",
            }
        )
    return pd.DataFrame(rows)
