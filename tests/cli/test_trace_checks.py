"""Trace checks: ``capsim validate TRACE`` says what a trace holds; ``capsim run`` warns
about a trace that ends long before the run and about seconds read as milliseconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from sim.cli import main
from sim.workload import Workload, write_trace
from sim.workload.traces import read_trace, trace_stats, unit_warning


def _trace(path, n=600, span_s=1800.0, seed=0):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(0, span_s, n))
    times = (times - times[0]) * (span_s / (times[-1] - times[0]))  # exactly span_s
    work = Workload(times, rng.integers(100, 2000, n), rng.integers(10, 400, n))
    write_trace(work, path)
    return work


def _seconds_as_ms(path, work):
    """What a user writes who puts seconds in the JSONL timestamp field."""
    with open(path, "w") as f:
        for t, i, o in zip(work.arrival_s, work.input_tokens, work.output_tokens, strict=True):
            f.write(json.dumps({"timestamp": float(t), "input_length": int(i),
                                "output_length": int(o)}) + "\n")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_validate_prints_span_count_rate_and_lengths(tmp_path, capsys, suffix):
    path = tmp_path / f"t{suffix}"
    work = _trace(path, n=500, span_s=1000.0)
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "500 requests over 16.7 min" in out  # 1000 s
    assert f"mean {499 / float(work.arrival_s[-1]):.3g} req/s" in out
    assert f"mean {work.input_tokens.mean():,.0f} input" in out
    assert f"{work.output_tokens.mean():,.0f} output tokens" in out
    assert err == ""


def test_seconds_read_as_milliseconds_are_flagged(tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    _seconds_as_ms(path, _trace(tmp_path / "ok.jsonl", n=600, span_s=1800.0))
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "600 requests over 1.8 s" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "multiply them by 1000" in lines[0]
    # the same requests, in milliseconds as the format says: no warning
    stats = trace_stats(read_trace(tmp_path / "ok.jsonl"))
    assert unit_warning(stats, tmp_path / "ok.jsonl") is None


def _scenario(tmp_path, trace, duration, loop=False):
    doc = {
        "name": "replay", "seed": 1, "duration": duration,
        "deployments": [{
            "name": "d", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "trace", "path": trace.name, "loop": loop}},
        }],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_run_warns_when_a_trace_ends_long_before_the_run(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    _trace(trace, n=200, span_s=1800.0)
    out = tmp_path / "r"
    assert main(["run", str(_scenario(tmp_path, trace, "2h")), "--out", str(out),
                 "--no-progress"]) == 0
    warnings = [ln for ln in capsys.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "ends at 30 min of a 2 h run" in warnings[0]
    assert "90 min have no traffic" in warnings[0]
    # looped, or as long as the run: no warning
    for loop, duration in ((True, "2h"), (False, "30m")):
        assert main(["run", str(_scenario(tmp_path, trace, duration, loop)), "--out",
                     str(out), "--no-progress"]) == 0
        assert "warning" not in capsys.readouterr().err
