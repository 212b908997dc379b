"""The provider's policy: its windows, scale to zero and cron scaling schedules."""

from __future__ import annotations

import pytest

import sim
from sim.errors import InputError
from tests.policies.observations import make, observe
from tests.policies.spike import spike_scenario


def run(policy, loads, *, desired=1, **kw):
    """Decisions at t = 10, 20, … for the concurrency values in ``loads``."""
    out = []
    for i, load in enumerate(loads, start=1):
        d = policy.decide(observe(policy, t=10.0 * i, ready=desired, desired=desired,
                                  concurrent=load, **kw))
        out.append(d)
        desired = d
    return out


def test_scale_up_once_the_higher_desire_has_held_for_the_window():
    fw = make("fireworks", load_targets={"default": None, "concurrent_requests": 1})
    # desire 3 from t = 10: it has held for 30 s at t = 40
    assert run(fw, [3, 3, 3, 3]) == [1, 1, 1, 3]


def test_a_dip_inside_the_window_delays_the_scale_up():
    fw = make("fireworks", load_targets={"default": None, "concurrent_requests": 1})
    assert run(fw, [3, 3, 1, 3, 3, 3, 3]) == [1, 1, 1, 1, 1, 1, 3]


def test_scale_up_goes_to_the_lowest_desire_held_over_the_window():
    fw = make("fireworks", load_targets={"default": None, "concurrent_requests": 1})
    assert run(fw, [5, 3, 4, 6]) == [1, 1, 1, 3]


def test_scale_down_after_the_window_since_the_last_change():
    fw = make("fireworks", load_targets={"default": None, "concurrent_requests": 1})
    loads = [3] * 4 + [1] * 70  # up to 3 at t = 40, then desire 1
    decisions = run(fw, loads)
    assert decisions[3] == 3
    first_down = next(i for i, d in enumerate(decisions) if i > 3 and d < 3)
    # the 3s of t <= 40 leave the 10-minute window after t = 640: down at t = 650
    assert 10.0 * (first_down + 1) == 650.0
    assert decisions[first_down] == 1


def test_load_targets_take_the_max_over_metrics():
    fw = make("fireworks", load_targets={"default": 0.5, "requests_per_second": 2,
                                         "tokens_generated_per_second": 100})
    obs = observe(fw, t=10, concurrent=4.0, capacity=4.0, rps=7.0, output=250.0)
    # default: ceil(4 / (0.5 * 4)) = 2; rps: ceil(7/2) = 4; tokens: ceil(250/100) = 3
    assert fw.raw_desire(obs) == 4


def timeline(policy, until, *, start=10.0, desired=1, **kw):
    """Decisions every 10 s from ``start`` to ``until``, each fed back as the next
    observation's replicas (no load unless ``kw`` says)."""
    out = {}
    t = start
    while t <= until + 1e-9:
        desired = policy.decide(observe(policy, t=t, ready=desired, desired=desired, **kw))
        out[round(t)] = desired
        t += 10.0
    return out


def test_no_load_keeps_one_replica_until_the_scale_to_zero_window():
    fw = make("fireworks")
    decisions = timeline(fw, 2000, desired=2)
    assert decisions[600] == 2 and decisions[610] == 1  # down after 10 min, not to zero
    assert decisions[2000] == 1


def test_scale_to_zero_after_the_window_without_requests():
    fw = make("fireworks", scale_to_zero_window="5m")
    assert fw.decide(observe(fw, t=10, ready=1, idle=299.0)) == 1
    assert fw.decide(observe(fw, t=20, ready=1, idle=300.0)) == 0
    # never below min_replicas
    fw = make("fireworks", scale_to_zero_window="5m")
    assert fw.decide(observe(fw, t=10, ready=1, idle=900.0, min_replicas=1)) == 1


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("scale_up_window", "2h", "between 0s and 1h"),
    ("scale_down_window", "61m", "between 0s and 1h"),
    ("scale_to_zero_window", "4m", "at least 5m"),
])
def test_windows_are_bounded_as_the_provider_bounds_them(key, value, reason):
    doc = spike_scenario({"policy": "fireworks", key: value})
    with pytest.raises(InputError, match=rf"deployments\[0\]\.autoscaler.*{reason}"):
        sim.load_scenario(doc)


