"""A deployment that sees a quiet spell, a 20-minute spike, then quiet again."""

from __future__ import annotations

from typing import Any


def spike_scenario(autoscaler: dict[str, Any], *, duration: str = "75m",
                   **deployment: Any) -> dict[str, Any]:
    dep: dict[str, Any] = {
        "name": "d",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "region": "US_IOWA_1",
        "min_replicas": 1,
        "max_replicas": 8,
        "max_concurrency": 16,
        "autoscaler": autoscaler,
        "cold_start": {"scheduling": "20s", "weight_download_rate": "2GB/s",
                       "initialization": "20s"},
        "traffic": {
            "arrivals": {"kind": "spikes", "base_rps": 0.5,
                         "spikes": [{"at": "10m", "duration": "20m", "rps": 30}]},
            "input_tokens": {"kind": "fixed", "value": 500},
            "output_tokens": {"kind": "fixed", "value": 100},
        },
    }
    dep.update(deployment)
    return {"name": "spike", "seed": 2, "duration": duration, "timeline_interval": "1m",
            "deployments": [dep]}
