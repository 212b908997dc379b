"""The named invariants of every run (docs/invariants.md), over fuzzed scenarios with
autoscaling, retries, replica crashes, datacenter outages and a tight GPU inventory.

INV-1 requests conserved · INV-2 allocation ≤ inventory · INV-3 0 ≤ utilization ≤ 1 ·
INV-4 attempts ≤ max_retries + 1, re-sends counted apart · INV-5 costs finite,
non-negative and exact · INV-6 timeline and allocation table agree at every boundary.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim
from sim.billing.serverless import serverless_cost
from sim.metrics.stream import Finished, RequestStats
from sim.workload.spec import MAX_TOKENS

DC = "US_IOWA_1"
ACC = "H100_80GB"


def scenario(rps: float, policy: str, gpus: int, retries: int, max_queue: int | None,
             mtbf_min: int | None, outage: tuple[int, int] | None, seed: int,
             count: int) -> dict[str, Any]:
    autoscaler: dict[str, Any] = (
        {"policy": "static", "replicas": 3} if policy == "static"
        else {"policy": "fireworks", "scale_up_window": "0s", "scale_down_window": "1m",
              "sync_period": "10s"})
    dep: dict[str, Any] = {
        "name": "d",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": ACC, "count": count, "precision": "FP8"},
        "region": DC,
        "min_replicas": 1 if policy != "static" else 0,
        "max_replicas": 4,
        "autoscaler": autoscaler,
        "traffic": {
            "arrivals": {"kind": "poisson", "rps": rps},
            "input_tokens": {"kind": "lognormal", "median": 400, "p90": 1600},
            "output_tokens": {"kind": "lognormal", "median": 80, "p90": 320},
        },
    }
    if max_queue is not None:
        dep["max_queue"] = max_queue
    faults: dict[str, Any] = {}
    if mtbf_min is not None:
        faults["replica_mtbf"] = f"{mtbf_min}m"
    if outage is not None:
        faults["outages"] = [{"datacenter": DC, "start": f"{outage[0]}m",
                              "duration": f"{outage[1]}m"}]
    return {
        "name": "inv",
        "seed": seed,
        "duration": "10m",
        "timeline_interval": "1m",
        "regions": {DC: {ACC: gpus}},
        "clients": {"max_retries": retries, "backoff_base": "500ms"},
        "faults": faults,
        "deployments": [dep],
    }


runs = st.builds(
    scenario,
    rps=st.floats(1.0, 40.0),
    policy=st.sampled_from(["static", "fireworks"]),
    gpus=st.integers(1, 6),
    retries=st.integers(0, 3),
    max_queue=st.one_of(st.none(), st.integers(0, 30)),
    mtbf_min=st.one_of(st.none(), st.integers(2, 20)),
    # Outages that start and end on timeline boundaries (whole minutes), and inside rows.
    outage=st.one_of(st.none(), st.tuples(st.integers(1, 6), st.integers(1, 3))),
    seed=st.integers(0, 2**31),
    count=st.sampled_from([1, 2]),
)


def check_invariants(doc: dict[str, Any], result: sim.Result) -> None:
    total = result.summary["total"]
    req, tl, alloc = result.requests, result.timeline, result.allocation
    # INV-1: every request that arrived ends exactly once, ok or failed.
    assert len(req) == total["requests"] == total["ok"] + total["failed"]
    assert int((req["status"] == "ok").sum()) == total["ok"]
    assert int(tl["arrivals"].sum()) == total["requests"]
    # INV-2: GPUs held never exceed the inventory, at any boundary.
    held = alloc.groupby(["t_end", "datacenter", "accelerator"])["gpus"].sum()
    for (_t, dc, acc), gpus in held.items():
        assert gpus <= doc["regions"][dc][acc]
    # INV-3: utilization is a fraction of capacity.
    assert ((tl["utilization"] >= 0) & (tl["utilization"] <= 1 + 1e-12)).all(), \
        tl.loc[tl["utilization"] > 1, ["t_end", "utilization", "ready_replicas"]]
    assert 0 <= total["utilization"] <= 1 + 1e-12
    # INV-4: attempts within the retry budget; re-sends after crashes counted apart.
    max_retries = doc["clients"]["max_retries"]
    assert req["attempts"].min() >= 1 if len(req) else True
    assert req["attempts"].max() <= max_retries + 1 if len(req) else True
    assert total["retries"] == int((req["attempts"] - 1).sum())
    assert total["resends"] >= 0
    # INV-5: costs finite and non-negative.
    for key in ("cost_usd", "on_demand_cost_usd", "reserved_cost_usd", "gpu_seconds"):
        assert math.isfinite(total[key]) and total[key] >= 0, key
    costs = result.billing["cost_usd"].astype(float)
    assert np.isfinite(costs).all() and (costs >= 0).all()
    # INV-6: the timeline's GPUs at the end of each row are the allocation table's.
    mine = alloc[alloc["holder"] == "d"].groupby("t_end")["gpus"].sum()
    for row in tl.itertuples():
        assert row.gpus_allocated == mine.get(row.t_end, 0), (
            row.t_end, row.gpus_allocated, mine.get(row.t_end, 0))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=runs)
def test_named_invariants_hold_in_fuzzed_runs(doc):
    check_invariants(doc, sim.run(doc))


def test_inv6_at_the_exact_end_of_an_outage():
    """The outage ends exactly on a timeline boundary: the row ending there and the
    allocation table say the same."""
    doc = scenario(rps=10.0, policy="fireworks", gpus=4, retries=2, max_queue=None,
                   mtbf_min=None, outage=(3, 2), seed=5, count=1)
    result = sim.run(doc)
    check_invariants(doc, result)
    tl = result.timeline.set_index("t_end")
    assert tl.loc[240.0, "gpus_allocated"] == 0  # inside the outage: nothing held


def test_inv4_resends_after_an_outage_keep_their_attempt_count():
    doc = scenario(rps=20.0, policy="static", gpus=6, retries=0, max_queue=None,
                   mtbf_min=3, outage=(4, 2), seed=11, count=1)
    result = sim.run(doc)
    check_invariants(doc, result)
    assert result.summary["total"]["resends"] > 0
    assert result.requests["attempts"].max() == 1


def test_inv5_token_sums_and_costs_are_exact_at_the_largest_accepted_counts():
    """A million requests of MAX_TOKENS tokens each: sums far beyond 2**53 stay exact
    (Python integers over int64 batches), and the cost is the exact one."""
    n = 1_000_000
    big = np.full(n, MAX_TOKENS, dtype=np.int64)
    from sim.metrics.stream import _FLOAT_FIELDS

    columns = {name: np.zeros(n, np.float64 if name in _FLOAT_FIELDS else np.int64)
               for name in Finished.__dataclass_fields__}
    columns.update(first_t=np.ones(n), finish_t=np.full(n, 2.0), inp=big, out=big,
                   attempts=np.ones(n, np.int64), index=np.arange(n))
    batch = Finished(**columns)
    stats = RequestStats()
    stats.add(batch)
    expected = n * MAX_TOKENS
    assert stats.input_tokens == expected and stats.output_tokens == expected
    many = RequestStats()
    for _ in range(1000):  # a billion requests' worth of tokens: 1e16 each way
        many.merge(stats)
    assert many.input_tokens == 1000 * expected > 2**53
    cost = serverless_cost(many.input_tokens, many.output_tokens, input_usd=0.2,
                           cached_input_usd=0.1, output_usd=0.2)
    exact = Fraction(many.input_tokens + many.output_tokens) * Fraction("0.2") / 10**6
    assert math.isfinite(cost) and cost >= 0
    assert abs(Fraction(cost) - exact) / exact < Fraction(1, 10**12)


def test_utilization_never_exceeds_one_with_replicas_draining_while_busy():
    """INV-3 where it broke: replicas removed by scale-down while serving."""
    doc = scenario(rps=30.0, policy="fireworks", gpus=6, retries=1, max_queue=None,
                   mtbf_min=4, outage=None, seed=2, count=1)
    doc["deployments"][0]["traffic"]["arrivals"] = {
        "kind": "spikes", "base_rps": 2.0,
        "spikes": [{"at": "2m", "duration": "2m", "rps": 40.0},
                   {"at": "7m", "duration": "1m", "rps": 40.0}]}
    check_invariants(doc, sim.run(doc))


def test_the_summary_counts_match_the_tables_for_a_plain_run():
    doc = scenario(rps=5.0, policy="static", gpus=6, retries=3, max_queue=None,
                   mtbf_min=None, outage=None, seed=1, count=1)
    result = sim.run(doc)
    check_invariants(doc, result)
    assert isinstance(result.timeline, pd.DataFrame) and len(result.timeline) >= 10


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=runs)
def test_named_invariants_hold_in_many_fuzzed_runs_slow(doc):
    check_invariants(doc, sim.run(doc))
