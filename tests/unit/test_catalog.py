"""Catalog: accelerators, models, prices, regions, lookups and tables."""

from __future__ import annotations

import math

import pytest

from sim import catalog
from sim.catalog.accelerators import GiB
from sim.errors import InputError

ACCELERATORS = ("A100_80GB", "H100_80GB", "H200_141GB", "B200_180GB")
MODELS = ("llama-v3p1-8b-instruct", "llama-v3p1-70b-instruct", "gpt-oss-120b", "deepseek-v3")


def test_accelerator_names_exactly():
    assert catalog.accelerator_names() == ACCELERATORS


@pytest.mark.parametrize(
    ("name", "gib", "tb_s", "bf16", "nvlink"),
    [
        ("A100_80GB", 80, 2.039, 312, 600),
        ("H100_80GB", 80, 3.35, 989, 900),
        ("H200_141GB", 141, 4.8, 989, 900),
        ("B200_180GB", 180, 8.0, 2250, 1800),
    ],
)
def test_accelerator_specs_from_gpu_specs_csv(name, gib, tb_s, bf16, nvlink):
    a = catalog.get_accelerator(name)
    assert a.hbm_bytes == gib * GiB  # marketed GB read as GiB (docs/catalog.md)
    assert a.hbm_bandwidth == pytest.approx(tb_s * 1e12)
    assert a.flops("BF16") == pytest.approx(bf16 * 1e12)
    assert a.nvlink_bandwidth == pytest.approx(nvlink * 1e9)


def test_precision_without_tensor_cores_runs_at_bf16_rate():
    a100, h100, b200 = (catalog.get_accelerator(n)
                        for n in ("A100_80GB", "H100_80GB", "B200_180GB"))
    assert not a100.supports("FP8") and a100.flops("FP8") == a100.flops("BF16")
    assert not h100.supports("FP4") and h100.flops("FP4") == h100.flops("BF16")
    assert h100.supports("FP8") and h100.flops("FP8") == pytest.approx(1979e12)
    assert b200.supports("FP4") and b200.flops("FP4") == pytest.approx(9000e12)


def test_prices_have_source_and_date():
    prices = {n: catalog.get_accelerator(n) for n in ACCELERATORS}
    assert [prices[n].usd_per_gpu_hour for n in ACCELERATORS] == [3.89, 8.0, 8.0, 13.0]
    assert "older" in prices["A100_80GB"].price_source
    assert prices["H100_80GB"].price_as_of == "2026-10-07"
    assert all(p.price_source for p in prices.values())


def test_models_from_models_csv():
    m = catalog.get_model("llama-v3p1-70b-instruct")
    assert (m.total_params, m.active_params, m.layers, m.kv_per_token_layer) == (
        70.6e9, 70.6e9, 80, 2048)
    assert not m.is_moe and m.routed_expert_params == 0 and m.native_precision == "BF16"
    assert catalog.model_names() == MODELS


def test_moe_expert_split_reproduces_published_sizes():
    ds = catalog.get_model("deepseek-v3")
    # 58 MoE layers x 256 experts x 3 matrices x 7168 x 2048 (config.json)
    assert ds.routed_expert_params == pytest.approx(58 * 256 * 3 * 7168 * 2048, rel=0.01)
    assert ds.kv_heads is None and ds.kv_groups == 1 and ds.native_precision == "FP8"
    oss = catalog.get_model("gpt-oss-120b")
    assert oss.routed_expert_params == pytest.approx(114.7e9, rel=0.01)  # model card
    assert (oss.sliding_window, oss.sliding_layers, oss.full_attention_layers) == (128, 18, 18)
    for m in (ds, oss):  # each token reads the dense part and k/E of the experts
        share = m.experts_per_token / m.routed_experts
        assert m.dense_params + share * m.routed_expert_params == pytest.approx(m.active_params)


