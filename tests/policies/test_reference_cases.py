"""Hand-computed cases of each policy's published rules, through the policies'
own decision functions (and through ``decide`` on a matching observation)."""

from __future__ import annotations

import pytest

from sim.policies.hpa import Behavior, Normalizer, external_metric_replicas, pods_metric_replicas
from sim.policies.kpa import Decider, resolve_target
from sim.policies.ray_serve import apply_scaling_factors
from sim.policies.target_tracking import Cooldowns
from tests.policies.observations import make, observe

# --------------------------------------------------------------------- HPA


def test_hpa_case_1_ratio_above_tolerance_scales_to_ceil_ratio_times_ready():
    # 4 ready pods at 90 % against a 60 % target: ratio 1.5 -> ceil(6.0) = 6
    assert pods_metric_replicas([90.0] * 4, 60.0, current=4) == 6
    hpa = make("hpa", metrics={"utilization": 0.6})
    # utilization = concurrency per replica / capacity: 36 in flight over 4 replicas of 10
    assert hpa.decide(observe(hpa, t=15, ready=4, concurrent=36.0, capacity=10.0)) == 6


def test_hpa_case_2_within_tolerance_keeps_the_count():
    # 64 % against 60 %: ratio 1.067, within 0.1
    assert pods_metric_replicas([64.0] * 4, 60.0, current=4) == 4
    hpa = make("hpa", metrics={"utilization": 0.6})
    assert hpa.decide(observe(hpa, t=15, ready=4, concurrent=25.6, capacity=10.0)) == 4


def test_hpa_case_3_a_pod_missing_its_sample_counts_as_zero_when_scaling_up():
    # 3 pods at 90 %, one without a sample: newRatio = 270/4/60 = 1.125 -> ceil(4.5) = 5
    assert pods_metric_replicas([90.0] * 3, 60.0, current=4, missing=1) == 5
    # a replica initializing has no metric yet: it is the missing pod
    hpa = make("hpa", metrics={"utilization": 0.6})
    obs = observe(hpa, t=15, stages={"ready": 3, "initializing": 1}, desired=4,
                  concurrent=27.0, capacity=10.0)
    assert hpa.decide(obs) == 5


def test_hpa_missing_pods_count_at_the_target_when_scaling_down():
    # ratio 0.5 over 2 reporting pods, 2 missing at 100 %: newRatio 0.75 -> ceil(3.0) = 3
    assert pods_metric_replicas([30.0] * 2, 60.0, current=4, missing=2) == 3


def test_hpa_case_4_default_scale_up_rate_is_the_larger_of_percent_and_pods():
    n = Normalizer(Behavior())
    # no recent events: Percent 100 -> ceil(10 * 2) = 20, Pods 4 -> 14; selectPolicy Max
    assert n.scale_up_limit(0.0, 10) == 20
    only_pods = Normalizer(Behavior.model_validate(
        {"scale_up": {"policies": [{"type": "Pods", "value": 4, "period": "15s"}]}}))
    assert only_pods.scale_up_limit(0.0, 10) == 14
    select_min = Normalizer(Behavior.model_validate({"scale_up": {"select_policy": "Min"}}))
    assert select_min.scale_up_limit(0.0, 10) == 14
    assert n.normalize(0.0, 10, 50, 1, 100) == 20
    # through the policy: per-pod load 5x the target asks for 50
    hpa = make("hpa", metrics={"concurrent_requests": 2})
    assert hpa.decide(observe(hpa, t=15, ready=10, concurrent=100.0)) == 20
    # 10 s later, within the 15 s period: the period started at 10, so 20 is still the cap
    assert hpa.decide(observe(hpa, t=25, ready=10, desired=20, concurrent=200.0)) == 20
    # once the period has passed, the cap is computed from 20
    assert hpa.decide(observe(hpa, t=31, ready=20, concurrent=200.0)) == 40


def test_hpa_case_5_scale_down_stabilization_takes_the_max_of_the_window():
    hpa = make("hpa", metrics={"concurrent_requests": 1})
    # recommendations 10, 4, 2 within 300 s: max is 10, the count stays 10
    assert hpa.decide(observe(hpa, t=0, ready=10, concurrent=10.0)) == 10
    assert hpa.decide(observe(hpa, t=100, ready=10, concurrent=4.0)) == 10
    assert hpa.decide(observe(hpa, t=200, ready=10, concurrent=2.0)) == 10
    # at t = 400 the window (100, 400] holds only 2s; Percent 100 allows 0 -> max(min, 2)
    assert hpa.decide(observe(hpa, t=400, ready=10, concurrent=2.0, min_replicas=1)) == 2
    other = make("hpa", metrics={"concurrent_requests": 1})
    for t, load in ((0, 10.0), (100, 4.0), (200, 2.0)):
        other.decide(observe(other, t=t, ready=10, concurrent=load, min_replicas=3))
    assert other.decide(observe(other, t=400, ready=10, concurrent=2.0, min_replicas=3)) == 3


