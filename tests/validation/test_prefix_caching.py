"""Prefix caching through the engine: exact counts, bounds, monotonicity, routers."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import simpy

import sim
from sim.engine.core import ClientPolicy, DeploymentPlan, Simulation
from sim.perf import build_shape
from sim.workload import TrafficSpec, generate, read_trace, reusable_tokens, write_trace

MODEL = "llama-v3p1-8b-instruct"


def session_traffic(rps: float = 0.05, **extra: Any) -> dict[str, Any]:
    return {
        "arrivals": {"kind": "poisson", "rps": rps},
        "input_tokens": {"kind": "lognormal", "median": 300, "p90": 900},
        "output_tokens": {"kind": "exponential", "mean": 120},
        "sessions": {"turns": {"kind": "exponential", "mean": 5}, "think_time": "30s"},
        "system_prompts": {"count": 3, "tokens": 1600, "zipf": 1.0},
        **extra,
    }


def spaced_trace(path: Path, seed: int, gap_ms: float = 3000.0, n: int = 150) -> Path:
    """A JSONL trace with hash_ids from the session model, one request every
    ``gap_ms`` (each prefilled before the next arrives)."""
    w = generate(TrafficSpec.model_validate(session_traffic(rps=0.3)), 3600.0,
                 np.random.SeedSequence(seed))
    w = w.slice(0, n)
    write_trace(w, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["timestamp"] = i * gap_ms
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def exact_cached_tokens(path: Path, block: int = 512) -> tuple[int, int]:
    """(cached, prompt) tokens with a cache that forgets nothing, from the file alone."""
    seen: set[int] = set()
    cached = prompt = 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        ids, n = row["hash_ids"], row["input_length"]
        k = 0
        while k < len(ids) and ids[k] in seen:
            k += 1
        cached += min(k * block, n - 1)
        prompt += n
        seen.update(ids)
    return cached, prompt


def one_replica(traffic: dict[str, Any], duration: str = "10m", **dep: Any) -> dict[str, Any]:
    return {
        "name": "px", "seed": 3, "duration": duration,
        "deployments": [{
            "name": "d", "model": MODEL, "min_replicas": 1, "max_replicas": 1,
            "autoscaler": {"policy": "static", "replicas": 1}, "traffic": traffic, **dep,
        }],
    }


@pytest.mark.parametrize(("seed", "engine"), [(1, "fast"), (2, "fast"), (3, "exact"),
                                              (4, "exact")])
def test_unbounded_cache_hits_the_exact_count(tmp_path, seed, engine):
    """One replica whose KV cache holds every block of the trace: the cached tokens
    are exactly the count from the hash ids, in both engines."""
    path = spaced_trace(tmp_path / "t.jsonl", seed)
    cached, prompt = exact_cached_tokens(path)
    assert cached > 0.3 * prompt  # the trace does reuse prefixes
    assert reusable_tokens(read_trace(path)) == cached
    res = sim.run({**one_replica({"arrivals": {"kind": "trace", "path": str(path)}}),
                   "engine": engine})
    req = res.requests
    assert (req["status"] == "ok").all()
    # every request was prefilled before the next one arrived
    assert (req["first_token_s"].to_numpy()[:-1] <= req["arrival_s"].to_numpy()[1:]).all()
    assert int(req["cached_tokens"].sum()) == cached
    d = res.summary["deployments"]["d"]
    assert d["prefix_cache_hit_rate"] == pytest.approx(cached / prompt, rel=1e-12)
    off = sim.run({**one_replica({"arrivals": {"kind": "trace", "path": str(path)}},
                                 prefix_caching=False), "engine": engine})
    assert off.summary["deployments"]["d"]["prefix_cache_hit_rate"] == 0.0
    assert int(off.requests["cached_tokens"].sum()) == 0
    # a hit skips the cached prefix's prefill: TTFT falls
    assert d["ttft_p50_s"] < off.summary["deployments"]["d"]["ttft_p50_s"]


class SmallKV:
    """A shape whose KV cache holds ``kv`` tokens (the rest as the real shape)."""

    def __init__(self, shape: Any, kv: int):
        self._shape = shape
        self.kv_capacity_tokens = kv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shape, name)


def run_engine(w: Any, kv: int, replicas: int = 1, router: str = "least_loaded",
               caching: bool = True) -> pd.DataFrame:
    shape = SmallKV(build_shape(MODEL, "throughput"), kv)
    plan = DeploymentPlan(
        name="d", shape=shape, arrival_s=w.arrival_s, input_tokens=w.input_tokens,
        output_tokens=w.output_tokens, replicas=replicas, datacenter="dc", source=_Fixed(w),
        router=router, prefix_caching=caching, block_tokens=w.block_tokens,
    )
    rows: list[Any] = []
    s = Simulation([plan], horizon_s=float(w.arrival_s[-1]) + 1.0, clients=ClientPolicy(),
                   jitter_rng=np.random.default_rng(0), on_finished=rows.append)
    s.run()
    from sim.metrics.stream import Finished
    f = Finished.concat(rows)
    ttft = f.latencies()["ttft"]
    return pd.DataFrame({"cached": f.cached, "inp": f.inp, "ttft": ttft, "replica": f.replica,
                         "status": f.status})


class _Fixed:
    """A workload source handing out one fixed workload, window by window."""

    def __init__(self, w: Any):
        self.w = w

    def take(self, t0: float, t1: float) -> Any:
        a, b = np.searchsorted(self.w.arrival_s, [t0, t1], side="left")
        return self.w.slice(int(a), int(b))


@pytest.mark.parametrize("seed", [5, 6])
def test_bounded_cache_never_beats_the_exact_count_and_grows_with_room(seed):
    """Smaller KV caches hit less, never more than the exact count; hit rate rises and
    TTFT falls as the cache grows (load light enough that admission never binds)."""
    w = generate(TrafficSpec.model_validate(session_traffic(rps=0.3)), 1800.0,
                 np.random.SeedSequence(seed))
    seen: set[int] = set()
    exact = 0
    off = w.block_offsets
    for i in range(len(w)):
        ids = w.block_ids[off[i] : off[i + 1]].tolist()
        k = 0
        while k < len(ids) and ids[k] in seen:
            k += 1
        exact += min(k * 512, int(w.input_tokens[i]) - 1)
        seen.update(ids)
    hits, ttfts = [], []
    for kv in (40_000, 80_000, 160_000, 400_000, 4_000_000):
        r = run_engine(w, kv)
        assert (r["status"] == 1).all()
        hits.append(int(r["cached"].sum()))
        ttfts.append(float(r["ttft"].mean()))
    assert all(h <= exact for h in hits)
    assert hits == sorted(hits) and hits[0] < hits[-1]
    assert hits[-1] >= 0.97 * exact  # concurrent prefills of one prefix may both miss
    assert ttfts[-1] < ttfts[0]
    assert all(b <= a * 1.02 for a, b in itertools.pairwise(ttfts))


def test_without_prefix_information_caching_changes_nothing():
    """No hash ids in the workload: identical results with caching on or off, under
    every router that does not draw."""
    traffic = {
        "arrivals": {"kind": "poisson", "rps": 20},
        "input_tokens": {"kind": "lognormal", "median": 1000, "p90": 3000},
        "output_tokens": {"kind": "exponential", "mean": 200},
    }
    runs = []
    for caching in (True, False):
        doc = one_replica(traffic, duration="3m", prefix_caching=caching)
        doc["deployments"][0].update(min_replicas=3, max_replicas=3,
                                     autoscaler={"policy": "static", "replicas": 3})
        runs.append(sim.run(doc))
    pd.testing.assert_frame_equal(runs[0].requests, runs[1].requests)
    assert runs[0].summary["deployments"]["d"]["prefix_cache_hit_rate"] == 0.0
    # prefix_aware without hits routes as least_loaded
    doc = one_replica(traffic, duration="3m", router="prefix_aware")
    doc["deployments"][0].update(min_replicas=3, max_replicas=3,
                                 autoscaler={"policy": "static", "replicas": 3})
    pd.testing.assert_frame_equal(sim.run(doc).requests, runs[0].requests)


def test_a_restarted_replica_starts_empty():
    """The same prompt twice: a hit on the same replica, a miss on a fresh one."""
    from sim.workload.base import Workload
    ids = np.array([11, 12, 13, 11, 12, 13], np.int64)
    w = Workload(np.array([0.0, 100.0]), np.array([1500, 1500]), np.array([4, 4]),
                 np.array([3, 3]), ids, None, 512)
    shape = build_shape(MODEL, "throughput")

    def run(restart: bool) -> list[int]:
        plan = DeploymentPlan(name="d", shape=shape, arrival_s=w.arrival_s,
                              input_tokens=w.input_tokens, output_tokens=w.output_tokens,
                              replicas=1, datacenter="dc", source=_Fixed(w), block_tokens=512)
        rows: list[Any] = []
        s = Simulation([plan], horizon_s=200.0, clients=ClientPolicy(),
                       jitter_rng=np.random.default_rng(0), on_finished=rows.append)
        if restart:
            def swap() -> simpy.events.ProcessGenerator:
                yield s.env.timeout(50.0)
                assert s.drain_replica(0)  # idle: stops at once, its cache lost
                s.ready_replica(0, "dc")
            s.env.process(swap())
        s.run()
        from sim.metrics.stream import Finished
        return Finished.concat(rows).cached.tolist()

    assert run(False) == [0, 1499]  # all but the last token cached
    assert run(True) == [0, 0]


def test_prefix_aware_and_session_routing_beat_least_loaded_on_sessions():
    """Four replicas, multi-turn sessions: following the cache raises the hit rate and
    cuts TTFT against least_loaded, which scatters a session's turns."""
    w = generate(TrafficSpec.model_validate(session_traffic(rps=1.0)), 900.0,
                 np.random.SeedSequence(8))
    out = {}
    for router in ("least_loaded", "round_robin", "prefix_aware", "session", "random"):
        r = run_engine(w, 4_000_000, replicas=4, router=router)
        out[router] = (r["cached"].sum() / r["inp"].sum(), r["ttft"].mean())
    for smart in ("prefix_aware", "session"):
        assert out[smart][0] > out["least_loaded"][0] + 0.03
        assert out[smart][1] < out["least_loaded"][1]
    assert out["round_robin"][0] < out["prefix_aware"][0]
    assert out["random"][0] < out["prefix_aware"][0]


