"""Measured throughput curves: load-test points, interpolated.

A curve CSV (``#`` lines are comments) has one row per tested concurrency::

    concurrency,output_tokens_per_s,prefill_tokens_per_s
    1,45,9000
    8,320,
    32,1000,

``output_tokens_per_s`` is the replica's decode rate with that many requests
running; ``prefill_tokens_per_s`` (optional, may be blank) the prompt rate; the
replica's prefill rate is the largest value in that column.
Between points the rate is interpolated linearly; below the first point it
scales in proportion to concurrency (the step time stays that of the first
point: decode is memory bound at low batch); beyond the last it stays flat.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError


class MeasuredCurve:
    """Output tokens/s of one replica as a function of concurrency."""

    def __init__(
        self,
        concurrency: list[float] | np.ndarray,
        output_tokens_per_s: list[float] | np.ndarray,
        prefill_tokens_per_s: float | None = None,
        *,
        source: str | None = None,
    ):
        c = np.asarray(concurrency, dtype=float)
        x = np.asarray(output_tokens_per_s, dtype=float)
        where = f"curve {source}" if source else "curve"
        if c.ndim != 1 or c.shape != x.shape or len(c) == 0:
            raise InputError(f"{where}: needs one or more (concurrency, tokens/s) points")
        if np.any(c < 1) or np.any(~np.isfinite(x)) or np.any(x <= 0):
            raise InputError(f"{where}: concurrency must be ≥ 1 and tokens/s positive")
        order = np.argsort(c)
        c, x = c[order], x[order]
        if np.any(np.diff(c) == 0):
            raise InputError(f"{where}: a concurrency appears twice")
        if prefill_tokens_per_s is not None and not prefill_tokens_per_s > 0:
            raise InputError(f"{where}: prefill tokens/s must be positive")
        self.concurrency = c
        self.output_tokens_per_s = x
        self.prefill_tokens_per_s = prefill_tokens_per_s
        self.source = source

    def output_rate(self, concurrency: float) -> float:
        """Interpolated output tokens/s at ``concurrency`` running requests."""
        if concurrency <= 0:
            return 0.0
        c, x = self.concurrency, self.output_tokens_per_s
        if concurrency < c[0]:
            return float(x[0] * concurrency / c[0])
        return float(np.interp(concurrency, c, x))

    @classmethod
    def from_csv(cls, path: str | Path) -> MeasuredCurve:
        """Read a curve CSV; any problem is an InputError naming the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read curve: {exc.strerror}", file=str(path)) from None
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        try:
            table = pd.read_csv(io.StringIO(body))
        except (ValueError, pd.errors.ParserError) as exc:
            raise InputError(f"not a CSV table: {exc}", file=str(path)) from None
        columns = [str(c) for c in table.columns]
        missing = {"concurrency", "output_tokens_per_s"} - set(columns)
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(sorted(missing))} (have: {', '.join(columns)})",
                file=str(path),
            )
        unknown = set(columns) - {"concurrency", "output_tokens_per_s", "prefill_tokens_per_s"}
        if unknown:
            raise InputError(f"unknown column(s) {', '.join(sorted(unknown))}", file=str(path))
        try:
            c = pd.to_numeric(table["concurrency"]).to_numpy(dtype=float)
            x = pd.to_numeric(table["output_tokens_per_s"]).to_numpy(dtype=float)
            prefill = None
            if "prefill_tokens_per_s" in table.columns:
                p = pd.to_numeric(table["prefill_tokens_per_s"]).dropna()
                prefill = float(p.max()) if len(p) else None
        except (ValueError, TypeError) as exc:
            raise InputError(f"non-numeric value: {exc}", file=str(path)) from None
        try:
            return cls(c, x, prefill, source=path.name)
        except InputError as exc:
            raise exc.with_file(str(path)) from None
