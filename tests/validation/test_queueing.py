"""Both engines against queueing theory, averaged over seeds, with tolerances.

Each deployment below is a textbook queue (see ``tests/conftest.py``): Poisson
arrivals and a discretised exponential service time of mean ≈ 1 s, plus the
one forward pass that prefills the 1-token prompt.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import sim
from sim.bench import erlang_c_wait
from tests.conftest import queue_scenario

SEEDS = (1, 2, 3, 4, 5)
TRACES = Path(__file__).resolve().parents[2] / "scenarios" / "traces"
ENGINES = pytest.mark.parametrize("engine", ["fast", "exact"])


def first_pass(curve: Path) -> float:
    """A 1-token prompt's prefill alone on the test's shape: one forward pass."""
    return sim.Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                     curve=curve).iteration_time(0, 0, 1)


def service_mean(res: sim.Result, curve: Path) -> float:
    """Mean service time of the requests generated: first pass + (tokens − 1) / 1000 s."""
    return float((res.requests["output_tokens"] - 1).mean() / 1000.0) + first_pass(curve)


def queue(curve: Path, engine: str, **kw: object) -> dict:
    return {**queue_scenario(curve, **kw), "engine": engine}  # type: ignore[arg-type]


def erlang_b(c: int, a: float) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


@ENGINES
def test_mmc_mean_wait_matches_erlang_c(single_curve, engine):
    c, rho = 10, 0.9
    waits, theory = [], []
    for seed in SEEDS:
        res = sim.run(queue(single_curve, engine, rps=rho * c, replicas=c, max_concurrency=1,
                                     duration="8h", seed=seed))
        reqs = res.requests[res.requests["arrival_s"] > 3600]  # one hour of warm-up
        waits.append(float((reqs["start_s"] - reqs["attempt_s"]).mean()))
        theory.append(erlang_c_wait(c, rho * c, 1.0 / service_mean(res, single_curve)))
    assert np.mean(waits) == pytest.approx(np.mean(theory), rel=0.03)


@ENGINES
def test_mmcc_blocking_matches_erlang_b(single_curve, engine):
    c, a = 10, 8.0
    blocked = []
    for seed in SEEDS:
        res = sim.run(queue(single_curve, engine, rps=a, replicas=c, max_concurrency=1,
                                     max_queue=0, duration="4h", seed=seed))
        t = res.summary["total"]
        blocked.append(t["http_429"] / t["requests"])
        assert t["ok"] + t["failed"] == t["requests"]
    offered = a * (1.0 + first_pass(single_curve))  # mean service 1 s + the first pass
    assert np.mean(blocked) == pytest.approx(erlang_b(c, offered), rel=0.05)


@ENGINES
def test_mm_infinity_never_waits(flat_curve, engine):
    res = sim.run(queue(flat_curve, engine, rps=20.0, replicas=1, max_concurrency=10_000,
                                 duration="2h"))
    reqs = res.requests
    assert (reqs["status"] == "ok").all()
    assert (reqs["start_s"] == reqs["attempt_s"]).all()
    # no interference between requests: each decodes at its own 1000 tokens/s ...
    decode = (reqs["finish_s"] - reqs["first_token_s"]).to_numpy()
    assert decode == pytest.approx((reqs["output_tokens"].to_numpy() - 1) / 1000.0, abs=1e-7)
    # ... and a prompt waits for the current iteration (a 1 ms decode, or at
    # worst another prompt's pass alone), then rides on the next decode one
    assert reqs["ttft_s"].max() <= first_pass(flat_curve) + 2e-3 + 1e-9


@ENGINES
def test_mm_infinity_occupancy_is_poisson(flat_curve, engine):
    """In M/M/∞ the number in system is Poisson(λ·E[S]): P(empty) = exp(−λ·E[S])."""
    lam = 0.5
    busy, theory = [], []
    for seed in SEEDS:
        res = sim.run(queue(flat_curve, engine, rps=lam, replicas=1, max_concurrency=10_000,
                                     duration="24h", seed=seed))
        sojourn = float((res.requests["finish_s"] - res.requests["arrival_s"]).mean())
        busy.append(res.summary["total"]["busy_fraction"])
        theory.append(1.0 - math.exp(-lam * sojourn))
    assert np.mean(busy) == pytest.approx(np.mean(theory), rel=0.03)


@ENGINES
def test_mm1_processor_sharing_sojourn(shared_curve, engine):
    lam = 0.7
    sojourns, theory = [], []
    for seed in SEEDS:
        res = sim.run(queue(shared_curve, engine, rps=lam, replicas=1, max_concurrency=10_000,
                                     duration="24h", seed=seed))
        reqs = res.requests[res.requests["arrival_s"] > 3600]
        sojourns.append(float((reqs["finish_s"] - reqs["arrival_s"]).mean()))
        theory.append(1.0 / (1.0 / service_mean(res, shared_curve) - lam))
    assert np.mean(sojourns) == pytest.approx(np.mean(theory), rel=0.05)


def test_littles_law_on_a_trace_replay(tmp_path):
    """Time-averaged queue length (level monitor) = arrival rate × mean wait (request table)."""
    scenario = {
        "name": "little",
        "seed": 3,
        "duration": "1h",
        "timeline_interval": "1m",
        "deployments": [{
            "name": "code",
            "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "A100_80GB", "count": 1, "precision": "BF16"},
            "max_concurrency": 8,
            "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "trace",
                                     "path": str(TRACES / "AzureLLMInferenceTrace_code.csv")}},
        }],
    }
    res = sim.run(scenario)
    reqs, tl = res.requests, res.timeline
    queue_area = float((tl["queue_depth"] * tl["interval_s"]).sum())
    wait_total = float((reqs["start_s"] - reqs["attempt_s"]).sum())
    assert wait_total > 0  # the bursts do queue
    # L = λ W over the whole run: area under the queue curve = Σ waits
    assert queue_area == pytest.approx(wait_total, rel=1e-6)
    assert math.isclose(tl["arrivals"].sum(), len(reqs))