def test_random_router_is_deterministic():
    traffic = session_traffic(rps=0.5)
    doc = one_replica(traffic, duration="5m", router="random")
    doc["deployments"][0].update(min_replicas=3, max_replicas=3,
                                 autoscaler={"policy": "static", "replicas": 3})
    a, b = sim.run(doc), sim.run(doc)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    assert a.requests["replica"].nunique() == 3


@pytest.mark.parametrize("router", ["least_loaded", "prefix_aware"])
def test_fast_and_exact_engines_agree_on_a_trace_with_prefix_reuse(tmp_path, router):
    """Multi-turn chat replayed from a JSONL trace with hash_ids on two 70B replicas:
    the fast engine's hit rate and latencies against the exact engine's."""
    traffic = {
        "arrivals": {"kind": "poisson", "rps": 0.25},
        "input_tokens": {"kind": "lognormal", "median": 150, "p90": 600},
        "output_tokens": {"kind": "exponential", "mean": 300},
        "sessions": {"turns": {"kind": "exponential", "mean": 8}, "think_time": "45s"},
        "system_prompts": {"count": 8, "tokens": 2000, "zipf": 1.1},
    }
    w = generate(TrafficSpec.model_validate(traffic), 900.0, np.random.SeedSequence(12))
    path = tmp_path / "chat.jsonl"
    write_trace(w, path)
    doc = {
        "name": "agree", "seed": 1, "duration": "15m", "warmup": "3m",
        "deployments": [{
            "name": "d", "model": "llama-v3p1-70b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 4, "precision": "FP8"},
            "min_replicas": 2, "max_replicas": 2,
            "autoscaler": {"policy": "static", "replicas": 2}, "router": router,
            "traffic": {"arrivals": {"kind": "trace", "path": str(path)}},
        }],
    }
    fast = sim.run({**doc, "engine": "fast"}).summary["deployments"]["d"]
    exact = sim.run({**doc, "engine": "exact"}).summary["deployments"]["d"]
    assert exact["prefix_cache_hit_rate"] > 0.5
    assert fast["prefix_cache_hit_rate"] == pytest.approx(exact["prefix_cache_hit_rate"],
                                                          abs=0.02)
    for key in ("ttft_p50_s", "tpot_p50_s", "e2e_p50_s"):
        assert fast[key] == pytest.approx(exact[key], rel=0.10), key
    for key in ("ttft_p99_s", "e2e_p99_s"):
        assert fast[key] == pytest.approx(exact[key], rel=0.15), key


