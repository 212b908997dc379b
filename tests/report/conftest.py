"""Results built by hand (with and without the columns later issues add) and one real run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import sim
from sim.metrics.kpis import KPI_KEYS
from sim.results import Result

ROOT = Path(__file__).resolve().parents[2]
TRACE = ROOT / "scenarios" / "traces" / "AzureLLMInferenceTrace_conv.csv"

STAGE_COLUMNS = ("pending_replicas", "scheduling_replicas", "downloading_replicas",
                 "initializing_replicas", "draining_replicas")


def _timeline(deployments: list[str], n: int, stages: bool) -> pd.DataFrame:
    rows = []
    for d, name in enumerate(deployments):
        for i in range(n):
            ready = min(i // 2, 3) + d
            row: dict[str, Any] = {
                "t_start": 60.0 * i, "t_end": 60.0 * (i + 1), "interval_s": 60.0,
                "deployment": name, "arrivals": 60 * (i + 1), "completions": 50 * i,
                "ready_replicas": ready, "desired_replicas": 4 + d,
                "gpus_allocated": 4 * (ready + 1), "queue_depth": float(n - i),
                "utilization": 0.5, "http_503": 30 if i < 2 else 0,
                "http_429": 6 if i == n - 1 else 0,
            }
            if stages:
                row |= {"pending_replicas": 1 if i < 3 else 0, "scheduling_replicas": i % 2,
                        "downloading_replicas": 1 if 2 <= i < 5 else 0,
                        "initializing_replicas": 1 if i == 5 else 0,
                        "draining_replicas": 1 if i == n - 2 else 0}
            rows.append(row)
    df = pd.DataFrame(rows)
    df["deployment"] = pd.Categorical(df["deployment"], categories=deployments)
    df["arrival_rps"] = df["arrivals"] / df["interval_s"]
    return df


def _requests(deployments: list[str], per: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = per * len(deployments)
    arrival = np.sort(rng.uniform(0, 600, n))
    ttft = rng.lognormal(-2.0, 0.8, n)
    out = rng.integers(2, 300, n)
    tpot = rng.uniform(0.01, 0.05, n)
    status = np.where(rng.uniform(size=n) < 0.95, "ok", "failed_503")
    df = pd.DataFrame({
        "deployment": pd.Categorical(np.repeat(deployments, per), categories=deployments),
        "arrival_s": arrival, "attempt_s": arrival, "start_s": arrival + ttft / 2,
        "first_token_s": arrival + ttft, "status": pd.Categorical(status),
        "attempts": np.where(status == "ok", 1, 6), "input_tokens": rng.integers(10, 2000, n),
        "output_tokens": out,
    })
    df["finish_s"] = df["first_token_s"] + tpot * (out - 1)
    df["ttft_s"], df["tpot_s"] = ttft, tpot
    df["e2e_s"] = df["finish_s"] - df["arrival_s"]
    return df


def _billing(deployments: list[str], pricing: bool) -> pd.DataFrame:
    """Replica lines (and, with ``pricing``, their kind and one reservation line)."""
    rows = []
    for d, name in enumerate(deployments):
        for r in range(2 + d):
            dc = "US_IOWA_1" if r % 2 == 0 else "EU_FRANKFURT_1"
            acc = "H100_80GB" if d == 0 else "H200_141GB"
            seconds = 600.0 - 60 * r
            rate = 8.0 if acc == "H100_80GB" else 10.0
            row = {"deployment": name, "datacenter": dc, "accelerator": acc, "gpus": 4,
                   "start_s": 60.0 * r, "end_s": 60.0 * r + seconds, "seconds": seconds,
                   "usd_per_gpu_hour": rate, "cost_usd": seconds * 4 * rate / 3600}
            if pricing:
                row["kind"] = "on_demand"
            rows.append(row)
    if pricing:  # a reservation of 8 H100s for the 10 minutes, as sim.billing bills it
        rows.append({"kind": "reserved", "deployment": "(reservation)", "datacenter": "",
                     "accelerator": "H100_80GB", "gpus": 8, "start_s": 0.0, "end_s": 600.0,
                     "seconds": 600.0, "usd_per_gpu_hour": 5.0, "cost_usd": 600 * 8 * 5 / 3600})
    return pd.DataFrame(rows)


def _allocation(deployments: list[str], n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        t = 60.0 * (i + 1)
        for d, name in enumerate(deployments):
            rows.append({"t_end": t, "datacenter": "US_IOWA_1", "accelerator": "H100_80GB",
                         "holder": name, "gpus": 4 * min(i, 3) + 4 * d})
            rows.append({"t_end": t, "datacenter": "EU_FRANKFURT_1",
                         "accelerator": "H100_80GB", "holder": name, "gpus": 4 * (i % 2)})
        rows.append({"t_end": t, "datacenter": "US_IOWA_1", "accelerator": "H100_80GB",
                     "holder": "background", "gpus": 8 + i})
    return pd.DataFrame(rows)


def handmade(*, deployments: tuple[str, ...] = ("chat", "code"), later_columns: bool = True,
             n: int = 10, seed: int = 1, name: str = "handmade") -> Result:
    """A result with every table filled by hand.

    ``later_columns`` adds replica stages, the allocation table (with other
    tenants) and billing lines of two kinds (on-demand, and a reservation); without
    it the tables have only the columns every run has.
    """
    deps = list(deployments)
    requests = _requests(deps, 200, seed)
    billing = _billing(deps, pricing=later_columns)
    per: dict[str, dict[str, Any]] = {}
    for d, dep in enumerate(deps):
        kpis: dict[str, Any] = dict.fromkeys(KPI_KEYS, 0)
        kpis |= {"requests": 200, "ok": 190, "failed": 10, "ttft_p99_s": 0.5 + d,
                 "slo_attainment": 0.97, "cost_usd": float(billing.loc[billing["deployment"] == dep,
                                                                       "cost_usd"].sum()),
                 "serverless_cost_usd": 3.0 + d, "cost_per_million_tokens_usd": 2.5 + d,
                 "ttft_p50_s": 0.1, "tpot_p99_s": 0.04, "utilization": 0.6}
        per[dep] = kpis
    total = dict(per[deps[0]]) | {"requests": 200 * len(deps),
                                  "cost_usd": float(billing["cost_usd"].sum()),
                                  "serverless_cost_usd": sum(p["serverless_cost_usd"]
                                                             for p in per.values())}
    scenario = {"name": name, "seed": seed, "duration": "10m", "warmup": "1m",
                "slo": {"ttft_p99": "2s", "tpot_p99": None, "e2e_p99": None},
                "regions": {"US_IOWA_1": {"H100_80GB": 48, "H200_141GB": 16},
                            "EU_FRANKFURT_1": {"H100_80GB": 16}},
                "deployments": [{"name": d, "shape": {"accelerator": "H100_80GB", "count": 4,
                                                       "precision": "FP8"}} for d in deps]}
    summary = {"name": name, "seed": seed, "simulated_s": 600.0, "wall_s": 0.5,
               "capsim_version": "test", "total": total, "deployments": per,
               "scenario": scenario}
    allocation = _allocation(deps, n) if later_columns else pd.DataFrame()
    return Result(summary, requests, _timeline(deps, n, later_columns), billing, scenario,
                  allocation)


@pytest.fixture(scope="session")
def real_result() -> Result:
    """Ten minutes of the Azure conversation trace on one 8B replica: a real run."""
    return sim.run({
        "name": "real-small", "seed": 3, "duration": "10m", "warmup": "1m",
        "slo": {"ttft_p99": "1s"},
        "deployments": [{
            "name": "chat", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1}, "max_queue": 64,
            "traffic": {"arrivals": {"kind": "trace", "path": str(TRACE)}},
        }],
    })


@pytest.fixture(scope="session")
def control_result() -> Result:
    """A real run through the control plane: scale from zero twice, cold starts, 503s."""
    return sim.run({
        "name": "bursts", "seed": 2, "duration": "30m", "timeline_interval": "30s",
        "slo": {"ttft_p99": "2s"},
        "deployments": [{
            "name": "bursty", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "region": "US", "min_replicas": 0, "max_replicas": 3,
            "autoscaler": {"policy": "fireworks", "scale_to_zero_window": "5m"},
            "traffic": {
                "arrivals": {"kind": "spikes", "base_rps": 0, "spikes": [
                    {"at": "2m", "duration": "3m", "rps": 3},
                    {"at": "16m", "duration": "4m", "rps": 6}]},
                "input_tokens": {"kind": "lognormal", "median": 800, "p90": 2500},
                "output_tokens": {"kind": "lognormal", "median": 150, "p90": 400},
            },
        }],
    })


@pytest.fixture(scope="session")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A real sweep through sim.sweep: 1 and 2 replicas × 2 seeds, run in this process."""
    import yaml

    from sim.sweep import SerialExecutor, load_sweep, read_summary, run_sweep

    folder = tmp_path_factory.mktemp("sweep")
    doc = {
        "name": "replicas", "seed": 1, "duration": "5m", "slo": {"ttft_p99": "2s"},
        "deployments": [{
            "name": "chat", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "poisson", "rps": 2},
                        "input_tokens": {"kind": "fixed", "value": 500},
                        "output_tokens": {"kind": "fixed", "value": 100}},
        }],
        "sweep": {"deployments[0].autoscaler.replicas": [1, 2]},
        "seeds": 2,
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = folder / "out"
    report = run_sweep(load_sweep(path), out, executor=SerialExecutor(), tables=False)
    assert not report.failed
    return out, read_summary(out)
