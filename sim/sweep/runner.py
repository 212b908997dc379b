"""Driving a sweep: skip finished runs, execute the rest, write each as it finishes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim.io.atomic import ensure_dir
from sim.sweep.executors import Executor, LocalExecutor, Runner
from sim.sweep.plan import RunSpec, SweepPlan
from sim.sweep.store import (
    is_finished,
    summary_table,
    write_failures,
    write_manifest,
    write_run,
    write_summary_table,
)
from sim.sweep.worker import RunOutcome, RunTask, execute


@dataclass
class SweepReport:
    """What one invocation did: runs executed now, skipped as finished, failed."""

    out: Path
    ran: list[RunOutcome] = field(default_factory=list)
    skipped: list[RunSpec] = field(default_factory=list)
    failed: list[RunOutcome] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        return not self.failed


def tasks_for(plan: SweepPlan, runs: list[RunSpec], tables: bool = True,
              report: bool = True) -> list[RunTask]:
    return [RunTask(r.run_id, r.seed, r.overrides, r.scenario, str(plan.base_dir), tables,
                    report) for r in runs]


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    *,
    executor: Executor | None = None,
    tables: bool = True,
    reports: bool = True,
    force: bool = False,
    runner: Runner = execute,
    on_start: Callable[[int, int], None] | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> SweepReport:
    """Run every unfinished run of ``plan`` into ``out``; return what happened.

    ``tables=False`` writes only each run's ``summary.json`` (baselines, big
    sweeps); ``reports=False`` leaves out each run's ``report.html`` and plots.
    ``force`` re-runs finished runs too, and writes into a folder capsim did
    not write (deleting nothing in it); without it such a folder is refused.
    ``on_start(todo, skipped)`` and ``on_outcome(outcome)`` feed a progress
    display.  A run that fails is recorded in ``failures.json`` and the summary
    table; the others go on.
    """
    out = ensure_dir(Path(out), kind="sweep", force=force)
    write_manifest(out, plan)
    report = SweepReport(out)
    todo: list[RunSpec] = []
    for run in plan.runs:
        if not force and is_finished(out, run, tables):
            report.skipped.append(run)
        else:
            todo.append(run)
    if on_start is not None:
        on_start(len(todo), len(report.skipped))
    executor = executor or LocalExecutor()
    try:
        if todo:
            for _task, outcome in executor.map(runner, tasks_for(plan, todo, tables, reports)):
                if outcome.ok:
                    write_run(out, outcome)
                    outcome.files = {}  # written: do not hold every run's tables in memory
                    report.ran.append(outcome)
                else:
                    report.failed.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        write_failures(out, report.failed)
        report.table = summary_table(out, plan, report.failed)
        write_summary_table(out, report.table)
    return report
