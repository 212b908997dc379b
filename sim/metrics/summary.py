"""The summary: per-deployment and total KPIs from the run's tables.

Every metric is a formula over named timestamps of the request table (see
``docs/metrics.md``): ``arrival_s`` (first attempt), ``attempt_s`` (the attempt
that was served), ``first_token_s``, ``finish_s``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sim.metrics.stream import OK, PERCENTILES, Finished

# Summary keys in the order ``summary.json`` lists them (docs/metrics.md).
KPI_KEYS = (
    "requests",
    "ok",
    "failed",
    "http_503",
    "http_429",
    "retries",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "e2e_p50_s",
    "e2e_p99_s",
    "slo_attainment",
    "gpu_seconds",
    "cost_usd",
    "serverless_cost_usd",
    "cost_per_million_tokens_usd",
    "cold_starts",
    "mean_ready_replicas",
    "max_ready_replicas",
    "pending_replica_seconds",
    "utilization",
)


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def latency_kpis(
    requests: pd.DataFrame, warmup_s: float, slo: dict[str, float | None]
) -> dict[str, Any]:
    """Counts and latency percentiles of one group of requests.

    Latency statistics use requests that arrived at or after ``warmup_s`` and
    finished ``ok``; ``slo_attainment`` is the fraction of post-warm-up
    requests that finished ok within every configured objective.
    """
    status = requests["status"].to_numpy()
    ok = status == "ok"
    measured = requests["arrival_s"].to_numpy() >= warmup_s
    sel = requests[ok & measured]
    ttft = sel["ttft_s"].to_numpy()
    tpot = sel["tpot_s"].to_numpy()
    tpot = tpot[~np.isnan(tpot)]
    e2e = sel["e2e_s"].to_numpy()
    n_measured = int(measured.sum())
    good = np.ones(len(sel), dtype=bool)
    for key, column in (("ttft_p99", "ttft_s"), ("tpot_p99", "tpot_s"), ("e2e_p99", "e2e_s")):
        limit = slo.get(key)
        if limit is not None:
            values = sel[column].to_numpy()
            good &= np.isnan(values) | (values <= limit)
    return {
        "requests": len(requests),
        "ok": int(ok.sum()),
        "failed": int((~ok).sum()),
        "retries": int((requests["attempts"] - 1).clip(lower=0).sum()),
        "ttft_p50_s": _pct(ttft, 50),
        "ttft_p90_s": _pct(ttft, 90),
        "ttft_p99_s": _pct(ttft, 99),
        "tpot_p50_s": _pct(tpot, 50),
        "tpot_p99_s": _pct(tpot, 99),
        "e2e_p50_s": _pct(e2e, 50),
        "e2e_p99_s": _pct(e2e, 99),
        "slo_attainment": float(good.sum() / n_measured) if n_measured else None,
    }


def exact_percentiles(finished: Finished, warmup_s: float) -> dict[str, float | None]:
    """The summary's latency percentiles, exact: numpy's linear interpolation
    between order statistics of ok requests that arrived at or after ``warmup_s``."""
    sel = (finished.status == OK) & (finished.arrival >= warmup_s)
    ttft, tpot, e2e = (x[sel] for x in finished.latencies())
    values = {"ttft": ttft, "tpot": tpot[~np.isnan(tpot)], "e2e": e2e}
    return {key: _pct(values[metric], p) for key, metric, p in PERCENTILES}


def max_overlap(starts: np.ndarray, ends: np.ndarray) -> int:
    """Most intervals ``[start, end)`` open at once."""
    if len(starts) == 0:
        return 0
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((steps, times))  # at equal times, close before open
    return int(np.cumsum(steps[order]).max())
