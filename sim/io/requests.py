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

    def exact_percentiles(self, deployment: str | None, warmup_s: float) -> dict[str, Any]:
        """The summary's latency percentiles of ``deployment`` (None: all), exact: from
        every ok request that arrived at or after ``warmup_s``, read back from the file."""
        out: dict[str, Any] = {}
        if self.rows == 0:
            return {key: None for key, _, _ in PERCENTILES}
        filters: list[Any] = [("status", "=", "ok"), ("arrival_s", ">=", warmup_s)]
        if deployment is not None:
            filters.append(("deployment", "=", deployment))
        values: dict[str, np.ndarray] = {}
        for key, metric, p in PERCENTILES:
            if metric not in values:
                values.clear()  # one metric in memory at a time
                column = pq.read_table(self.path, columns=[f"{metric}_s"], filters=filters)
                v = column.column(0).to_numpy()
                values[metric] = v[~np.isnan(v)] if metric == "tpot" else v
            v = values[metric]
            out[key] = float(np.percentile(v, p)) if len(v) else None
        return out
