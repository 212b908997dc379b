"""Latency and load over time: per-interval columns of the timeline, from finished requests.

The engine's sampler records replicas, arrivals and queues at each interval's
end.  What users experienced in each interval comes from the finished requests
instead, as the engine hands them over (window by window, in bounded memory):

* ``user_ttft_p50_s``, ``user_ttft_p99_s``, ``tpot_p50_s``, ``tpot_p99_s``:
  percentiles of the ``ok`` requests that *arrived* in the interval (quantile
  sketches, within 0.5 % relative, whether or not the request table is kept);
* ``in_service_s``: ∫ requests in service dt over the interval (from each ok
  request's admission to its finish);
* ``output_tokens``: output tokens of ok requests that finished in the interval.

:func:`interval_integral` turns replica lives into replica-seconds per interval,
so ``mean_batch`` (requests in service per serving replica) and
``utilization`` (capacity used, as in the summary) follow.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from sim.metrics.stream import OK, Finished, Sketch

_NS = 1e9  # in-service time is tallied in integer nanoseconds

#: per-interval latency columns: (column, latency, percentile)
LATENCY_COLUMNS = (("user_ttft_p50_s", "user_ttft", 50), ("user_ttft_p99_s", "user_ttft", 99),
                   ("tpot_p50_s", "tpot", 50), ("tpot_p99_s", "tpot", 99))


def interval_integral(starts: NDArray[np.float64], ends: NDArray[np.float64],
                      bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    """∫ (number of intervals ``[start, end)`` open) dt over each ``[bounds[i], bounds[i+1])``.

    ``F(t) = Σ max(0, min(t, end) − start)`` is computed at every bound from sorted
    starts and ends with prefix sums, so the cost is O((n + m) log n).
    """
    s, e = np.sort(starts), np.sort(ends)
    cs, ce = np.concatenate([[0.0], np.cumsum(s)]), np.concatenate([[0.0], np.cumsum(e)])
    ns, ne = np.searchsorted(s, bounds, side="right"), np.searchsorted(e, bounds, side="right")
    area = (ns * bounds - cs[ns]) - (ne * bounds - ce[ne])
    return np.diff(area)


def _groups(keys: NDArray[np.int64]) -> list[tuple[int, NDArray[np.intp]]]:
    """(key, positions holding it) for each distinct key, ascending (keys: nearby ints)."""
    base = int(keys.min())
    rel = keys - base
    order = np.argsort(rel, kind="stable")
    counts = np.bincount(rel)
    ends = np.cumsum(counts)
    return [(base + j, order[ends[j] - counts[j] : ends[j]])
            for j in np.flatnonzero(counts).tolist()]


class TimelineTally:
    """Per-deployment, per-interval latency sketches, in-service time and output tokens."""

    def __init__(self, n_deployments: int, interval_s: float):
        self.interval = interval_s
        self.sketches: list[dict[int, dict[str, Sketch]]] = [{} for _ in range(n_deployments)]
        self.in_service: list[defaultdict[int, int]] = [  # nanoseconds
            defaultdict(int) for _ in range(n_deployments)]
        self.tokens: list[defaultdict[int, int]] = [defaultdict(int) for _ in range(n_deployments)]

    def add(self, batch: Finished) -> None:
        ok = (batch.status == OK) & ~np.isnan(batch.start_t) & ~np.isnan(batch.finish_t)
        latency = batch.latencies()
        step = self.interval
        names = {m for _, m, _ in LATENCY_COLUMNS}
        for d in np.flatnonzero(np.bincount(batch.dep[ok])).tolist():
            mine = np.flatnonzero(ok & (batch.dep == d))
            values = {name: latency[name][mine] for name in names}
            arrived = np.floor(batch.arrival[mine] / step).astype(np.int64)
            for k, here in _groups(arrived):
                cell = self.sketches[d].setdefault(k, {name: Sketch() for name in names})
                for name, sketch in cell.items():
                    sketch.add(values[name][here])
            finished = np.floor(batch.finish_t[mine] / step).astype(np.int64)
            base = int(finished.min())
            counts = np.bincount(finished - base)
            sums = np.bincount(finished - base, weights=batch.out[mine].astype(np.float64))
            for j in np.flatnonzero(counts).tolist():
                self.tokens[d][base + j] += round(float(sums[j]))
            self._add_in_service(d, batch.start_t[mine], batch.finish_t[mine])

    def _add_in_service(self, d: int, start: NDArray[np.float64],
                        finish: NDArray[np.float64]) -> None:
        """Each request's time in service, split over the intervals it overlaps.

        Summed as integer nanoseconds, so the totals do not depend on how the
        engine batches finished requests (any window length gives the same).
        """
        step = self.interval
        k0 = np.floor(start / step).astype(np.int64)
        k1 = np.floor(finish / step).astype(np.int64)
        base = int(k0.min())
        n = int(k1.max()) - base + 1
        acc = np.zeros(n, np.int64)
        same = k0 == k1
        np.add.at(acc, k0[same] - base, np.round((finish[same] - start[same]) * _NS)
                  .astype(np.int64))
        split = ~same
        a, b = k0[split], k1[split]
        np.add.at(acc, a - base, np.round(((a + 1) * step - start[split]) * _NS).astype(np.int64))
        np.add.at(acc, b - base, np.round((finish[split] - b * step) * _NS).astype(np.int64))
        full = np.zeros(n + 1, np.int64)  # intervals covered whole: a difference array
        np.add.at(full, a + 1 - base, 1)
        np.add.at(full, b - base, -1)
        acc += np.cumsum(full)[:n] * round(step * _NS)
        for i in np.flatnonzero(acc).tolist():
            self.in_service[d][base + i] += int(acc[i])

    def column(self, d: int, ks: NDArray[np.int64], name: str) -> NDArray[np.float64]:
        """One per-interval column of deployment ``d`` for intervals ``ks``."""
        if name == "in_service_s":
            return np.array([self.in_service[d].get(k, 0) / _NS for k in ks.tolist()])
        if name == "output_tokens":
            return np.array([float(self.tokens[d].get(k, 0)) for k in ks.tolist()])
        metric, q = next((m, p) for c, m, p in LATENCY_COLUMNS if c == name)
        out = np.full(len(ks), np.nan)
        for i, k in enumerate(ks.tolist()):
            cell = self.sketches[d].get(k)
            if cell is not None:
                value = cell[metric].quantile(q / 100.0)
                out[i] = np.nan if value is None else value
        return out


def add_columns(df: pd.DataFrame, tally: TimelineTally, serving: list[tuple[NDArray[np.float64],
                NDArray[np.float64]]], saturation: list[float]) -> pd.DataFrame:
    """The timeline ``df`` with the per-interval latency and load columns added.

    ``serving[d]`` holds the (ready, stop) times of deployment ``d``'s replicas and
    ``saturation[d]`` one replica's saturation throughput (output tokens/s) at the
    run's mean request sizes (0: unknown).
    """
    if df.empty:
        return df
    out = df.copy()
    new: dict[str, NDArray[np.float64]] = {
        name: np.full(len(df), np.nan) for name, _, _ in LATENCY_COLUMNS}
    new |= {"serving_replica_s": np.zeros(len(df)), "mean_batch": np.zeros(len(df)),
            "utilization": np.zeros(len(df))}
    codes = out["deployment"].cat.codes.to_numpy()
    for d in range(len(serving)):
        rows = np.flatnonzero(codes == d)
        if not len(rows):
            continue
        t0, t1 = out["t_start"].to_numpy()[rows], out["t_end"].to_numpy()[rows]
        ks = np.round(t0 / tally.interval).astype(np.int64)
        for name, _, _ in LATENCY_COLUMNS:
            new[name][rows] = tally.column(d, ks, name)
        starts, ends = serving[d]
        replica_s = np.array([interval_integral(starts, ends, np.array([a, b]))[0]
                              for a, b in zip(t0, t1, strict=True)]) if len(starts) else (
            np.zeros(len(rows)))
        in_service = tally.column(d, ks, "in_service_s")
        tokens = tally.column(d, ks, "output_tokens")
        with np.errstate(divide="ignore", invalid="ignore"):
            new["mean_batch"][rows] = np.where(replica_s > 0, in_service / replica_s, 0.0)
            capacity = replica_s * saturation[d]
            new["utilization"][rows] = np.where(capacity > 0,
                                                np.minimum(1.0, tokens / capacity), 0.0)
        new["serving_replica_s"][rows] = replica_s
    for name, values in new.items():
        out[name] = values
    return out
