"""The sweep's output directory: one folder per run, written atomically, and the summary table.

Layout (``OUT`` is ``--out``)::

    OUT/sweep.json                      the plan: name, axes, seeds, run ids and their overrides
    OUT/<run-id>/seed=<n>/summary.json  each run's summary (with its resolved scenario and seed)
    OUT/<run-id>/seed=<n>/...          the files of ``capsim run`` (sim.io.write_run)
    OUT/summary.parquet, summary.csv    one row per run: axes, seed, status, every KPI
    OUT/failures.json                   runs that failed in the last invocation, with tracebacks

A run folder is written under a temporary name and renamed into place, so a
``seed=<n>`` folder exists only when complete.  A run is *finished* when its
folder exists and its ``summary.json`` holds the same resolved scenario as the
plan; re-running a sweep skips finished runs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import InputError
from sim.io.atomic import atomic_file, output_dir
from sim.metrics.kpis import KPI_KEYS
from sim.sweep.plan import RunSpec, SweepPlan
from sim.sweep.worker import SUMMARY, TABLE_FILES, RunOutcome, json_safe

MANIFEST = "sweep.json"
FAILURES = "failures.json"
SUMMARY_PARQUET = "summary.parquet"
SUMMARY_CSV = "summary.csv"


def run_dir(out: Path, run_id: str, seed: int) -> Path:
    return Path(out) / run_id / f"seed={seed}"


def _normal(value: Any) -> Any:
    """The value as it reads back from JSON (so stored and planned scenarios compare)."""
    return json.loads(json.dumps(json_safe(value), default=str))


def read_run_summary(out: Path, run_id: str, seed: int) -> dict[str, Any] | None:
    path = run_dir(out, run_id, seed) / SUMMARY
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_finished(out: Path, run: RunSpec, tables: bool = True) -> bool:
    """The run's folder is complete and was made from the same resolved scenario."""
    summary = read_run_summary(out, run.run_id, run.seed)
    if summary is None or summary.get("scenario") != _normal(run.scenario):
        return False
    folder = run_dir(out, run.run_id, run.seed)
    return not tables or all((folder / name).is_file() for name in TABLE_FILES)


def write_manifest(out: Path, plan: SweepPlan) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_normal(plan.manifest()), indent=2) + "\n"
    atomic_file(out / MANIFEST, text.encode())


def read_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"not a sweep result directory (no {MANIFEST})",
                         file=str(out)) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {MANIFEST}: {exc}", file=str(out)) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise InputError(f"{MANIFEST} is not a capsim sweep manifest", file=str(out))
    return data


def write_run(out: Path, outcome: RunOutcome) -> Path:
    """Write one finished run's files into ``OUT/<run-id>/seed=<n>/`` in one rename."""
    final = run_dir(out, outcome.run_id, outcome.seed)
    with output_dir(final, kind="run", force=True) as tmp:
        for name, data in outcome.files.items():
            (tmp / name).write_bytes(data)
    return final


def write_failures(out: Path, failures: Sequence[RunOutcome]) -> None:
    path = out / FAILURES
    if not failures:
        path.unlink(missing_ok=True)
        return
    rows = [{"run_id": f.run_id, "seed": f.seed, "error": f.error, "traceback": f.traceback}
            for f in failures]
    atomic_file(path, (json.dumps(rows, indent=2) + "\n").encode())


def _axis_column(values: list[Any]) -> list[Any]:
    """Scalars of one type stay as they are; anything else becomes its JSON text."""
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and kinds <= {bool, int, float, str}:
        return values
    if kinds <= {int, float}:
        return [float(v) for v in values]
    return [json.dumps(v, sort_keys=True, default=str) for v in values]


def kpi_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """``total.<kpi>`` and ``deployments.<name>.<kpi>`` of one run's summary."""
    cols: dict[str, Any] = {}
    for key in KPI_KEYS:
        cols[f"total.{key}"] = summary.get("total", {}).get(key)
    for name, kpis in summary.get("deployments", {}).items():
        for key in KPI_KEYS:
            cols[f"deployments.{name}.{key}"] = kpis.get(key)
    return cols


def summary_table(
    out: Path, plan: SweepPlan, failures: Iterable[RunOutcome] = ()
) -> pd.DataFrame:
    """One row per run of the plan, in plan order, from the run folders on disk."""
    failed = {f.key: f for f in failures}
    rows = []
    for run in plan.runs:
        row: dict[str, Any] = {"run_id": run.run_id, "seed": run.seed}
        for axis in plan.axes:
            row[axis] = run.overrides.get(axis)
        summary = read_run_summary(out, run.run_id, run.seed)
        if run.key in failed:
            row.update(status="failed", error=failed[run.key].error, wall_s=None,
                       simulated_s=None)
        elif summary is None:
            row.update(status="missing", error=None, wall_s=None, simulated_s=None)
        else:
            row.update(status="ok", error=None, wall_s=summary.get("wall_s"),
                       simulated_s=summary.get("simulated_s"))
            row.update(kpi_columns(summary))
        rows.append(row)
    df = pd.DataFrame(rows)
    for axis in plan.axes:
        df[axis] = _axis_column(list(df[axis]))
    lead = ["run_id", "seed", *plan.axes, "status", "error", "wall_s", "simulated_s"]
    rest = [c for c in df.columns if c not in lead]
    df = df[lead + rest]
    df["error"] = df["error"].astype("string")
    return df


def write_summary_table(out: Path, table: pd.DataFrame) -> None:
    """``summary.parquet`` and ``summary.csv``, each replaced in one rename."""
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_file(out / SUMMARY_PARQUET, buf.getvalue())
    atomic_file(out / SUMMARY_CSV, table.to_csv(index=False).encode())


def read_summary(out: str | Path) -> pd.DataFrame:
    """The sweep's summary table (one row per run)."""
    path = Path(out) / SUMMARY_PARQUET
    if not path.is_file():
        raise InputError(f"no {SUMMARY_PARQUET}: not a sweep result directory", file=str(out))
    return pd.read_parquet(path)


def read_table(out: str | Path, table: str = "requests") -> pd.DataFrame:
    """One table of every finished run (``requests``, ``timeline`` or ``billing``), concatenated,
    with ``run_id`` and ``seed`` columns in front."""
    out = Path(out)
    manifest = read_manifest(out)
    suffix = ".csv" if table == "billing" else ".parquet"
    frames = []
    for entry in manifest["runs"]:
        for seed in manifest["seeds"]:
            path = run_dir(out, entry["run_id"], seed) / f"{table}{suffix}"
            if not path.is_file():
                continue
            df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            df.insert(0, "seed", seed)
            df.insert(0, "run_id", entry["run_id"])
            frames.append(df)
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)