def test_hpa_scale_down_rate_limit_percent():
    down = Normalizer(Behavior.model_validate(
        {"scale_down": {"stabilization_window": "0s",
                        "policies": [{"type": "Percent", "value": 50, "period": "60s"}]}}))
    # trunc(10 * 0.5) = 5: a wish for 2 is held at 5
    assert down.normalize(0.0, 10, 2, 1, 100) == 5
    down.record(0.0, 10, 5)
    # within the period the start is 10 again (5 + 5 deleted): still 5
    assert down.normalize(30.0, 5, 2, 1, 100) == 5


# --------------------------------------------------------------------- KPA


def test_kpa_panic_example():
    target, total = resolve_target(100, 0.7)
    assert (target, total) == (pytest.approx(70.0), 100)
    decider = Decider()
    want, ebc = decider.scale(0.0, ready=2, stable=150.0, panic=300.0, target=70.0, total=100)
    # dspc 3, dppc 5; maxDown 1, maxUp 2000; 5/2 = 2.5 >= 2: panic -> 5
    assert want == 5
    assert decider.panic_time == 0.0
    assert ebc == -300  # floor(2*100 - 200 - 300): the activator is in the path
    # through the policy: stable (60 s) and panic (6 s) windows of the observation
    kpa = make("kpa", container_concurrency=100)
    obs = observe(kpa, t=2, ready=2, concurrent=150.0,
                  windows={6.0: {"concurrent": 300.0}})
    assert kpa.decide(obs) == 5
    assert kpa.excess_burst_capacity == -300


def test_kpa_does_not_scale_down_in_panic_and_leaves_it_a_stable_window_later():
    kpa = make("kpa", container_concurrency=100)
    kpa.decide(observe(kpa, t=2, ready=2, concurrent=150.0, windows={6.0: {"concurrent": 300}}))
    # the burst is over: stable would want 1, but panic holds the max (5)
    calm = {6.0: {"concurrent": 10.0}}
    assert kpa.decide(observe(kpa, t=30, ready=5, desired=5, concurrent=50.0,
                              windows=calm)) == 5
    assert kpa.decide(observe(kpa, t=62, ready=5, desired=5, concurrent=50.0,
                              windows=calm)) == 5  # panicTime + 60 s is not before now
    # 60 s after the last over-threshold tick: stable mode, ceil(50/70) = 1, but max
    # scale-down rate 2 lets 5 ready pods go only to floor(5/2) = 2
    assert kpa.decide(observe(kpa, t=64, ready=5, desired=5, concurrent=50.0,
                              windows=calm)) == 2


def test_kpa_scales_to_zero_after_a_stable_window_and_the_grace_period():
    kpa = make("kpa", container_concurrency=10)
    decisions = {}
    for t in range(2, 200, 2):
        decisions[t] = kpa.decide(observe(kpa, t=t, ready=1, desired=1, concurrent=0.0))
    # active from the first tick (t = 2); 60 s later marked inactive; 30 s later zero
    assert set(decisions[t] for t in range(2, 92, 2)) == {1}
    assert decisions[92] == 0


# --------------------------------------------------------------- KEDA


def test_keda_activation_threshold_overrides_the_hpa():
    # threshold 10, activation 50, queue 40: the HPA would want 4 ...
    assert external_metric_replicas(40.0, 10.0, current=1) == 4
    keda = make("keda", triggers=[{"metric": "concurrent_requests", "threshold": 10,
                                   "activation_threshold": 50}])
    # ... but the trigger is not active: the target scales to 0
    assert keda.decide(observe(keda, t=30, ready=4, concurrent=40.0)) == 0


def test_keda_active_trigger_hands_over_to_the_hpa_and_wakes_from_zero():
    keda = make("keda", triggers=[{"metric": "concurrent_requests", "threshold": 10,
                                   "activation_threshold": 50}])
    # active (60 > 50): the HPA scales on ceil(60/10) = 6
    assert keda.decide(observe(keda, t=30, ready=4, concurrent=60.0)) == 6
    # at zero, an active trigger starts max(min, 1) at the next poll (30 s later)
    assert keda.decide(observe(keda, t=45, ready=0, desired=0, concurrent=60.0)) == 0
    assert keda.decide(observe(keda, t=60, ready=0, desired=0, concurrent=60.0)) == 1