def test_serverless_prices_published_or_absent():
    assert catalog.get_model("llama-v3p1-8b-instruct").serverless is None
    p70 = catalog.get_model("llama-v3p1-70b-instruct").serverless
    assert p70 is not None and (p70.input, p70.cached_input, p70.output) == (0.9, 0.45, 0.9)
    oss = catalog.get_model("gpt-oss-120b").serverless
    assert oss is not None and (oss.input, oss.cached_input, oss.output) == (0.15, 0.015, 0.6)
    ds = catalog.get_model("deepseek-v3").serverless
    assert ds is not None and (ds.input, ds.cached_input, ds.output) == (0.56, 0.28, 1.68)


@pytest.mark.parametrize(
    ("lookup", "value", "message"),
    [
        (catalog.accelerator, "H100",
         "unknown accelerator 'H100' (known: A100_80GB, H100_80GB, H200_141GB, B200_180GB)"),
        (catalog.model, "llama-70b", "unknown model 'llama-70b' (known: llama-v3p1-8b-instruct,"),
        (catalog.datacenter, "US_IOWA_9", "unknown datacenter 'US_IOWA_9' (known: AP_TOKYO_1,"),
        (catalog.placement_datacenters, "MARS", "unknown region 'MARS' (known: GLOBAL, US,"),
    ],
)
def test_unknown_names_list_the_known_ones(lookup, value, message):
    with pytest.raises(InputError) as err:
        lookup(value)
    assert str(err.value).startswith(message)


def test_regions_group_into_mega_regions():
    groups = catalog.mega_regions()
    assert set(groups) == {"US", "EUROPE", "APAC", "GLOBAL"}
    assert set(groups["GLOBAL"]) == set(groups["US"]) | set(groups["EUROPE"]) | set(groups["APAC"])
    assert "EU_FRANKFURT_1" in groups["EUROPE"] and "AP_TOKYO_2" in groups["APAC"]
    for dc in ("US_IOWA_1", "US_TEXAS_2", "US_VIRGINIA_1", "US_CALIFORNIA_1", "US_GEORGIA_2",
               "US_ILLINOIS_2", "EU_ICELAND_1", "AP_TOKYO_1"):
        assert dc in groups["GLOBAL"] and catalog.is_datacenter(dc)
    assert not catalog.is_datacenter("US")
    assert catalog.placement_datacenters("US_IOWA_1") == ["US_IOWA_1"]
    assert catalog.placement_datacenters("EUROPE") == list(groups["EUROPE"])


def test_hardware_per_datacenter_and_default_inventory():
    inv = catalog.default_inventory()
    assert inv[("US_VIRGINIA_1", "H100_80GB")] > 0 and inv[("US_VIRGINIA_1", "H200_141GB")] > 0
    assert inv[("US_ILLINOIS_2", "A100_80GB")] > 0
    assert ("US_IOWA_1", "B200_180GB") not in inv
    assert {acc for _, acc in inv} == set(ACCELERATORS)
    assert catalog.datacenter("US_IOWA_1").quota_by_default["H100_80GB"]


def test_tables():
    acc = catalog.accelerators_table()
    assert list(acc["accelerator"]) == list(ACCELERATORS)
    assert math.isnan(acc.set_index("accelerator").loc["A100_80GB", "fp8_tflops"])
    shapes = catalog.shapes_table()
    assert len(shapes) == len(MODELS) * 3
    assert {"gpus", "precision", "weight_gib", "kv_capacity_tokens", "max_tokens_per_s"} <= set(
        shapes.columns)
    assert (shapes["max_tokens_per_s"] > 0).all() and (shapes["kv_capacity_tokens"] > 0).all()
    regions = catalog.regions_table()
    assert set(regions["mega_region"]) == {"US", "EUROPE", "APAC"}
    prices = catalog.prices_table()
    assert set(prices["item"]) == set(ACCELERATORS) | set(MODELS)
    eight_b = prices.set_index("item").loc["llama-v3p1-8b-instruct"]
    assert math.isnan(eight_b["input_per_1m"]) and eight_b["source"] == "no published price"
