"""Tables in the terminal (rich)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from sim.metrics.kpis import KPI_KEYS
from sim.report.format import format_kpi, has_slo, kpi_label
from sim.results import Result

# The terminal summary's rows: the KPI registry's keys, in its order, without the
# percentiles the report alone shows.
TERMINAL_KEYS = tuple(k for k in KPI_KEYS if k not in {
    "ttft_p50_s", "ttft_p90_s", "e2e_p50_s", "user_ttft_p90_s", "busy_fraction",
    "pending_replica_seconds", "replica_crashes"})
NBSP = "\u00a0"  # keeps a number and its unit on one line


def summary_title(summary: dict[str, Any]) -> str:
    """``name — seed 1, 1.00 h simulated in 2.3 s``; numbers never split from their units."""
    hours = f"{summary['simulated_s'] / 3600:,.2f}{NBSP}h"
    wall = f"{summary['wall_s']:,.1f}{NBSP}s"
    return (f"{summary['name']} — seed{NBSP}{summary['seed']}, {hours} simulated in "
            f"{wall}")


def print_summary(result: Result, console: Console | None = None) -> None:
    console = console or Console()
    summary = result.summary
    table = Table(title=summary_title(summary))
    table.add_column("", overflow="fold")
    names = list(summary["deployments"])
    blocks = [summary["deployments"][n] for n in names]
    for name in names:
        table.add_column(name, justify="right", no_wrap=True, overflow="fold")
    if len(names) > 1:
        table.add_column("total", justify="right", style="bold", no_wrap=True, overflow="fold")
        blocks.append(summary["total"])
    slo = has_slo(summary)
    for key in TERMINAL_KEYS:
        if key == "slo_attainment" and not slo:
            continue  # no objective: nothing to attain
        values = [b.get(key) for b in blocks]
        if all(v is None for v in values):
            continue  # e.g. SLO attainment without an objective, cold starts without any
        table.add_row(kpi_label(key), *(format_kpi(key, v) for v in values))
    console.print(table)


def print_table(df: pd.DataFrame, title: str = "", console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=title)
    cells = [[_plain(v) for v in row] for row in df.itertuples(index=False)]
    for j, col in enumerate(df.columns):
        numeric = pd.api.types.is_numeric_dtype(df[col])
        widest = max((len(row[j]) for row in cells), default=1)
        # a number is never cut: its column is at least as wide as its widest value;
        # headers and text fold onto more lines when the terminal is narrow
        table.add_column(str(col), justify="right" if numeric else "left", overflow="fold",
                         min_width=widest if numeric else min(widest, 12))
    for row in cells:
        table.add_row(*row)
    console.print(table, crop=False)  # wider than the terminal: wrap, never cut


def _plain(value: Any) -> str:
    """A table cell: integers in full with separators, floats to 4 significant digits."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:,.4g}"
    return str(value)


def notice_compile() -> None:
    """One line on stderr before a run that starts by compiling the kernels
    (:func:`sim.engine.jit.compile_notice`): else a minute or more passes in silence."""
    from sim.engine.jit import compile_notice

    line = compile_notice()
    if line:
        print(f"capsim: {line}", file=sys.stderr)

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