def test_keda_cooldown_before_scaling_to_zero():
    keda = make("keda", triggers=[{"metric": "requests_per_second", "threshold": 5}])
    assert keda.decide(observe(keda, t=30, ready=1, rps=1.0)) == 1  # active: last seen now
    for t in range(60, 331, 30):  # inactive, but not for 300 s yet
        assert keda.decide(observe(keda, t=t, ready=1, rps=0.0)) == 1
    assert keda.decide(observe(keda, t=360, ready=1, rps=0.0)) == 0  # 30 + 300 < 360


# ----------------------------------------------------------- Ray Serve


def test_ray_serve_example_1_upscale_after_301_ticks():
    # cur 4, target 2, total 20: desired 10; upscaling factor 0.5 -> ceil(4 + 3) = 7
    assert apply_scaling_factors(10.0, 4, 0.5, 1.0) == 7
    ray = make("ray_serve", target_ongoing_requests=2, upscaling_factor=0.5,
               sync_period="100ms")
    decisions = [ray.decide(observe(ray, t=k * 0.1, ready=4, concurrent=20.0))
                 for k in range(1, 302)]
    assert decisions[:300] == [4] * 300
    assert decisions[300] == 7  # the 301st consecutive tick


def test_ray_serve_example_1_at_a_coarser_sync_applies_at_the_same_time():
    ray = make("ray_serve", target_ongoing_requests=2, upscaling_factor=0.5)  # 1 s sync
    decisions = {t: ray.decide(observe(ray, t=t, ready=4, concurrent=20.0))
                 for t in range(100, 131)}
    # 0.1 s ticks from t = 100 would apply on the tick at 130.0
    assert all(d == 4 for t, d in decisions.items() if t < 130)
    assert decisions[130] == 7


def test_ray_serve_example_2_downscale_after_600_seconds():
    # cur 10, total 6: desired 3; downscaling factor 0.5 -> ceil(6.5) = 7
    assert apply_scaling_factors(3.0, 10, 1.0, 0.5) == 7
    ray = make("ray_serve", target_ongoing_requests=2, downscaling_factor=0.5)
    decisions = {t: ray.decide(observe(ray, t=t, ready=10, concurrent=6.0))
                 for t in range(1000, 1601)}
    assert all(d == 10 for t, d in decisions.items() if t < 1600)
    assert decisions[1600] == 7


def test_ray_serve_cold_start_fast_path_has_no_delay():
    ray = make("ray_serve", upscaling_factor=3.0)
    assert ray.decide(observe(ray, t=1, ready=0, desired=0, concurrent=5.0)) == 3
    assert ray.decide(observe(ray, t=2, ready=0, desired=0, concurrent=0.0)) == 0


def test_ray_serve_stuck_downscale_decrements_by_one():
    # desired 3 from 4 at factor 0.1: ceil(4 - 0.1) = 4 is stuck, so 3
    assert apply_scaling_factors(3.0, 4, 1.0, 0.1) == 3
    # but ceil(3.5) = 4 is not below 4: no decrement
    assert apply_scaling_factors(3.5, 4, 1.0, 0.1) == 4


# ---------------------------------------------------------------- AWS


def test_aws_scale_out_cooldown_counts_the_capacity_already_added():
    cd = Cooldowns(300.0, 300.0)
    assert cd.scale_out(0.0, 4, step=2) == 6
    # during the cooldown a +3 step counts the +2 already added: only 1 more
    assert cd.scale_out(60.0, 6, step=3) == 7
    # a smaller one adds nothing
    assert cd.scale_out(120.0, 7, step=1) == 7
    # after the cooldown a step is from the current capacity again
    assert cd.scale_out(420.0, 7, step=3) == 10


def test_aws_scale_in_cooldown_blocks_scale_in_and_a_scale_out_cancels_it():
    cd = Cooldowns(300.0, 300.0)
    assert cd.scale_in(0.0, 10, to=8) == 8
    assert cd.scale_in(100.0, 8, to=6) == 8  # blocked
    assert cd.scale_out(150.0, 8, to=9) == 9  # proceeds at once, cancels the scale-in cooldown
    assert cd.scale_in(160.0, 9, to=7) == 7


def test_target_tracking_alarms_and_cooldown_through_the_policy():
    tt = make("target_tracking", metric="concurrent_requests", target_value=10)
    # per-instance 20 against 10: the high alarm needs 3 datapoints above
    assert tt.decide(observe(tt, t=60, ready=2, concurrent=40.0)) == 2
    assert tt.decide(observe(tt, t=120, ready=2, concurrent=40.0)) == 2
    assert tt.decide(observe(tt, t=180, ready=2, concurrent=40.0)) == 4
    # the 2 added replicas are not in service yet: the same load asks for 4 — covered
    assert tt.decide(observe(tt, t=240, ready=2, desired=4, concurrent=40.0)) == 4
    # a larger scale-out during the cooldown adds only the difference
    assert tt.decide(observe(tt, t=300, ready=2, desired=4, concurrent=60.0)) == 6
