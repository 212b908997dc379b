"""Billing against hand arithmetic, to the cent."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim
from sim.billing import bill, serverless_cost
from sim.billing.ondemand import USAGE_COLUMNS

H = 3600.0


def usage(*lines: tuple[float, float, int], rate: float = 8.0) -> pd.DataFrame:
    return pd.DataFrame(
        [("d", i, "US_IOWA_1", "H100_80GB", gpus, start, end, rate)
         for i, (start, end, gpus) in enumerate(lines)],
        columns=USAGE_COLUMNS,
    )


def total(lines: pd.DataFrame) -> float:
    return round(float(lines["cost_usd"].sum()), 2)


def test_three_replicas_for_2h30_then_one_for_30min():
    # 3 × 4 H100 for 2.5 h, then 1 of them 30 min more, at $8 per GPU-hour:
    # (3 × 4 × 2.5 + 1 × 4 × 0.5) GPU-hours × $8 = 32 × 8 = $256.00
    lines = bill(usage((0, 3 * H, 4), (0, 2.5 * H, 4), (0, 2.5 * H, 4)),
                 reserved={}, reserved_usd_per_gpu_hour={}, end_s=3 * H)
    assert total(lines) == 256.00
    assert lines["gpu_seconds"].sum() == 32 * H


def test_reservation_of_16_gpus_with_a_peak_of_24():
    # 4 replicas × 4 GPUs all hour; 2 more for the second half hour: peak 24.
    # The reservation covers the first 16 GPUs ($5 × 16 × 1 h = $80); the two
    # late replicas are on demand: 2 × 4 × 0.5 h × $8 = $32.  Total $112.00.
    lines = bill(usage(*[(0, H, 4)] * 4, (H / 2, H, 4), (H / 2, H, 4)),
                 reserved={"H100_80GB": 16}, reserved_usd_per_gpu_hour={"H100_80GB": 5.0},
                 end_s=H)
    assert total(lines) == 112.00
    reserved = lines[lines["kind"] == "reserved"]
    assert len(reserved) == 1 and round(float(reserved["cost_usd"].iloc[0]), 2) == 80.00
    assert lines["on_demand_gpu_seconds"].sum() == pytest.approx(4 * H)


def test_reservation_covers_earliest_replicas_first():
    lines = bill(usage(*[(0, H, 4)] * 4, (H / 2, H, 4), (H / 2, H, 4)),
                 reserved={"H100_80GB": 20}, reserved_usd_per_gpu_hour={"H100_80GB": 5.0},
                 end_s=H)
    # 20 GPUs: the four full-hour replicas and the fifth; the sixth pays $16
    assert total(lines) == 100.00 + 16.00
    on_demand = lines[lines["kind"] == "on_demand"]
    assert list(on_demand["on_demand_gpu_seconds"]) == [0, 0, 0, 0, 0, 4 * H / 2]


def test_an_idle_reservation_is_still_paid():
    lines = bill(usage(), reserved={"H100_80GB": 8},
                 reserved_usd_per_gpu_hour={"H100_80GB": 6.0}, end_s=2 * H)
    assert total(lines) == 96.00


def test_serverless_price_with_prefix_cache_hits():
    # 1000 requests of 1000 input / 200 output tokens at gpt-oss-120b's prices,
    # half the input cached: (500k·0.15 + 500k·0.015 + 200k·0.60) / 1M per 1000
    cost = serverless_cost(1_000_000, 200_000, input_usd=0.15, cached_input_usd=0.015,
                           output_usd=0.60, cache_hit_rate=0.5)
    assert round(cost, 4) == round(0.075 + 0.0075 + 0.12, 4)


def run_static(tmp_path, replicas: int, duration: str, **extra) -> sim.Result:
    dep = {
        "name": "d", "model": "llama-v3p1-70b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 4, "precision": "FP8"},
        "region": "US", "min_replicas": replicas, "max_replicas": replicas,
        "autoscaler": {"policy": "static", "replicas": replicas},
        "traffic": {"arrivals": {"kind": "poisson", "rps": 0.05},
                    "input_tokens": {"kind": "fixed", "value": 100},
                    "output_tokens": {"kind": "fixed", "value": 10}},
    }
    dep.update(extra.pop("deployment", {}))
    doc = {"name": "bill", "seed": 1, "duration": duration, "deployments": [dep],
           "billing": {"gpu_hour_usd": {"H100_80GB": 8.0}}}
    doc.update(extra)
    return sim.run(doc)


def test_end_to_end_static_replicas(tmp_path):
    res = run_static(tmp_path, 3, "150m")
    t = res.summary["total"]
    assert res.summary["simulated_s"] == pytest.approx(2.5 * H, abs=60)
    hours = res.summary["simulated_s"] / H
    assert round(t["cost_usd"], 2) == round(3 * 4 * hours * 8.0, 2)
    assert t["gpu_seconds"] == pytest.approx(3 * 4 * res.summary["simulated_s"])


def test_a_replica_that_never_became_ready_costs_nothing(tmp_path):
    res = run_static(tmp_path, 3, "1h", regions={"US_IOWA_1": {"H100_80GB": 8}})
    # 8 GPUs: the third 4-GPU replica stays pending for the whole run
    assert res.summary["total"]["pending_replica_seconds"] == pytest.approx(
        res.summary["simulated_s"])
    lines = res.billing
    assert len(lines) == 2
    hours = res.summary["simulated_s"] / H
    assert round(res.summary["total"]["cost_usd"], 2) == round(2 * 4 * hours * 8.0, 2)


def test_billing_from_allocation_includes_the_cold_start(tmp_path):
    cold = {"scheduling": "100s", "weight_download_rate": "1e30B/s", "initialization": "20s"}
    ready = run_static(tmp_path, 1, "1h", deployment={"warm_start": False, "cold_start": cold})
    alloc = run_static(tmp_path, 1, "1h", deployment={"warm_start": False, "cold_start": cold},
                       billing={"gpu_hour_usd": {"H100_80GB": 8.0}, "bill_from": "allocated"})
    diff = alloc.summary["total"]["cost_usd"] - ready.summary["total"]["cost_usd"]
    assert round(diff, 2) == round(120 * 4 * 8.0 / H, 2)


def test_region_restricted_placement_pays_the_premium(tmp_path):
    mega = run_static(tmp_path, 1, "1h")
    pinned = run_static(tmp_path, 1, "1h", deployment={"region": "US_IOWA_1"})
    assert pinned.summary["total"]["cost_usd"] == pytest.approx(
        1.5 * mega.summary["total"]["cost_usd"], rel=1e-9)


intervals = st.lists(
    st.tuples(st.floats(0, 10 * H), st.floats(0, 10 * H), st.sampled_from([1, 2, 4, 8])),
    max_size=12,
).map(lambda xs: [(min(a, b), max(a, b), g) for a, b, g in xs])


@settings(max_examples=60, deadline=None)
@given(lines=intervals, reserved=st.integers(0, 24), price=st.floats(0.5, 20))
def test_cost_is_never_negative_never_decreases_and_scales_with_price(lines, reserved, price):
    def cost_until(t: float, scale: float = 1.0) -> float:
        clipped = [(min(a, t), min(b, t), g) for a, b, g in lines]
        out = bill(usage(*clipped, rate=price * scale), reserved={"H100_80GB": reserved},
                   reserved_usd_per_gpu_hour={"H100_80GB": 0.6 * price * scale}, end_s=t)
        return float(out["cost_usd"].sum())

    costs = [cost_until(t) for t in (0.0, 2 * H, 5 * H, 10 * H)]
    assert all(c >= 0 for c in costs)
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(costs))
    # exact but for float rounding (subnormal costs of near-empty intervals lose digits)
    assert cost_until(10 * H, scale=2.0) == pytest.approx(2.0 * costs[-1], rel=1e-12, abs=1e-12)
