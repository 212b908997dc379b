"""On-demand GPU-seconds and reserved capacity, line by line.

A replica is billed per GPU-second from the moment it is ready (it accepts
requests) until it stops, × GPUs × USD per GPU-hour / 3600 (provider rule:
"Charges start when the server begins accepting requests"); with
``bill_from: allocated``, from when its GPUs were allocated.

A reservation of R GPUs of a type is paid for the whole run, used or not.
At every instant the GPUs of that type in billed use are covered by the
reservation up to R — replicas that started first are covered first — and
the rest is billed on demand.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

LINE_COLUMNS = [
    "kind", "deployment", "replica", "datacenter", "accelerator", "gpus", "start_s", "end_s",
    "seconds", "gpu_seconds", "reserved_gpu_seconds", "on_demand_gpu_seconds",
    "usd_per_gpu_hour", "cost_usd",
]

USAGE_COLUMNS = ["deployment", "replica", "datacenter", "accelerator", "gpus", "start_s",
                 "end_s", "usd_per_gpu_hour"]


def bill(
    usage: pd.DataFrame,
    *,
    reserved: dict[str, int],
    reserved_usd_per_gpu_hour: dict[str, float],
    end_s: float,
) -> pd.DataFrame:
    """Billing lines for replica ``usage`` (one row per replica, ``USAGE_COLUMNS``).

    Returns one ``on_demand`` line per replica (its reserved-covered GPU-seconds
    cost nothing there) and one ``reserved`` line per reservation, whose cost
    is R × ``end_s`` × its price.
    """
    lines = usage.copy()
    lines["seconds"] = (lines["end_s"] - lines["start_s"]).clip(lower=0.0)
    lines["gpu_seconds"] = lines["seconds"] * lines["gpus"]
    lines["reserved_gpu_seconds"] = 0.0
    for acc, gpus in reserved.items():
        if gpus > 0:
            _cover(lines, acc, gpus)
    lines["on_demand_gpu_seconds"] = lines["gpu_seconds"] - lines["reserved_gpu_seconds"]
    lines["cost_usd"] = lines["on_demand_gpu_seconds"] * lines["usd_per_gpu_hour"] / 3600.0
    lines["kind"] = "on_demand"
    rows = []
    for acc, gpus in sorted(reserved.items()):
        if gpus <= 0:
            continue
        rate = reserved_usd_per_gpu_hour[acc]
        rows.append({
            "kind": "reserved", "deployment": "(reservation)", "replica": -1, "datacenter": "",
            "accelerator": acc, "gpus": gpus, "start_s": 0.0, "end_s": end_s,
            "seconds": end_s, "gpu_seconds": gpus * end_s,
            "reserved_gpu_seconds": gpus * end_s, "on_demand_gpu_seconds": 0.0,
            "usd_per_gpu_hour": rate, "cost_usd": gpus * end_s * rate / 3600.0,
        })
    out = pd.concat([lines, pd.DataFrame(rows, columns=LINE_COLUMNS)], ignore_index=True)
    return out[LINE_COLUMNS] if len(out) else pd.DataFrame(columns=LINE_COLUMNS)


def _cover(lines: pd.DataFrame, acc: str, capacity: int) -> None:
    """Add to ``reserved_gpu_seconds`` the GPU-seconds a reservation of ``capacity`` covers."""
    mine = lines.index[(lines["accelerator"] == acc) & (lines["seconds"] > 0)]
    if len(mine) == 0:
        return
    sub = lines.loc[mine].sort_values(["start_s", "replica"], kind="stable")
    starts = sub["start_s"].to_numpy()
    ends = sub["end_s"].to_numpy()
    gpus = sub["gpus"].to_numpy()
    covered = np.zeros(len(sub))
    edges = np.unique(np.concatenate([starts, ends]))
    for a, b in itertools.pairwise(edges):
        left = capacity
        for i in np.flatnonzero((starts <= a) & (ends >= b)):  # in start order
            take = min(int(gpus[i]), left)
            covered[i] += take * (b - a)
            left -= take
            if left == 0:
                break
    lines.loc[sub.index, "reserved_gpu_seconds"] = covered
