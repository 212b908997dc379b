"""The control plane against hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sim
from sim.errors import InputError

W8B_BF16 = sim.Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB").weight_bytes


def one_request_trace(tmp_path: Path, times_ms=(0,)) -> str:
    path = tmp_path / "one.jsonl"
    path.write_text("".join(
        json.dumps({"timestamp": t, "input_length": 10, "output_length": 5}) + "\n"
        for t in times_ms
    ))
    return str(path)


def deployment(trace: str, **changes: Any) -> dict[str, Any]:
    dep = {
        "name": "d",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "BF16"},
        "region": "US_IOWA_1",
        "min_replicas": 0,
        "max_replicas": 1,
        "autoscaler": {"policy": "fireworks"},
        # a 60 s cold start: scheduling 60 s, a download that takes no time
        "cold_start": {"scheduling": "60s", "weight_download_rate": "1e30B/s",
                       "initialization": "0s"},
        "traffic": {"arrivals": {"kind": "trace", "path": trace}},
    }
    dep.update(changes)
    return dep


def scenario(*deps: dict[str, Any], **changes: Any) -> dict[str, Any]:
    doc = {"name": "cp", "seed": 1, "duration": "10m", "timeline_interval": "10s",
           "deployments": list(deps)}
    doc.update(changes)
    return doc


def test_first_request_after_scale_to_zero_exhausts_five_retries(tmp_path):
    clients = {"max_retries": 5, "backoff_base": "1s", "backoff_max": "60s", "jitter": "none"}
    res = sim.run(scenario(deployment(one_request_trace(tmp_path)), clients=clients))
    req = res.requests.iloc[0]
    assert req["attempts"] == 6  # t = 0, 1, 3, 7, 15, 31: all before the replica is ready
    assert req["status"] == "failed_503"
    assert req["finish_s"] == pytest.approx(31.0)
    total = res.summary["total"]
    assert total["http_503"] == 6 and total["retries"] == 5 and total["cold_starts"] == 1


def test_ten_retries_capped_at_60s_succeed_on_the_seventh_attempt(tmp_path):
    clients = {"max_retries": 10, "backoff_base": "1s", "backoff_max": "60s", "jitter": "none"}
    res = sim.run(scenario(deployment(one_request_trace(tmp_path)), clients=clients))
    req = res.requests.iloc[0]
    assert req["status"] == "ok"
    assert req["attempts"] == 7
    assert req["attempt_s"] == pytest.approx(63.0)  # the replica was ready at t = 60 s
    assert res.billing["start_s"].iloc[0] == pytest.approx(60.0)


def test_queue_mode_buffers_requests_until_a_replica_is_ready(tmp_path):
    res = sim.run(scenario(deployment(one_request_trace(tmp_path), cold_start_mode="queue")))
    req = res.requests.iloc[0]
    assert req["status"] == "ok" and req["attempts"] == 1
    assert req["start_s"] == pytest.approx(60.0)
    assert res.summary["total"]["http_503"] == 0


def test_cold_start_is_scheduling_plus_download_plus_initialization(tmp_path):
    dep = deployment(one_request_trace(tmp_path), cold_start_mode="queue",
                     cold_start={"scheduling": "20s", "weight_download_rate": "2GB/s",
                                 "initialization": "40s"})
    res = sim.run(scenario(dep))
    assert res.billing["start_s"].iloc[0] == pytest.approx(20 + W8B_BF16 / 2e9 + 40)


def test_eight_free_gpus_leave_a_third_four_gpu_replica_pending(tmp_path):
    """12 H100 in the datacenter, 4 taken by other tenants until 30 min: 8 are free."""
    dep = deployment(one_request_trace(tmp_path),
                     shape={"accelerator": "H100_80GB", "count": 4, "precision": "BF16"},
                     autoscaler={"policy": "static", "replicas": 3}, max_replicas=3,
                     min_replicas=3)
    res = sim.run(scenario(
        dep, duration="1h",
        regions={"US_IOWA_1": {"H100_80GB": 12}},
        background_demand=[{"datacenter": "US_IOWA_1", "accelerator": "H100_80GB",
                            "steps": [{"at": "0s", "gpus": 4}, {"at": "30m", "gpus": 0}]}],
    ))
    d = res.summary["deployments"]["d"]
    assert d["pending_replica_seconds"] == pytest.approx(1800.0)
    starts = sorted(res.billing["start_s"])
    # two replicas were running from t = 0; the third got GPUs at 30 min, then cold-started
    assert starts[:2] == [0.0, 0.0]
    assert starts[2] == pytest.approx(1800.0 + 60.0 + 4 * 0 + W8B_BF16 / 1e30)
    assert d["cold_starts"] == 1
    tl = res.timeline
    assert tl.loc[tl["t_end"] <= 1800, "pending_replicas"].eq(1).all()
    assert tl.loc[tl["t_end"] > 1870, "ready_replicas"].eq(3).all()


def test_allocation_never_exceeds_inventory(tmp_path):
    dep = deployment(one_request_trace(tmp_path),
                     shape={"accelerator": "H100_80GB", "count": 4, "precision": "BF16"},
                     autoscaler={"policy": "static", "replicas": 3}, max_replicas=3)
    res = sim.run(scenario(dep, regions={"US_IOWA_1": {"H100_80GB": 8}}))
    per_dc = res.allocation.groupby(["t_end", "datacenter", "accelerator"])["gpus"].sum()
    assert per_dc.max() <= 8


def outage_run(tmp_path: Path, region: str) -> sim.Result:
    times = list(range(0, 3_600_000, 2_000))  # a request every 2 s for an hour
    dep = deployment(one_request_trace(tmp_path, times), region=region,
                     autoscaler={"policy": "static", "replicas": 1}, min_replicas=1)
    regions = {"US_IOWA_1": {"H100_80GB": 8}, "US_TEXAS_2": {"H100_80GB": 8}}
    probe = sim.run(scenario(dep, duration="1h", regions=regions))
    dc = probe.billing["datacenter"].iloc[0]
    return sim.run(scenario(
        dep, duration="1h", regions=regions,
        faults={"outages": [{"datacenter": dc, "start": "10m", "duration": "30m"}]},
    ))


def test_a_pinned_deployment_waits_for_its_datacenter(tmp_path):
    res = outage_run(tmp_path, "US_IOWA_1")
    lines = res.billing.sort_values("start_s")
    assert list(lines["datacenter"]) == ["US_IOWA_1", "US_IOWA_1"]
    assert lines["end_s"].iloc[0] == pytest.approx(600.0)  # lost at the outage
    assert lines["start_s"].iloc[1] == pytest.approx(2400.0 + 60.0)  # back after it + cold start
    assert res.summary["total"]["http_503"] > 0


def test_a_global_deployment_fails_over(tmp_path):
    res = outage_run(tmp_path, "US")
    lines = res.billing.sort_values("start_s")
    first, second = lines["datacenter"].iloc[0], lines["datacenter"].iloc[1]
    assert first != second
    assert lines["start_s"].iloc[1] == pytest.approx(600.0 + 60.0)  # replaced at once elsewhere


def test_scale_to_zero_after_the_window_without_requests(tmp_path):
    times = list(range(0, 120_000, 1_000))  # requests during the first 2 minutes
    dep = deployment(one_request_trace(tmp_path, times), cold_start_mode="queue",
                     autoscaler={"policy": "fireworks", "scale_to_zero_window": "5m"})
    res = sim.run(scenario(dep, duration="20m"))
    lines = res.billing
    assert len(lines) == 1
    last = res.requests["attempt_s"].max()
    # the controller (every 10 s) sees 5 min without requests, then the replica drains
    assert last + 300 <= lines["end_s"].iloc[0] <= last + 300 + 10 + 1e-6
    assert res.timeline["label"].iloc[-1] == "Scaled to 0"
    assert res.summary["deployments"]["d"]["final_label"] == "Scaled to 0"


def test_scale_to_zero_window_below_five_minutes_is_refused(tmp_path):
    dep = deployment(one_request_trace(tmp_path),
                     autoscaler={"policy": "fireworks", "scale_to_zero_window": "4m"})
    with pytest.raises(InputError, match=r"deployments\[0\]\.autoscaler.*at least 5m"):
        sim.load_scenario(scenario(dep))


def test_idle_deployment_with_min_zero_is_deleted_after_seven_days(tmp_path):
    dep = deployment(one_request_trace(tmp_path), cold_start_mode="queue",
                     autoscaler={"policy": "fireworks", "sync_period": "1h"})
    res = sim.run(scenario(dep, duration="8d", timeline_interval="1h"))
    tl = res.timeline
    deleted = tl.loc[tl["state"] == "DELETED", "t_end"]
    assert not deleted.empty
    assert 7 * 86400 <= deleted.min() <= 7 * 86400 + 3600 + 1e-6
    assert res.summary["deployments"]["d"]["final_state"] == "DELETED"


def test_replica_crashes_are_replaced_and_requests_retried(tmp_path):
    times = list(range(0, 3_600_000, 500))
    dep = deployment(one_request_trace(tmp_path, times),
                     autoscaler={"policy": "static", "replicas": 2}, min_replicas=2,
                     max_replicas=2)
    res = sim.run(scenario(dep, duration="1h", faults={"replica_mtbf": "15m"}))
    total = res.summary["total"]
    assert total["replica_crashes"] >= 2
    assert total["ok"] + total["failed"] == total["requests"]
    assert (res.requests["status"] == "ok").mean() > 0.9
    # every crash starts a replacement, which cold-starts
    assert total["cold_starts"] == total["replica_crashes"]


def test_same_seed_same_faults(tmp_path):
    times = list(range(0, 600_000, 500))
    dep = deployment(one_request_trace(tmp_path, times),
                     autoscaler={"policy": "static", "replicas": 2}, min_replicas=2,
                     max_replicas=2)
    doc = scenario(dep, faults={"replica_mtbf": "5m"})
    a, b = sim.run(doc), sim.run(doc)
    assert np.array_equal(a.billing["end_s"], b.billing["end_s"])


def late_traffic(start_s: float) -> dict[str, Any]:
    """No request before ``start_s``, then one minute of 1 req/s."""
    return {"arrivals": {"kind": "spikes", "base_rps": 0,
                         "spikes": [{"at": f"{start_s:g}s", "duration": "1m", "rps": 1}]},
            "input_tokens": {"kind": "fixed", "value": 100},
            "output_tokens": {"kind": "fixed", "value": 20}}


# the policies that may rest at zero from the start (the HPA and target tracking keep one
# replica; a new Knative revision starts at its initial scale, 1)
@pytest.mark.parametrize("policy", ["fireworks", "keda", "ray_serve", "predictive"])
def test_scale_to_zero_starts_nothing_before_the_first_request(policy):
    """min_replicas 0, first request at 3 h: no replica before it, no cost before it."""
    autoscaler: dict[str, Any] = {"policy": policy}
    if policy == "keda":
        autoscaler["triggers"] = [{"metric": "concurrent_requests", "threshold": 10}]
    start = 3 * 3600.0
    res = sim.run(scenario(deployment("", autoscaler=autoscaler, traffic=late_traffic(start)),
                           duration="200m"))
    tl = res.timeline
    before = tl[tl["t_end"] <= start]
    assert before["desired_replicas"].max() == 0
    assert before["gpus_allocated"].max() == 0
    total = res.summary["total"]
    assert total["requests"] > 0 and total["ok"] > 0  # the first ones meet the cold start
    assert res.requests["arrival_s"].min() >= start
    lines = res.billing[res.billing["kind"] == "on_demand"]
    assert len(lines) >= 1 and lines["start_s"].min() >= start + 60.0  # cold start of 60 s
    # pinned to one datacenter: the catalog price × the region premium
    price = (sim.catalog.get_accelerator("H100_80GB").usd_per_gpu_hour
             * res.summary["scenario"]["billing"]["region_premium"])
    seconds = float((lines["end_s"] - lines["start_s"]).sum())
    assert total["cost_usd"] == pytest.approx(seconds * price / 3600, abs=0.005)
    assert total["cost_usd"] <= 20 / 60 * price + 0.005  # at most the 20 minutes after it


def test_scale_to_zero_bills_zero_for_zero_requests():
    res = sim.run(scenario(deployment("", traffic=late_traffic(3 * 3600.0)), duration="2h"))
    total = res.summary["total"]
    assert total["requests"] == 0
    assert total["cold_starts"] == 0 and total["gpu_seconds"] == 0
    assert round(total["cost_usd"], 2) == 0.00
    assert res.timeline["gpus_allocated"].max() == 0


def test_allocation_reads_zero_while_scaled_to_zero():
    """Once a deployment has held GPUs, every interval has its row, 0 while at zero."""
    root = Path(__file__).resolve().parents[2]
    res = sim.run(str(root / "scenarios" / "scale_from_zero.yaml"), {"duration": "90m"},
                  keep_requests=False)
    alloc = res.allocation[res.allocation["holder"] == "code-8b"]
    tl = res.timeline
    first = alloc["t_end"].min()
    assert set(alloc["t_end"]) == set(tl.loc[tl["t_end"] >= first, "t_end"])
    by_t = alloc.groupby("t_end")["gpus"].sum()
    assert (by_t == 0).any() and (by_t > 0).any()  # it scaled to zero and back
    ready = tl.set_index("t_end")["gpus_allocated"].reindex(by_t.index)
    assert (by_t.to_numpy() == ready.to_numpy()).all()
