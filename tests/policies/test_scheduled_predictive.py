"""Schedules of replica counts, cron windows, and forecasts from history."""

from __future__ import annotations

import pytest

import sim
from sim.errors import InputError
from sim.policies.schedule import CronWindow, RunWindow
from tests.policies.observations import make, observe
from tests.policies.spike import spike_scenario


def test_cron_window_is_active_for_its_duration_from_each_firing():
    w = CronWindow("0 9 * * *", 3600.0)  # t = 0 is midnight UTC
    assert not w.active(9 * 3600 - 1)
    assert w.active(9 * 3600)
    assert w.active(10 * 3600 - 1)
    assert not w.active(10 * 3600)
    assert w.active(86400 + 9.5 * 3600)  # the next day
    # a firing before t = 0 counts: started at 09:00, the run starts at 09:30
    late = CronWindow("0 9 * * *", 3600.0, sim.policies.schedule.aware(
        __import__("datetime").datetime(2024, 1, 1, 9, 30)))
    assert late.active(0.0) and not late.active(1800.0)


def test_run_window_once_and_repeating():
    once = RunWindow(60.0, 120.0)
    assert [once.active(t) for t in (59, 60, 119, 120)] == [False, True, True, False]
    every = RunWindow(60.0, 120.0, every_s=300.0)
    assert [every.active(t) for t in (360, 419, 420, 659)] == [True, True, False, False]
    with pytest.raises(ValueError, match="end must be after"):
        RunWindow(10.0, 10.0)


def test_scheduled_highest_active_window_wins_and_default_outside():
    p = make("scheduled", default_replicas=1, schedules=[
        {"start": "10m", "end": "30m", "replicas": 3},
        {"start": "20m", "end": "25m", "replicas": 5},
        {"cron": "0 1 * * *", "duration": "30m", "replicas": 2},
    ])
    assert [p.replicas_at(m * 60.0) for m in (0, 10, 20, 25, 30, 60, 75, 95)] == \
        [1, 3, 5, 3, 1, 2, 2, 1]
    assert p.initial_replicas() == 1
    # clamped to the deployment's bounds
    assert p.decide(observe(p, t=1200, max_replicas=4)) == 4
    assert p.decide(observe(p, t=0, min_replicas=2)) == 2
    assert p.scales_from_zero is False


@pytest.mark.parametrize(("window", "reason"), [
    ({"replicas": 1}, "cron \\+ duration, or start \\+ end"),
    ({"replicas": 1, "cron": "0 9 * * *"}, "needs a duration"),
    ({"replicas": 1, "cron": "0 9 * * *", "duration": "1h", "start": "0s"}, "not both"),
    ({"replicas": 1, "start": "10m", "end": "5m"}, "end must be after"),
    ({"replicas": 1, "start": "0s", "end": "2h", "every": "1h"}, "longer than its period"),
])
def test_bad_scheduled_windows_are_refused(window, reason):
    doc = spike_scenario({"policy": "scheduled", "schedules": [window]})
    with pytest.raises(InputError, match=rf"deployments\[0\]\.autoscaler.*{reason}"):
        sim.load_scenario(doc)


# ------------------------------------------------------------------ predictive

def feed(policy, until, load_at, *, desired=1):
    """Decisions every 10 s up to ``until``; the load (req/s) at t is ``load_at(t)``."""
    out = {}
    for k in range(1, int(until / 10) + 1):
        t = 10.0 * k
        desired = policy.decide(observe(policy, t=t, ready=desired, desired=desired,
                                        rps=load_at(t)))
        out[round(t)] = desired
    return out


def burst(t: float) -> float:
    """5 req/s from 300 to 360 s of each 600 s season, nothing else."""
    return 5.0 if 300 < t % 600 <= 360 else 0.0


def predictive(**kw):
    return make("predictive", reactive={"policy": "static", "replicas": 1},
                metric="requests_per_second", target=1, season="600s", resolution="60s",
                lead="120s", sync_period="10s", **kw)


def test_predictive_scales_ahead_by_the_lead_from_the_previous_season():
    p = predictive()
    d = feed(p, 1300, burst)
    assert max(d[t] for t in d if t <= 600) == 1  # first season: nothing to forecast
    # the bucket [300, 360) of the last season is due at 900; capacity from 900 - 120
    assert d[770] == 1 and d[780] == 5
    assert all(d[t] == 5 for t in range(780, 960, 10))
    assert d[960] == 1  # the forecast is over; the reactive policy holds 1


def test_predictive_never_scales_in_on_the_forecast_alone():
    p = make("predictive", reactive={"policy": "fireworks",
                                     "load_targets": {"default": None,
                                                      "requests_per_second": 1}},
             metric="requests_per_second", target=1, season="600s", resolution="60s",
             lead="120s")
    d = feed(p, 1300, burst)
    assert d[780] == 5
    # after the forecast burst the forecast asks for 0, but fireworks scales in only
    # once its own desire has been lower for its 10-minute window
    assert all(d[t] == 5 for t in range(780, 1300, 10))


def test_predictive_averages_seasons_and_takes_the_peak_statistic():
    p = predictive(seasons=2, statistic="max")
    d = feed(p, 1500, lambda t: (8.0 if t <= 600 else 4.0) if 300 < t % 600 <= 310 else 0.0)
    # the bucket [300, 360) holds a peak of 8 in season 1, 4 in season 2 (of a 10 s
    # mean each): the third season's, due at 1500, is forecast at their mean, 6
    assert d[1370] == 1 and d[1380] == 6


def test_predictive_needs_a_target_for_rate_metrics_and_a_valid_reactive():
    with pytest.raises(InputError, match="needs a target per replica"):
        sim.load_scenario(spike_scenario({"policy": "predictive",
                                          "metric": "requests_per_second"}))
    with pytest.raises(InputError, match=r"autoscaler\.reactive.*scale_to_zero_window.*5m"):
        sim.load_scenario(spike_scenario({"policy": "predictive", "reactive": {
            "policy": "fireworks", "scale_to_zero_window": "1m"}}))
    with pytest.raises(InputError, match="cannot itself be predictive"):
        sim.load_scenario(spike_scenario({"policy": "predictive",
                                          "reactive": {"policy": "predictive"}}))
