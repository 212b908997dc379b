"""The request table streamed to Parquet as the run goes: it costs disk, not memory.

:class:`RequestsFile` is a sink for :func:`sim.run` (``requests_sink=``): the
engine hands it each window's finished requests as a table, which becomes one
row group of ``requests.parquet`` (rows in the order requests finished, window
by window, each window in arrival order; sort by ``arrival_s`` for arrival
order).  It keeps two small things in memory:

* a uniform sample of at most ``sample_size`` rows (the requests whose hashed
  arrival index is smallest — the same rows whatever the windows), for plots;
* nothing else: after the run, :meth:`exact_percentiles` reads the latency
  columns back, one deployment and one metric at a time, so the summary's
  percentiles stay exact (the same numbers as an in-memory run).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.metrics.stream import PERCENTILES

SAMPLE_SIZE = 200_000
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing of the arrival index


def _sample_key(index: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (index.astype(np.uint64) * _GOLDEN) ^ (index.astype(np.uint64) >> np.uint64(29))


class RequestsFile:
    """Append request tables to a Parquet file, one row group per call."""

    def __init__(self, path: str | Path, *, sample_size: int = SAMPLE_SIZE):
        self.path = Path(path)
        self.sample_size = sample_size
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._sample: pd.DataFrame | None = None
        self._sample_keys = np.empty(0, np.uint64)
        self._empty: pd.DataFrame | None = None

    def _schema_of(self, table: pa.Table) -> pa.Schema:
        fields = []
        for f in table.schema:
            if pa.types.is_dictionary(f.type):
                f = f.with_type(pa.dictionary(pa.int32(), pa.string()))
            fields.append(f)
        return pa.schema(fields, metadata=table.schema.metadata)

    def write(self, table: pd.DataFrame, index: np.ndarray) -> None:
        """Append ``table`` (one window's finished requests; ``index``: their arrival
        order in the run) and update the sample."""
        if self._empty is None:
            self._empty = table.iloc[:0].copy()
        if len(table) == 0:
            return
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self._writer is None:
            self._schema = self._schema_of(arrow)
            self._writer = pq.ParquetWriter(self.path, self._schema)
        assert self._schema is not None
        self._writer.write_table(arrow.cast(self._schema))
        self.rows += len(table)
        self._update_sample(table, index)

    def _update_sample(self, table: pd.DataFrame, index: np.ndarray) -> None:
        keys = _sample_key(index)
        rows = table.reset_index(drop=True)
        if self._sample is not None:
            keys = np.concatenate([self._sample_keys, keys])
            rows = pd.concat([self._sample, rows], ignore_index=True)
        if len(keys) > self.sample_size:
            keep = np.sort(np.argpartition(keys, self.sample_size - 1)[: self.sample_size])
            keys, rows = keys[keep], rows.iloc[keep].reset_index(drop=True)
        self._sample, self._sample_keys = rows, keys

    def close(self) -> None:
        """Finish the file (an empty table if nothing was written)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        elif not self.path.exists() and self._empty is not None:
            self._empty.to_parquet(self.path, index=False)

    def sample(self) -> pd.DataFrame:
        """The sampled rows, in arrival order (all rows when the run had few)."""
        if self._sample is None:
            return self._empty if self._empty is not None else pd.DataFrame()
        return self._sample.sort_values("arrival_s", kind="stable").reset_index(drop=True)

    def exact_percentiles(self, deployments: Sequence[str],
                          warmup_s: float) -> dict[str | None, dict[str, Any]]:
        """The summary's latency percentiles, exact, per deployment and for all (key
        None): from every ok request that arrived at or after ``warmup_s``, read back
        from the file a row group at a time.

        Memory: one byte per row (which deployment's selection it is in, if any),
        then one float64 per selected request of one metric at a time (the values
        of all deployments side by side in one array, partitioned in place).
        Row groups are read one by one, not with ``iter_batches``, whose read-ahead
        buffers stay allocated (≈ 0.5 GB over a week's file).
        """
        out: dict[str | None, dict[str, Any]] = {d: {} for d in [*deployments, None]}
        source = pq.ParquetFile(self.path) if self.rows else None
        groups = source.num_row_groups if source is not None else 0
        # which deployment's selection each row is in (-1: none), per row group
        code: list[np.ndarray] = []
        small = np.int8 if len(deployments) < 127 else np.int32
        for g in range(groups):
            assert source is not None
            t = source.read_row_group(g, columns=["status", "arrival_s", "deployment"])
            status, arrival, dep = (t.column(k).combine_chunks() for k in range(3))
            keep = _is(status, "ok") & (arrival.to_numpy(zero_copy_only=False) >= warmup_s)
            c = np.full(t.num_rows, -1, dtype=small)
            for i, d in enumerate(deployments):
                c[keep & _is(dep, d)] = i
            code.append(c)
        counts = np.zeros(len(deployments), dtype=np.int64)
        for c in code:
            counts += np.bincount(c[c >= 0], minlength=len(deployments))
        for metric in dict.fromkeys(m for _, m, _ in PERCENTILES):
            joined = np.empty(int(counts.sum()))
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            fill = starts.copy()
            for g, c in enumerate(code):
                assert source is not None
                values = source.read_row_group(g, columns=[f"{metric}_s"]).column(0).to_numpy()
                for i in range(len(deployments)):
                    sel = values[c == i]
                    if metric == "tpot":  # one output token: no time per output token
                        sel = sel[~np.isnan(sel)]
                    joined[fill[i]:fill[i] + len(sel)] = sel
                    fill[i] += len(sel)
            # close the gaps the dropped values left (block by block, moving left)
            pos = 0
            bounds = {}
            for i, d in enumerate(deployments):
                n = int(fill[i] - starts[i])
                for k in range(0, n, 1 << 20):
                    m = min(1 << 20, n - k)
                    joined[pos + k:pos + k + m] = joined[starts[i] + k:starts[i] + k + m]
                bounds[d] = (pos, pos + n)
                pos += n
            joined = joined[:pos]
            keys = [(key, p) for key, m, p in PERCENTILES if m == metric]
            for d, (a, b) in bounds.items():  # each deployment's slice first...
                for key, p in keys:
                    out[d][key] = _percentile(joined[a:b], p)
            for key, p in keys:  # ...then all: partitioning the whole mixes the slices
                out[None][key] = _percentile(joined, p)
            del joined
        return out


def _is(column: pa.Array, value: str) -> np.ndarray:
    """Where a dictionary-encoded column equals ``value``, by its codes."""
    if not pa.types.is_dictionary(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False) == value, dtype=bool)
    names = column.dictionary.to_pylist()
    if value not in names:
        return np.zeros(len(column), dtype=bool)
    codes = column.indices.to_numpy(zero_copy_only=False)
    return np.asarray(codes == names.index(value), dtype=bool)


def _percentile(values: np.ndarray, p: float) -> float | None:
    # partitions in place: the same order statistics, so the same value as a copy would give
    return float(np.percentile(values, p, overwrite_input=True)) if len(values) else None