_BOTH_MODES = """
import hashlib, sys, sim
traffic = {
    "arrivals": {"kind": "poisson", "rps": 0.3},
    "input_tokens": {"kind": "lognormal", "median": 300, "p90": 900},
    "output_tokens": {"kind": "exponential", "mean": 60},
    "sessions": {"turns": {"kind": "exponential", "mean": 4}, "think_time": "10s"},
    "system_prompts": {"count": 3, "tokens": 1600, "zipf": 1.0},
}
h = hashlib.sha256()
for engine, router in (("fast", "prefix_aware"), ("exact", "session"), ("fast", "random")):
    doc = {"name": "modes", "seed": 2, "duration": "2m", "engine": engine,
           "deployments": [{"name": "d", "model": "llama-v3p1-8b-instruct",
                            "min_replicas": 3, "max_replicas": 3,
                            "autoscaler": {"policy": "static", "replicas": 3},
                            "router": router, "traffic": traffic}]}
    r = sim.run(doc, chunk_s=float(sys.argv[1]) if sys.argv[1] != "all" else None)
    h.update(r.requests.to_csv().encode())
    h.update(r.timeline.to_csv().encode())
print(h.hexdigest(), sim.engine.kernel.JIT)
"""


@pytest.mark.slow
def test_compiled_and_pure_python_agree_with_prefix_caching():
    """Caching, routers and sessions give identical tables compiled or as plain Python,
    with all arrivals at once or in windows of 30 s."""
    root = Path(__file__).resolve().parents[2]
    outs = []
    for flag, chunk in (("", "all"), ("1", "30")):
        env = {**os.environ, "CAPSIM_NO_JIT": flag, "PYTHONPATH": str(root)}
        proc = subprocess.run([sys.executable, "-c", _BOTH_MODES, chunk], env=env, cwd=root,
                              capture_output=True, text=True, check=True)
        outs.append(proc.stdout.split())
    assert outs[1][1] == "False"
    assert outs[0][0] == outs[1][0]
