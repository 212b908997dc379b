"""``capsim plan`` on cases that can be checked by hand or by brute force."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

import sim
from sim.cli import main
from sim.plan import plan, plan_document
from tests.conftest import queue_scenario, write_curve
from tests.sweep.test_dask_cluster import cluster  # noqa: F401  (a fixture)

SLO_S = 0.65  # between the Erlang C tails of 7 and 8 servers at 4 erlangs (see below)


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load ``a`` erlangs."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def erlang_c_replicas(rps: float, service_s: float, wait_s: float, tail: float) -> int:
    """The fewest servers with P(wait > wait_s) ≤ tail:  C(c, a) · exp(−(c/S − λ)·t)."""
    a = rps * service_s
    c = math.floor(a) + 1
    while erlang_c(c, a) * math.exp(-(c / service_s - rps) * wait_s) > tail:
        c += 1
    return c


def mmc_doc(curve: Path, *, rps: float = 4.0, seed: int = 1, duration: str = "2h",
            **plan_keys: Any) -> dict[str, Any]:
    """Static fleets of one-request-at-a-time replicas: M/M/c with TTFT = the queue wait."""
    doc = queue_scenario(curve, rps=rps, replicas=1, max_concurrency=1, duration=duration,
                         seed=seed)
    doc["warmup"] = "10m"
    doc["slo"] = {"ttft_p99": f"{SLO_S}s"}
    doc["plan"] = {"replicas": {"min": 1, "max": 12}, "seeds": 2, "confirm": 2, **plan_keys}
    return doc


@pytest.fixture
def curve(tmp_path: Path) -> Path:
    return write_curve(tmp_path / "single.csv", [(1, 1000.0)])


def test_static_fleet_is_sized_as_erlang_c_says(curve):
    # the ~1 s exponential service of tests/conftest.py; TTFT is the wait in queue
    service = 1.0
    expected = erlang_c_replicas(4.0, service, SLO_S, 0.01)
    # the case is clear-cut: one server fewer misses the 1 % tail by a wide margin
    a = 4.0 * service
    assert erlang_c(expected - 1, a) * math.exp(-(expected - 1 - a) * SLO_S) > 0.015
    assert erlang_c(expected, a) * math.exp(-(expected - a) * SLO_S) < 0.006
    for seed in (1, 2):
        result = plan(mmc_doc(curve, seed=seed))
        assert result.best is not None
        assert result.best.config.static and result.best.config.max_replicas == expected
        assert result.best.feasible and len(result.best.runs) == 2
        assert {r.seed for r in result.best.runs}.isdisjoint({seed})  # fresh seeds
        # the fleet costs replicas × the catalog price of the shape, whatever the seed
        price = sim.perf.build_shape("llama-v3p1-8b-instruct", {
            "accelerator": "H100_80GB", "count": 1, "curve": str(curve)}).usd_per_hour
        assert result.best.mean("cost_per_hour") == pytest.approx(expected * price, rel=0.05)


def test_never_costlier_than_brute_force(curve, tmp_path):
    fast = write_curve(tmp_path / "fast.csv", [(1, 1400.0)])
    shapes = [{"accelerator": "H100_80GB", "count": 1, "curve": str(curve)},
              {"accelerator": "A100_80GB", "count": 1, "curve": str(fast)}]
    doc = mmc_doc(curve, duration="1h", shapes=shapes, replicas={"min": 1, "max": 10})
    result = plan(doc)
    assert result.best is not None
    # brute force on the search seed, judged from the summaries alone
    cheapest = math.inf
    for shape in shapes:
        for n in range(1, 11):
            run_doc = {k: v for k, v in doc.items() if k != "plan"}
            dep = dict(run_doc["deployments"][0], shape=shape, min_replicas=n, max_replicas=n,
                       autoscaler={"policy": "static", "replicas": n})
            run_doc["deployments"] = [dep]
            t = sim.run(run_doc).summary["deployments"]["q"]
            holds = (t["ok"] >= 0.99 * t["requests"] and t["slo_attainment"] >= 0.99
                     and t["ttft_p99_s"] <= SLO_S)
            if holds:
                cheapest = min(cheapest, t["cost_usd"])
    assert cheapest < math.inf
    search = [e for e in result.evaluations if e.config == result.best.config]
    assert search[0].mean("cost_per_hour") <= cheapest + 1e-9


def test_a_shape_that_cannot_hold_is_dropped_with_its_reason(curve, tmp_path):
    slow_prefill = write_curve(tmp_path / "slow.csv", [(1, 1000.0)], prefill=100.0)
    doc = mmc_doc(curve, duration="30m",
                  shapes=[{"accelerator": "H100_80GB", "count": 1, "curve": str(slow_prefill)},
                          {"accelerator": "H100_80GB", "count": 1, "curve": str(curve)}],
                  replicas={"min": 1, "max": 3})
    doc["deployments"][0]["traffic"]["input_tokens"] = {"kind": "fixed", "value": 200}
    result = plan(doc)
    first, second = result.families
    assert first.pruned is not None and "even idle" in first.pruned  # 200 tokens at 100/s
    assert second.pruned is not None and "needs at least 4 replicas" in second.pruned
    assert result.best is None and result.evaluations == []
    families = plan_document(result)["families"]
    assert [f["pruned"] for f in families] == [first.pruned, second.pruned]


def test_same_seed_same_plan(curve):
    doc = mmc_doc(curve, duration="30m", policies=["static", "fireworks"],
                  replicas={"min": 1, "max": 8})
    one, two = plan_document(plan(doc)), plan_document(plan(doc))
    assert one == two
    assert any(c["configuration"]["policy"] == "fireworks" for c in one["candidates"])


def test_outputs_and_best_yaml_runs(curve, tmp_path, capsys):
    path = tmp_path / "mmc.yaml"
    path.write_text(yaml.safe_dump(mmc_doc(curve, duration="30m")))
    out = tmp_path / "plan"
    assert main(["plan", str(path), "--out", str(out), "--executor", "local",
                 "--workers", "2"]) == 0
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "plan.json", "best.yaml", "pareto.png", "report.html"}
    doc = json.loads((out / "plan.json").read_text())
    rec = doc["recommendation"]
    assert rec["feasible"] and rec["cost_usd_per_month"] == pytest.approx(
        rec["cost_usd_per_hour"] * 720)
    for cand in doc["candidates"]:
        assert cand["feasible"] == (cand["reason"] is None)
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert "plan" not in best
    res = sim.run(sim.load_scenario(out / "best.yaml"))
    assert res.summary["deployments"]["q"]["max_ready_replicas"] == \
        rec["configuration"]["replicas"]
    text = capsys.readouterr().out
    assert text.splitlines()[0].startswith("answer:")


def test_bad_plan_is_one_line_and_writes_nothing(curve, tmp_path, capsys):
    doc = mmc_doc(curve)
    doc["plan"]["replicas"] = {"min": 5, "max": 2}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["plan", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"capsim: error: {path}: plan.replicas") and err.count("\n") == 1
    assert not out.exists()
    del doc["plan"]
    path.write_text(yaml.safe_dump(doc))
    assert main(["plan", str(path), "--out", str(out)]) == 2
    assert "no plan: section" in capsys.readouterr().err


def test_validate_and_run_know_a_plan_file(curve, tmp_path, capsys):
    path = tmp_path / "mmc.yaml"
    path.write_text(yaml.safe_dump(mmc_doc(curve, policies=["static", "fireworks"])))
    assert main(["validate", str(path)]) == 0
    assert "valid plan 'queue': 1 shape × 2 policies × 1 region = 2 families" in \
        capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "a plan: section is for capsim plan" in capsys.readouterr().err


@pytest.mark.slow  # a scheduler and two workers start: about a minute on 2 shared cores
def test_a_dask_cluster_gives_the_same_plan(curve, cluster):  # noqa: F811
    from sim.sweep import DaskExecutor

    doc = mmc_doc(curve, duration="30m")
    local = plan_document(plan(doc))
    on_dask = plan_document(plan(doc, executor=DaskExecutor(cluster)))
    assert on_dask == local and local["recommendation"] is not None


def test_lowest_ttft_within_a_budget(curve):
    price = sim.perf.build_shape("llama-v3p1-8b-instruct", {
        "accelerator": "H100_80GB", "count": 1, "curve": str(curve)}).usd_per_hour
    budget = 9.5 * price  # buys 9 replicas
    result = plan(mmc_doc(curve, duration="30m", objective="ttft", budget_usd_per_hour=budget))
    assert result.best is not None
    assert result.best.config.max_replicas == 9
    assert result.best.mean("cost_per_hour") <= budget
    # a budget below the capacity bound buys nothing that can hold
    poor = plan(mmc_doc(curve, duration="30m", objective="ttft", budget_usd_per_hour=2 * price))
    assert poor.best is None and "the budget buys 2 replicas" in (poor.families[0].pruned or "")


def test_each_region_is_a_family_of_its_own(curve):
    result = plan(mmc_doc(curve, duration="30m", regions=["US", "EUROPE"],
                          replicas={"min": 1, "max": 12}))
    assert [f.label for f in result.families] == [
        f"1×H100_80GB · {r} · static" for r in ("US", "EUROPE")]
    regions = {e.config.region for e in result.evaluations}
    assert regions == {"US", "EUROPE"}
    best = result.best_scenario()
    assert best is not None and best["deployments"][0]["region"] == result.best.config.region
