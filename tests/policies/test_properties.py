"""Properties of every policy: decisions within [min, max]; the same observations,
the same decisions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.policies import Policy
from tests.policies.observations import make, observe

CONFIGS: dict[str, dict[str, Any]] = {
    "fireworks": {},
    "fireworks-schedules": {"policy": "fireworks", "scaling_schedules": [
        {"name": "a", "schedule": "*/7 * * * *", "duration": "3m", "min_replicas": 4},
        {"name": "b", "schedule": "*/11 * * * *", "duration": "5m", "min_replicas": 9}]},
    "hpa": {"metrics": {"utilization": 0.6, "requests_per_second": 3}},
    "keda": {"triggers": [{"metric": "concurrent_requests", "threshold": 4,
                           "activation_threshold": 2}]},
    "kpa": {"scale_down_delay": "30s"},
    "ray_serve": {"upscaling_factor": 0.5, "upscale_delay": "3s", "downscale_delay": "20s",
                  "downscale_to_zero_delay": "5s"},
    "target_tracking": {"metric": "concurrent_requests", "target_value": 5,
                        "scale_in_datapoints": 3},
    "scheduled": {"default_replicas": 2, "schedules": [
        {"start": "1m", "end": "3m", "every": "5m", "replicas": 12}]},
    "predictive": {"metric": "requests_per_second", "target": 2, "season": "10m",
                   "resolution": "1m", "lead": "2m", "sync_period": "10s"},
    "static": {"replicas": 3},
}


def build(key: str) -> Policy:
    params = dict(CONFIGS[key])
    name = params.pop("policy", key)
    return make(name, **params)


step = st.fixed_dictionaries({
    "ticks": st.integers(1, 20),
    "ready": st.integers(0, 30),
    "starting": st.integers(0, 5),
    "concurrent": st.floats(0, 500),
    "rps": st.floats(0, 100),
    "idle": st.floats(0, 10_000),
    "platform": st.none() | st.integers(0, 40),  # the platform set the target itself
})


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, list[dict[str, Any]]]:
    low = draw(st.integers(0, 5))
    high = draw(st.integers(low, 20))
    return low, high, draw(st.lists(step, min_size=1, max_size=40))


def play(policy: Policy, low: int, high: int, steps: list[dict[str, Any]]) -> list[int]:
    desired = max(low, min(high, policy.initial_replicas()))
    t, out = 0.0, []
    for s in steps:
        t += s["ticks"] * policy.sync_period_s
        if s["platform"] is not None:
            desired = s["platform"]
        obs = observe(policy, t=t, ready=s["ready"], starting=s["starting"], desired=desired,
                      min_replicas=low, max_replicas=high, concurrent=s["concurrent"],
                      rps=s["rps"], idle=s["idle"], capacity=8.0)
        desired = policy.decide(obs)
        out.append(desired)
    return out


QUIET = {"ticks": 1, "ready": 0, "starting": 0, "concurrent": 0.0, "rps": 0.0, "idle": 0.0}


@pytest.mark.parametrize("key", sorted(CONFIGS))
@settings(max_examples=40, deadline=None)
@given(case=scenarios())
@example(case=(0, 0, [{**QUIET, "platform": 1}]))  # the platform's target above max
@example(case=(1, 1, [{**QUIET, "platform": 0}]))  # … below min
def test_decisions_stay_within_min_and_max(key: str, case):
    low, high, steps = case
    assert all(low <= d <= high for d in play(build(key), low, high, steps))


@pytest.mark.parametrize("key", sorted(CONFIGS))
@settings(max_examples=25, deadline=None)
@given(case=scenarios())
def test_the_same_observations_give_the_same_decisions(key: str, case):
    low, high, steps = case
    assert play(build(key), low, high, steps) == play(build(key), low, high, steps)
