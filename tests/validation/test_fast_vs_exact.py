"""The fast engine against the exact one, on the same requests (docs/validation.md).

Tolerances: TTFT, TPOT and E2E within 10 % at p50 and 15 % at p99 below
saturation; throughput and saturation capacity within 2 %.  The default
suite runs a representative subset (the Azure conversation and code traces'
lengths, 8B on one H100, 85 % of the exact engine's saturation, two seeds);
the whole grid is ``-m slow``.
"""

from __future__ import annotations

import pytest

from sim.validation import engines as E

P50, P99, RATE = 0.10, 0.15, 0.02


def check(point: E.Point) -> None:
    for m in E.METRICS:
        assert abs(point.errors[f"{m}_p50"]) <= P50, (m, point)
        assert abs(point.errors[f"{m}_p99"]) <= P99, (m, point)
    assert abs(point.errors["throughput"]) <= RATE, point


@pytest.mark.parametrize("workload", ["conversation", "code"])
def test_fast_matches_exact_at_85_percent_of_saturation(workload):
    rps = E.overload(workload, "8B 1×H100", 1)
    capacity = E.saturation(workload, "8B 1×H100", 1, "exact", rps)
    fast = E.saturation(workload, "8B 1×H100", 1, "fast", rps)
    assert fast == pytest.approx(capacity, rel=RATE)
    check(E.compare(workload, "8B 1×H100", 1, 0.85, capacity, seeds=(1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize(("workload", "shape", "replicas"), E.grid(full=True))
def test_fast_matches_exact_on_the_whole_grid(workload, shape, replicas):
    rps = E.overload(workload, shape, replicas)
    capacity = E.saturation(workload, shape, replicas, "exact", rps)
    fast = E.saturation(workload, shape, replicas, "fast", rps)
    assert fast == pytest.approx(capacity, rel=RATE)
    for load in E.LOADS:
        check(E.compare(workload, shape, replicas, load, capacity, seeds=(1, 2, 3)))
