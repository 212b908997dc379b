"""Allocation never exceeds inventory, whatever the deployments, tenants and outages."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim

DCS = ["US_IOWA_1", "US_TEXAS_2", "EU_FRANKFURT_1"]


@st.composite
def scenarios(draw):
    capacity = {dc: {"H100_80GB": draw(st.integers(0, 16))} for dc in DCS}
    if all(v["H100_80GB"] == 0 for v in capacity.values()):
        capacity["US_IOWA_1"]["H100_80GB"] = 8
    deps = []
    for i in range(draw(st.integers(1, 3))):
        deps.append({
            "name": f"d{i}",
            "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": draw(st.sampled_from([1, 2, 4, 8])),
                      "precision": "FP8"},
            "region": draw(st.sampled_from(["GLOBAL", "US", None])),
            "min_replicas": 0,
            "max_replicas": 6,
            "autoscaler": draw(st.sampled_from([
                {"policy": "static", "replicas": draw(st.integers(0, 6))},
                {"policy": "fireworks", "load_targets": {"concurrent_requests": 2}},
            ])),
            "cold_start": {"scheduling": "5s", "weight_download_rate": "10GB/s",
                           "initialization": "5s"},
            "traffic": {
                "arrivals": {"kind": "poisson", "rps": draw(st.floats(0.5, 20))},
                "input_tokens": {"kind": "fixed", "value": 200},
                "output_tokens": {"kind": "fixed", "value": 100},
            },
        })
    background = [{
        "datacenter": dc, "accelerator": "H100_80GB",
        "steps": [{"at": f"{draw(st.integers(0, 20))}m", "gpus": draw(st.integers(0, 16))}],
    } for dc in DCS if draw(st.booleans())]
    outages = [{"datacenter": dc, "start": f"{draw(st.integers(1, 20))}m",
                "duration": f"{draw(st.integers(1, 10))}m"} for dc in DCS if draw(st.booleans())]
    return capacity, {
        "name": "inv", "seed": draw(st.integers(0, 1000)), "duration": "30m",
        "regions": capacity, "deployments": deps, "background_demand": background,
        "faults": {"outages": outages, "replica_mtbf": "20m"},
    }


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenarios())
def test_allocation_never_exceeds_inventory(case):
    capacity, doc = case
    try:
        res = sim.run(doc)
    except sim.InputError as err:  # e.g. a region with no GPUs of the type at all
        assert "has no H100_80GB GPUs" in str(err)
        return
    alloc = res.allocation
    if alloc.empty:
        return
    used = alloc.groupby(["t_end", "datacenter"])["gpus"].sum()
    for (_, dc), gpus in used.items():
        assert gpus <= capacity[dc]["H100_80GB"]
    total = res.summary["total"]
    assert total["ok"] + total["failed"] == total["requests"]
