"""Break-even by simulation, against the arithmetic of an always-on replica."""

from __future__ import annotations

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
    assert {p.name for p in out.iterdir()} == {"breakeven.png", "breakeven.csv"}
    assert "break-even" in capsys.readouterr().out


def test_a_model_without_serverless_price_is_refused(tmp_path, capsys):
    doc = static_doc("llama-v3p1-8b-instruct")
    doc["deployments"][0]["shape"] = {"accelerator": "H200_141GB", "count": 1,
                                      "precision": "FP8"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["breakeven", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "no serverless price" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
