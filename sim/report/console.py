"""Tables in the terminal (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from sim.results import Result

# Rows of the terminal summary: (label, key, format).
_ROWS = (
    ("requests", "requests", "{:,}"),
    ("ok", "ok", "{:,}"),
    ("failed", "failed", "{:,}"),
    ("HTTP 503 / 429", ("http_503", "http_429"), "{:,} / {:,}"),
    ("retries", "retries", "{:,}"),
    ("TTFT p50 / p99 (s)", ("ttft_p50_s", "ttft_p99_s"), "{:.3f} / {:.3f}"),
    ("TPOT p50 / p99 (ms)", ("tpot_p50_s", "tpot_p99_s"), "ms"),
    ("E2E p50 / p99 (s)", ("e2e_p50_s", "e2e_p99_s"), "{:.2f} / {:.2f}"),
    ("SLO attainment", "slo_attainment", "{:.1%}"),
    ("ready replicas mean / max", ("mean_ready_replicas", "max_ready_replicas"), "{:.2f} / {}"),
    ("utilization", "utilization", "{:.1%}"),
    ("GPU-hours", "gpu_seconds", "gpuh"),
    ("cost (USD)", "cost_usd", "${:,.2f}"),
    ("serverless cost (USD)", "serverless_cost_usd", "${:,.2f}"),
    ("cost per 1M tokens (USD)", "cost_per_million_tokens_usd", "${:,.3f}"),
)


def _cell(kpis: dict[str, Any], key: str | tuple[str, ...], fmt: str) -> str:
    keys = (key,) if isinstance(key, str) else key
    if any(kpis.get(k) is None for k in keys):
        return "—"
    values: list[Any] = [kpis[k] for k in keys]
    if fmt == "ms":
        return " / ".join(f"{v * 1000:.1f}" for v in values)
    if fmt == "gpuh":
        return f"{values[0] / 3600:,.1f}"
    return fmt.format(*values)


def print_summary(result: Result, console: Console | None = None) -> None:
    console = console or Console()
    summary = result.summary
    table = Table(title=f"{summary['name']} — seed {summary['seed']}, "
                  f"{summary['simulated_s'] / 3600:.2f} h simulated in {summary['wall_s']:.1f} s")
    table.add_column("")
    names = list(summary["deployments"])
    for name in names:
        table.add_column(name, justify="right")
    if len(names) > 1:
        table.add_column("total", justify="right", style="bold")
    for label, key, fmt in _ROWS:
        cells = [_cell(summary["deployments"][n], key, fmt) for n in names]
        if len(names) > 1:
            cells.append(_cell(summary["total"], key, fmt))
        table.add_row(label, *cells)
    console.print(table)


def print_table(df: pd.DataFrame, title: str = "", console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=title)
    for col in df.columns:
        numeric = pd.api.types.is_numeric_dtype(df[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for row in df.itertuples(index=False):
        table.add_row(*("" if pd.isna(v) else f"{v:,.4g}" if isinstance(v, float) else str(v)
                        for v in row))
    console.print(table)


@contextmanager
def run_progress(
    name: str, duration_s: float, enabled: bool
) -> Iterator[tuple[Callable[[float], None] | None, Callable[[str], None]]]:
    """A progress display for ``capsim run``: ``(on_time, phase)``.

    ``on_time(t)`` moves the bar over simulated time, with the wall time spent and
    the time remaining (from the rate so far); ``phase(what)`` names the step after
    the simulation (writing the tables, drawing the report), so the screen never
    sits still.  Disabled: ``(None, no-op)``.
    """
    if not enabled:
        yield None, lambda _what: None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
        TextColumn("{task.percentage:>3.0f}% of simulated time"), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), transient=True,
    ) as bar:
        task = bar.add_task(name, total=duration_s or 1.0)
        phases = {"summary": "writing summary.json", "tables": "writing the tables",
                  "report": "drawing the report"}

        def on_time(t: float) -> None:
            bar.update(task, completed=t)

        def phase(what: str) -> None:
            bar.update(task, completed=duration_s or 1.0,
                       description=f"{name}: {phases.get(what, what)}")

        yield on_time, phase
