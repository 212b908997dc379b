"""The summary's KPIs mean what docs/metrics.md says: capacity used, the user's latency,
requests that met a 503, cold starts, peak GPUs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import sim

ROOT = Path(__file__).resolve().parents[2]


def steady(replicas: int, seed: int) -> dict:
    return {
        "name": "steady", "seed": seed, "duration": "10m", "warmup": "1m",
        "deployments": [{
            "name": "d", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": replicas},
            "traffic": {"arrivals": {"kind": "poisson", "rps": 6},
                        "input_tokens": {"kind": "lognormal", "median": 500, "p90": 2000},
                        "output_tokens": {"kind": "lognormal", "median": 150, "p90": 500}},
        }],
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_utilization_falls_as_replicas_are_added_to_the_same_traffic(seed):
    totals = [sim.run(steady(n, seed), keep_requests=False).summary["total"] for n in (1, 2, 4)]
    used = [t["utilization"] for t in totals]
    assert all(0 < u <= 1 for u in used)
    # the same tokens over twice the capacity: about half, each time
    for a, b in itertools.pairwise(used):
        assert b == pytest.approx(a / 2, rel=0.05)
    # the busy fraction says little about capacity: one replica is busy nearly all the time
    assert totals[0]["busy_fraction"] > 0.9 > used[0]


@pytest.fixture(scope="module")
def from_zero():
    return sim.run(str(ROOT / "scenarios" / "scale_from_zero.yaml"), {"duration": "1h"})


def test_user_latency_runs_from_the_first_attempt(from_zero):
    reqs = from_zero.requests
    ok = reqs[reqs["status"] == "ok"]
    np.testing.assert_allclose(ok["user_ttft_s"], ok["first_token_s"] - ok["arrival_s"])
    np.testing.assert_allclose(ok["user_e2e_s"], ok["finish_s"] - ok["arrival_s"])
    assert (ok["user_ttft_s"] >= ok["ttft_s"] - 1e-12).all()
    once = ok[ok["attempts"] == 1]
    np.testing.assert_array_equal(once["user_ttft_s"], once["ttft_s"])
    retried = ok[ok["attempts"] > 1]
    assert len(retried) > 0 and (retried["user_ttft_s"] > retried["ttft_s"]).all()
    total = from_zero.summary["total"]
    assert total["user_ttft_p99_s"] > total["ttft_p99_s"]  # cold starts are in the user's view


def test_requests_with_503_and_cold_starts_are_counted_from_the_run(from_zero):
    total, reqs = from_zero.summary["total"], from_zero.requests
    assert total["requests_with_503"] == int((reqs["http_503"] > 0).sum()) > 0
    assert total["http_503"] == int(reqs["http_503"].sum()) >= total["requests_with_503"]
    assert total["http_400"] == 0
    assert total["cold_starts"] > 0
    assert 0 < total["cold_start_p50_s"] <= total["cold_start_max_s"]
    # scheduling 30 s + 16 GB at 2 GB/s + 60 s of initialization, at the least
    assert total["cold_start_p50_s"] >= 30 + 60 - 1e-9
    peak = from_zero.timeline["gpus_allocated"].max()
    assert total["peak_gpus"] >= peak and total["peak_gpus_by_accelerator"] == {
        "H100_80GB": total["peak_gpus"]}
