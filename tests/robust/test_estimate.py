"""The pre-run estimate: its counts match what a run does, hard limits refuse before
anything is written, soft limits warn in one line (``--yes`` or ``large_run_ok`` hide it)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

import sim
from sim.cli import main
from sim.errors import InputError
from sim.estimate import estimate
from sim.scenario import load_scenario

TRACE = (Path(__file__).resolve().parents[2] / "scenarios" / "traces"
         / "AzureLLMInferenceTrace_conv.csv")

BASE = {
    "name": "est",
    "seed": 1,
    "duration": "10m",
    "timeline_interval": "30s",
    "deployments": [{
        "name": "d",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "autoscaler": {"policy": "static", "replicas": 2},
        "traffic": {"arrivals": {"kind": "poisson", "rps": 5.0},
                    "input_tokens": {"kind": "fixed", "value": 200},
                    "output_tokens": {"kind": "fixed", "value": 20}},
    }],
}


def _doc(**arrivals) -> dict:
    doc = copy.deepcopy(BASE)
    if arrivals:
        doc["deployments"][0]["traffic"]["arrivals"] = arrivals
    return doc


ODD = {
    "poisson": _doc(),
    "diurnal": _doc(kind="diurnal", mean_rps=4.0, peak_to_mean=3.0, period="5m"),
    "ramp-past-the-end": _doc(kind="ramp", start_rps=0.0, end_rps=12.0, ramp_duration="30m"),
    "burst": _doc(kind="burst", base_rps=1.0, burst_rps=30.0, mean_burst="20s", mean_gap="1m"),
    "spikes-beyond-the-end": _doc(kind="spikes", base_rps=1.0, spikes=[
        {"at": "2m", "duration": "1m", "rps": 20.0}, {"at": "9m", "duration": "5m", "rps": 9.0}]),
    "trace-fast-looped": _doc(kind="trace", path=str(TRACE), time_scale=0.05, loop=True,
                              rate_scale=0.3),
    "trace-slow": _doc(kind="trace", path=str(TRACE), time_scale=3.0),
    "sessions": _doc(kind="poisson", rps=0.5),
    "diurnal-around-its-peak": _doc(kind="diurnal", mean_rps=2.0, peak_to_mean=3.0,
                                    period="40m", peak_at="5m"),
}
ODD["sessions"]["deployments"][0]["traffic"]["sessions"] = {
    "turns": {"kind": "exponential", "mean": 6}, "think_time": "20s"}


@pytest.mark.parametrize("name", sorted(ODD))
def test_the_estimate_counts_what_the_run_does(name):
    """Requests within a factor of the estimate (Poisson noise on a few thousand),
    timeline rows exactly."""
    loaded = load_scenario(ODD[name])
    size = estimate(loaded)
    result = sim.run(loaded, keep_requests=False)
    first_attempts = result.summary["total"]["requests"]
    assert size.requests / 1.5 <= first_attempts <= size.requests * 1.5 + 30, (
        first_attempts, size.requests)
    assert len(result.timeline) <= size.timeline_rows
    assert size.timeline_rows == pytest.approx(len(result.timeline), abs=2)
    assert not size.refusals()


def test_hard_limits_refuse_before_anything_is_written(tmp_path, capsys):
    doc = _doc(kind="poisson", rps=50_000.0)
    doc["duration"] = "365d"
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refused" in err and "requests" in err
    assert not out.exists()
    assert main(["validate", str(path)]) == 2
    with pytest.raises(InputError, match="refused"):
        sim.run(doc)


def test_a_long_timeline_is_refused():
    doc = _doc()
    doc["duration"] = "700d"
    doc["timeline_interval"] = "1s"
    doc["deployments"][0]["traffic"]["arrivals"] = {"kind": "poisson", "rps": 0.001}
    reasons = estimate(load_scenario(doc)).refusals()
    assert any("timeline rows" in r for r in reasons)


def test_many_control_events_are_refused():
    doc = _doc()
    doc["duration"] = "700d"
    doc["timeline_interval"] = "1h"
    doc["deployments"][0]["traffic"]["arrivals"] = {"kind": "poisson", "rps": 0.001}
    doc["deployments"][0]["autoscaler"] = {"policy": "fireworks", "sync_period": "100ms"}
    reasons = estimate(load_scenario(doc)).refusals()
    assert any("wall time" in r for r in reasons), reasons
    doc["deployments"] = [{**doc["deployments"][0], "name": f"d{i}"} for i in range(3)]
    reasons = estimate(load_scenario(doc)).refusals()
    assert any("control-plane" in r for r in reasons), reasons


def test_soft_limits_warn_in_one_line_and_yes_hides_it(tmp_path, capsys, monkeypatch):
    import sim.estimate as E

    monkeypatch.setattr(E, "SOFT_REQUESTS", 100.0)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "requests" in warned[0]
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--yes"]) == 0
    assert "warning" not in capsys.readouterr().err
    path.write_text(yaml.safe_dump({**_doc(), "large_run_ok": True}))
    assert main(["run", str(path), "--out", str(tmp_path / "c")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_sweep_point_beyond_a_hard_limit_is_refused_before_any_run(tmp_path, capsys):
    doc = _doc()
    doc["sweep"] = {"deployments[0].traffic.arrivals.rps": [1.0, 900_000.0]}
    doc["duration"] = "30d"
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "900000" in err.replace(",", "").replace("_", "")
    assert not out.exists()
