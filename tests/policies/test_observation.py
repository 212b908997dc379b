"""What the control plane shows a policy: averages over its windows, replicas by
stage, the past only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sim
from sim.policies import Observation, Policy

SEEN: list[Observation] = []


class Recorder(Policy):
    """Keeps two replicas and records what it is shown, every 2 s."""

    sync_period_s = 2.0
    window_s = 60.0
    windows_s = (6.0, 2.0)

    def initial_replicas(self) -> int:
        return 2

    def decide(self, obs: Observation) -> int:
        SEEN.append(obs)
        return 2


@pytest.fixture
def seen(tmp_path: Path) -> list[Observation]:
    # requests at 0, 1.5, 2.5, … 99.5 s (a trace starts at its first timestamp)
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(
        json.dumps({"timestamp": 0 if k == 0 else (k + 0.5) * 1000, "input_length": 10,
                    "output_length": 5}) + "\n" for k in range(100)))
    SEEN.clear()
    sim.run({
        "name": "observe", "seed": 1, "duration": "3m",
        "deployments": [{
            "name": "d", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "region": "US_IOWA_1", "min_replicas": 0, "max_replicas": 3,
            "autoscaler": {"policy": f"{__name__}:Recorder"},
            "traffic": {"arrivals": {"kind": "trace", "path": str(trace)}},
        }],
    })
    return list(SEEN)


def at(seen: list[Observation], t: float) -> Observation:
    return next(o for o in seen if abs(o.t - t) < 1e-9)


def test_windows_are_those_asked_for_clipped_at_the_start(seen):
    first = seen[0]
    assert first.t == 2.0
    assert sorted(first.windows) == [2.0, 6.0, 60.0]
    assert first.window(60.0).span_s == first.window(6.0).span_s == 2.0  # clipped to the run
    assert first.window(2.0).requests_per_s == pytest.approx(1.0)  # the request at t = 0, 1.5
    later = at(seen, 80.0)
    assert [later.window(w).span_s for w in (2.0, 6.0, 60.0)] == pytest.approx([2, 6, 60])
    with pytest.raises(KeyError, match="no 30s window"):
        later.window(30.0)


def test_rates_count_only_the_past(seen):
    o = at(seen, 50.0)
    # arrivals at 44.5 … 49.5 in the last 6 s; 0, 1.5 … 49.5 (50 of them) since the start
    assert o.window(6.0).requests_per_s == pytest.approx(1.0)
    assert o.window(60.0).requests_per_s == pytest.approx(50 / 50)  # clipped: 50 s of run
    assert o.window(6.0).prompt_tokens_per_s == pytest.approx(10.0)
    quiet = at(seen, 110.0)  # the last request arrived at 99.5
    assert quiet.window(6.0).requests_per_s == 0.0
    assert quiet.idle_s == pytest.approx(10.5)
    assert quiet.window(60.0).requests_per_s == pytest.approx(50 / 60)


def test_a_long_window_is_the_mean_of_the_short_ones_it_spans(seen):
    # the bucketed average Knative takes equals the control plane's integral average
    for t in (60.0, 90.0, 120.0):
        long = at(seen, t).window(60.0).concurrent_requests
        short = [at(seen, t - 6.0 * k).window(6.0).concurrent_requests for k in range(10)]
        assert long == pytest.approx(sum(short) / 10, rel=1e-9, abs=1e-12)
        buckets = [at(seen, t - 2.0 * k).window(2.0).concurrent_requests for k in range(30)]
        assert long == pytest.approx(sum(buckets) / 30, rel=1e-9, abs=1e-12)


def test_replicas_by_stage(seen):
    for o in seen:
        assert o.ready == o.stage("ready")
        assert o.starting == sum(o.stage(s) for s in ("pending", "scheduling", "downloading",
                                                        "initializing"))
        assert o.ready + o.starting + o.stage("draining") == 2  # what the policy keeps
    assert seen[-1].min_replicas == 0 and seen[-1].max_replicas == 3
