"""The one encoder of a run's files, shared by ``capsim run``, ``sweep``, ``baseline``, ``plan``.

A run folder holds::

    summary.json         the summary (docs/metrics.md), NaN and ±inf as null
    requests.parquet     one row per request (unless the run kept none)
    timeline.parquet     one row per interval and deployment
    billing.csv          billing lines
    allocation.parquet   GPUs per datacenter, accelerator and holder over time
    report.html + *.png  the report (sim.report.html), unless ``report=False``

:func:`write_run` writes them into a folder (usually the temporary folder of
:func:`sim.io.output_dir`, so the folder appears complete or not at all);
:func:`encode_run` returns the same files as bytes, for a sweep worker that
hands them to the process writing the sweep's folder.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sim.results import Result

SUMMARY = "summary.json"
REQUESTS = "requests.parquet"
TABLE_FILES = (REQUESTS, "timeline.parquet", "billing.csv", "allocation.parquet")


def json_safe(value: Any) -> Any:
    """NaN and ±inf become ``null``; tuples become lists (what JSON can hold)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def summary_bytes(summary: Mapping[str, Any]) -> bytes:
    """``summary.json``'s bytes."""
    return (json.dumps(json_safe(dict(summary)), indent=2) + "\n").encode()


def write_run(
    result: Result,
    out_dir: str | Path,
    *,
    tables: bool = True,
    report: bool = True,
    extra_summary: Mapping[str, Any] | None = None,
    phase: Callable[[str], None] | None = None,
) -> list[str]:
    """Write the files of one run into the existing folder ``out_dir``; return their names.

    ``tables=False`` writes ``summary.json`` only (baselines, big sweeps);
    ``report=False`` leaves out ``report.html`` and its plots.
    ``extra_summary`` keys go first in ``summary.json`` (a sweep's ``run_id``
    and ``overrides``).  A ``requests.parquet`` already in ``out_dir`` (streamed
    there during the run by :class:`sim.io.RequestsFile`) is kept as it is.
    ``phase(name)`` is called before each step, for a progress display.
    """
    out = Path(out_dir)
    note = phase or (lambda _name: None)
    summary = {**(extra_summary or {}), **result.summary}
    note("summary")
    (out / SUMMARY).write_bytes(summary_bytes(summary))
    written = [SUMMARY]
    if tables:
        note("tables")
        if not (out / REQUESTS).exists():
            result.requests.to_parquet(out / REQUESTS, index=False)
        result.timeline.to_parquet(out / "timeline.parquet", index=False)
        result.billing.to_csv(out / "billing.csv", index=False)
        result.allocation.to_parquet(out / "allocation.parquet", index=False)
        written += list(TABLE_FILES)
    if report:
        from sim.report.html import write_report

        note("report")
        path = write_report(result, out)
        written += [*sorted(p.name for p in out.glob("*.png")), path.name]
    return written


def encode_run(result: Result, **kwargs: Any) -> dict[str, bytes]:
    """The files :func:`write_run` writes, as name → bytes (same arguments)."""
    with tempfile.TemporaryDirectory(prefix="capsim-run-") as tmp:
        names = write_run(result, tmp, **kwargs)
        return {name: (Path(tmp) / name).read_bytes() for name in names}
