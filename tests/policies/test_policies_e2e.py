"""Each policy in a real run: it scales up under a spike and back down after."""

from __future__ import annotations

import math
from typing import Any

import pytest

import sim
from tests.policies.spike import spike_scenario

MINUTE = 60.0

REACTIVE = {
    "fireworks": {"policy": "fireworks"},
    "hpa": {"policy": "hpa"},
    "keda": {"policy": "keda", "triggers": [{"metric": "concurrent_requests", "threshold": 10}]},
    "kpa": {"policy": "kpa"},
    "ray_serve": {"policy": "ray_serve"},
    "target_tracking": {"policy": "target_tracking"},
    "predictive": {"policy": "predictive"},
}


def spike_replicas_needed() -> int:
    """Replicas the spike (30 req/s of 500 + 100 tokens) needs at saturation throughput."""
    shape = sim.Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB",
                      precision="FP8", max_concurrency=16)
    return math.ceil(30 * 100 / shape.max_throughput(500, 100))


def ready_at(res: sim.Result, minute: float) -> int:
    tl = res.timeline
    return int(tl.loc[tl["t_end"] == minute * MINUTE, "ready_replicas"].iloc[0])


def long_answers(autoscaler: dict[str, Any]) -> dict[str, Any]:
    """The spike with 200-token answers: a replica holding 16 requests, each for about
    0.7 s of decoding, serves ~23 req/s, so 30 req/s needs several replicas at once."""
    doc = spike_scenario(autoscaler)
    doc["deployments"][0]["traffic"]["output_tokens"]["value"] = 200
    return doc


@pytest.mark.parametrize("name", sorted(REACTIVE))
def test_scales_up_under_the_spike_and_down_after(name: str):
    res = sim.run(long_answers(REACTIVE[name]))
    tl = res.timeline
    minutes = tl["t_end"] / MINUTE
    before = tl.loc[minutes <= 10, "ready_replicas"]
    during = tl.loc[(minutes > 10) & (minutes <= 30), "ready_replicas"]
    after = tl.loc[minutes > 65, "ready_replicas"]
    assert before.max() == 1  # quiet: the minimum
    # 30 req/s needs more replicas than one at saturation can serve
    assert during.max() >= spike_replicas_needed()
    assert after.max() == 1  # back to the minimum once the spike is over
    assert res.summary["total"]["failed"] == 0


def twin_spikes(autoscaler: dict[str, Any]) -> dict[str, Any]:
    doc = spike_scenario(autoscaler, duration="60m")
    doc["deployments"][0]["traffic"]["arrivals"]["spikes"] = [
        {"at": "10m", "duration": "10m", "rps": 30}, {"at": "40m", "duration": "10m", "rps": 30}]
    return doc


def test_predictive_is_ready_before_a_spike_seen_a_season_earlier():
    predictive = {"policy": "predictive", "reactive": {"policy": "fireworks"},
                  "metric": "requests_per_second", "target": 8, "season": "30m",
                  "resolution": "1m", "lead": "3m"}
    ahead = sim.run(twin_spikes(predictive))
    reactive = sim.run(twin_spikes({"policy": "fireworks"}))
    # before the first spike neither knows; before the second the forecast has raised it
    assert ready_at(ahead, 10) == ready_at(reactive, 10) == 1
    assert ready_at(reactive, 40) == 1
    assert ready_at(ahead, 40) >= 4  # ceil(30 req/s / 8) = 4
    ttft = []
    for res in (ahead, reactive):
        second = res.requests[res.requests["arrival_s"] >= 40 * MINUTE]
        ttft.append((second["first_token_s"] - second["arrival_s"]).quantile(0.99))
    assert ttft[0] < ttft[1]


def test_scheduled_follows_the_clock_not_the_load():
    doc = spike_scenario({"policy": "scheduled", "default_replicas": 0,
                          "schedules": [{"start": "35m", "end": "50m", "replicas": 3}]},
                         min_replicas=0)
    res = sim.run(doc)
    # the spike (10-30 min) meets no replica and starts none: the clock decides
    assert ready_at(res, 20) == 0
    assert res.summary["total"]["http_503"] > 0
    assert ready_at(res, 40) == 3  # started at 35 min, ready after the cold start
    assert ready_at(res, 60) == 0


def test_static_keeps_its_replicas():
    res = sim.run(spike_scenario({"policy": "static", "replicas": 2}))
    assert set(res.timeline["ready_replicas"]) == {2}


TO_ZERO = {
    "fireworks": {"policy": "fireworks", "scale_to_zero_window": "5m"},
    "keda": {"policy": "keda", "triggers": [{"metric": "requests_per_second", "threshold": 2}]},
    "kpa": {"policy": "kpa"},
    "ray_serve": {"policy": "ray_serve", "downscale_delay": "5m"},
    "target_tracking": {"policy": "target_tracking"},
    "predictive": {"policy": "predictive",
                   "reactive": {"policy": "fireworks", "scale_to_zero_window": "5m"}},
}


def two_visits(autoscaler: dict[str, Any]) -> dict[str, Any]:
    """Traffic for 5 minutes, 35 minutes of nothing, traffic again."""
    doc = spike_scenario(autoscaler, duration="60m", min_replicas=0)
    doc["deployments"][0]["traffic"]["arrivals"] = {
        "kind": "spikes", "base_rps": 0,
        "spikes": [{"at": "0s", "duration": "5m", "rps": 5},
                   {"at": "40m", "duration": "5m", "rps": 5}]}
    return doc


@pytest.mark.parametrize("name", sorted(TO_ZERO))
def test_goes_to_zero_when_idle_and_comes_back(name: str):
    res = sim.run(two_visits(TO_ZERO[name]))
    tl = res.timeline
    minutes = tl["t_end"] / MINUTE
    assert tl.loc[(minutes > 2) & (minutes <= 5), "ready_replicas"].min() >= 1
    assert tl.loc[(minutes > 30) & (minutes <= 40), "ready_replicas"].max() == 0
    assert tl.loc[minutes > 44, "ready_replicas"].max() >= 1  # back for the second visit
    late = res.requests[res.requests["arrival_s"] >= 40 * MINUTE]
    assert (late["attempts"] > 1).any()  # the first of them met no replica: 503, retry
    assert (late["status"] == "ok").mean() > 0.9  # clients retried through the cold start


def test_hpa_never_goes_below_one_replica():
    res = sim.run(two_visits({"policy": "hpa"}))
    assert res.timeline["ready_replicas"].min() == 1
