"""Break-even by simulation, against the arithmetic of an always-on replica."""

from __future__ import annotations

import json

import pytest
import yaml

from sim.analysis import breakeven, scale_traffic
from sim.cli import main


def static_doc(model: str = "gpt-oss-120b") -> dict:
    return {
        "name": "be", "seed": 4, "duration": "1h",
        "billing": {"gpu_hour_usd": {"H200_141GB": 8.0}},
        "deployments": [{
            "name": "oss", "model": model,
            "shape": {"accelerator": "H200_141GB", "count": 1, "precision": "FP4"},
            "region": "US", "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "poisson", "rps": 4.0},
                        "input_tokens": {"kind": "fixed", "value": 1000},
                        "output_tokens": {"kind": "fixed", "value": 200}},
        }],
    }


def test_always_on_replica_breaks_even_where_arithmetic_says():
    # serverless: 1000 × $0.15 + 200 × $0.60 per 1M = $270e-6 per request;
    # one H200 at $8/h costs $8/3600 per second: even at 8/3600/270e-6 ≈ 8.23 req/s
    result = breakeven(static_doc(), low=1 / 4, high=4, grid=5, tolerance=0.01)
    expected = 8.0 / 3600 / 270e-6
    assert result.rps == pytest.approx(expected, rel=0.03)
    assert (result.points["ok_fraction"] > 0.99).all()


def test_scale_traffic_scales_every_kind_of_rate():
    assert scale_traffic({"arrivals": {"kind": "poisson", "rps": 2}}, 3)["arrivals"]["rps"] == 6
    spikes = {"arrivals": {"kind": "spikes", "base_rps": 1,
                           "spikes": [{"at": "1m", "duration": "1m", "rps": 5}]}}
    scaled = scale_traffic(spikes, 2)["arrivals"]
    assert scaled["base_rps"] == 2 and scaled["spikes"][0]["rps"] == 10
    trace = {"arrivals": {"kind": "trace", "path": "t.csv", "rate_scale": 0.5}}
    assert scale_traffic(trace, 4)["arrivals"]["rate_scale"] == 2.0


def test_cli_writes_the_plot_and_table(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(static_doc()))
    out = tmp_path / "be"
    assert main(["breakeven", str(path), "--out", str(out), "--low", "0.5", "--high", "4",
                 "--grid", "4"]) == 0
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {
        "breakeven.png", "breakeven.csv", "breakeven.json"}
    doc = json.loads((out / "breakeven.json").read_text())
    assert "cheaper_intervals" in doc and len(doc["points"]) >= 4
    assert "dedicated is cheaper per served token" in capsys.readouterr().out


def sawtooth_doc(curve: str, **arrivals) -> dict:
    """One replica per 1 req/s (a requests-per-second load target, slow windows so that
    Poisson noise does not scale up early), each replica $2.88/h; 1-in / 100-out requests at
    $10 per 1M output tokens: serverless costs $0.001 a request, a replica $0.0008 a second.
    Dedicated is cheaper while n replicas carry more than 0.8·n req/s: from 0.8 to 1 req/s,
    then from 1.6 to 2, …"""
    return {
        "name": "saw", "seed": 2, "duration": "2h",
        "billing": {"gpu_hour_usd": {"H100_80GB": 2.88},
                    "serverless": {"llama-v3p1-8b-instruct": {"input": 0.0, "output": 10.0}}},
        "clients": {"max_retries": 0},
        "deployments": [{
            "name": "q", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "curve": curve},
            "max_concurrency": 1000, "min_replicas": 1, "max_replicas": 4,
            "autoscaler": {"policy": "fireworks",
                           "load_targets": {"default": None, "requests_per_second": 1.0},
                           "scale_up_window": "10m", "metrics_window": "10m"},
            "traffic": {"arrivals": {"kind": "poisson", "rps": 1.0, **arrivals},
                        "input_tokens": {"kind": "fixed", "value": 1},
                        "output_tokens": {"kind": "fixed", "value": 100}},
        }],
    }


def test_every_range_where_dedicated_is_cheaper_two_crossings(flat_curve):
    result = breakeven(sawtooth_doc(str(flat_curve)), low=0.5, high=1.5, grid=5,
                       tolerance=0.02)
    pts = result.points
    # the same served tokens on both sides: 100 output tokens at $10/1M per 101 tokens
    assert pts["serverless_per_million"].to_numpy() == pytest.approx(1000 / 101, rel=1e-9)
    assert pts["meets_slo"].all()
    ((low, high),) = result.cheaper_intervals
    assert len(result.crossings) == 2
    assert pts["rps"].min() < low < high < pts["rps"].max()  # both ends crossings
    assert low == pytest.approx(0.8, rel=0.06)  # one replica pays for itself
    assert 0.85 < high <= 1.08  # a second replica is needed from about 1 req/s
    assert result.rps == low


def test_rates_that_miss_the_slo_are_left_out(single_curve):
    doc = sawtooth_doc(str(single_curve))
    doc["slo"] = {"ttft_p99": "2s"}
    dep = doc["deployments"][0]
    dep.update(max_concurrency=1, min_replicas=1, max_replicas=1,
               autoscaler={"policy": "static", "replicas": 1})
    result = breakeven(doc, low=0.5, high=16, grid=6)
    pts = result.points
    # one server of 0.1 s requests: fine at a few req/s, overloaded past 10
    assert not pts.loc[pts["rps"] > 11, "meets_slo"].any()
    assert pts.loc[pts["rps"] < 5, "meets_slo"].all()
    assert (pts.loc[~pts["meets_slo"], "note"] != "").all()
    ((low, high),) = result.cheaper_intervals
    assert low == pytest.approx(0.8, rel=0.1)
    assert high < float(pts.loc[~pts["meets_slo"], "rps"].min())


def test_breakeven_accepts_set(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(static_doc()))
    out = tmp_path / "be"
    assert main(["breakeven", str(path), "--out", str(out), "--low", "0.5", "--high", "1",
                 "--grid", "2", "--set", "duration=20m"]) == 0
    doc = json.loads((out / "breakeven.json").read_text())
    assert doc["points"][0]["cost_usd"] == pytest.approx(8.0 / 3, rel=0.05)  # 20 min at $8/h


def test_a_model_without_serverless_price_is_refused(tmp_path, capsys):
    doc = static_doc("llama-v3p1-8b-instruct")
    doc["deployments"][0]["shape"] = {"accelerator": "H200_141GB", "count": 1,
                                      "precision": "FP8"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["breakeven", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "no serverless price" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