# ---------------------------------------------------------- scaling schedules

NINE = {"name": "business", "schedule": "0 9 * * *", "duration": "1h", "min_replicas": 3}
HALF = {"name": "peak", "schedule": "30 9 * * *", "duration": "10m", "min_replicas": 5}


def test_schedules_raise_the_minimum_at_once_and_the_highest_wins():
    fw = make("fireworks", scaling_schedules=[NINE, HALF],
              start_time="2024-01-01T08:59:00Z")
    assert fw.initial_replicas() == 0
    d = timeline(fw, 3700, desired=1)
    assert d[50] == 1  # 08:59:50
    assert d[60] == 3  # 09:00: a minimum binds at once, no scale-up window
    assert d[1850] == 3 and d[1860] == 5  # 09:30: both active, the highest wins
    # 09:40: the minimum is 3 again, a scale-down: allowed once the desire has been
    # lower for the scale-down window since the last change (09:30)
    assert d[2450] == 5 and d[2460] == 3
    assert d[3650] == 3 and d[3660] == 1  # 10:00: the schedule is over
    # load never asks for zero; the scale-to-zero window does (idle for 1 h)
    assert fw.decide(observe(fw, t=3710, ready=1, idle=3599.0)) == 1
    assert fw.decide(observe(fw, t=3720, ready=1, idle=3600.0)) == 0


def test_a_schedule_active_at_the_start_sets_the_initial_replicas():
    fw = make("fireworks", scaling_schedules=[NINE], start_time="2024-01-01T09:10:00Z")
    assert fw.initial_replicas() == 3
    assert fw.decide(observe(fw, t=10, ready=3, idle=7200.0)) == 3  # not to zero while active


def test_schedules_follow_their_time_zone_and_weekdays():
    weekday = {"name": "ny", "schedule": "0 9 * * 1-5", "duration": "1h", "min_replicas": 2,
               "time_zone": "America/New_York"}
    # Monday 2024-01-01 13:59 UTC = 08:59 in New York
    fw = make("fireworks", scaling_schedules=[weekday], start_time="2024-01-01T13:59:00Z")
    assert fw.scheduled_minimum(0.0) == 0
    assert fw.scheduled_minimum(60.0) == 2
    # Saturday 2024-01-06 09:00 in New York: not a weekday
    assert fw.scheduled_minimum(5 * 86400 + 60.0) == 0


@pytest.mark.parametrize(("schedules", "reason"), [
    ([{**NINE, "name": f"s{i}"} for i in range(6)], "at most 5"),
    ([{**NINE, "schedule": "0 9 * *"}], "cron expression of five fields"),
    ([{**NINE, "time_zone": "Mars/Olympus"}], "unknown time zone"),
    ([NINE, NINE], "distinct names"),
    ([{**NINE, "duration": "0s"}], "greater than 0"),
])
def test_bad_schedules_are_refused_when_the_scenario_loads(schedules, reason):
    doc = spike_scenario({"policy": "fireworks", "scaling_schedules": schedules})
    with pytest.raises(InputError, match=rf"deployments\[0\]\.autoscaler.*{reason}"):
        sim.load_scenario(doc)


def test_a_schedule_in_a_run():
    doc = spike_scenario({"policy": "fireworks", "start_time": "2024-01-01T08:50:00Z",
                          "scaling_schedules": [NINE]}, duration="30m")
    doc["deployments"][0]["traffic"]["arrivals"] = {"kind": "poisson", "rps": 0.2}
    tl = sim.run(doc).timeline
    # 09:00 is t = 600 s: three replicas requested then, ready after the cold start
    assert tl.loc[tl["t_end"] == 600, "ready_replicas"].iloc[0] == 1
    assert tl.loc[tl["t_end"] == 660, "desired_replicas"].iloc[0] == 3
    assert tl.loc[tl["t_end"] == 720, "ready_replicas"].iloc[0] == 3
