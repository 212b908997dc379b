"""Shared fixtures: small scenarios built as dicts, measured curves written to tmp files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def write_curve(path: Path, points: list[tuple[float, float]], prefill: float = 1e12) -> Path:
    """A measured-curve CSV: (concurrency, output tokens/s) points and a prefill rate."""
    lines = ["concurrency,output_tokens_per_s,prefill_tokens_per_s"]
    for i, (c, rate) in enumerate(points):
        lines.append(f"{c:g},{rate:g},{prefill:g}" if i == 0 else f"{c:g},{rate:g},")
    path.write_text("\n".join(lines) + "\n")
    return path


def queue_scenario(
    curve: Path,
    *,
    rps: float,
    replicas: int,
    max_concurrency: int,
    mean_tokens: float = 1001.0,
    duration: str = "6h",
    seed: int = 1,
    **deployment: Any,
) -> dict[str, Any]:
    """A deployment that is a textbook queue: Poisson arrivals, ~exponential service.

    With a curve of 1000 tokens/s per request, a request's service time is
    (output_tokens − 1) / 1000 s; geometric output lengths of mean 1001 make it
    a discretised exponential of mean 1 s.
    """
    dep: dict[str, Any] = {
        "name": "q",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "curve": str(curve)},
        "max_concurrency": max_concurrency,
        "autoscaler": {"policy": "static", "replicas": replicas},
        "traffic": {
            "arrivals": {"kind": "poisson", "rps": rps},
            "input_tokens": {"kind": "fixed", "value": 1},
            "output_tokens": {"kind": "exponential", "mean": mean_tokens},
        },
    }
    dep.update(deployment)
    return {
        "name": "queue",
        "seed": seed,
        "duration": duration,
        "timeline_interval": "10m",
        "clients": {"max_retries": 0},
        "deployments": [dep],
    }


@pytest.fixture
def flat_curve(tmp_path: Path) -> Path:
    """1000 output tokens/s per request whatever the batch: no interference (M/M/∞)."""
    return write_curve(tmp_path / "flat.csv", [(1, 1000.0), (100_000, 1e8)])


@pytest.fixture
def single_curve(tmp_path: Path) -> Path:
    """One request at a time at 1000 tokens/s (one server)."""
    return write_curve(tmp_path / "single.csv", [(1, 1000.0)])


@pytest.fixture
def shared_curve(tmp_path: Path) -> Path:
    """1000 tokens/s in total, shared equally: processor sharing."""
    return write_curve(tmp_path / "shared.csv", [(1, 1000.0), (100_000, 1000.0)])
