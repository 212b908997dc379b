"""``capsim sweep`` and ``capsim baseline``: parsers and handlers, wired in by ``sim.cli``."""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.io.atomic import output_dir
from sim.sweep.executors import DaskExecutor, Executor, make_executor
from sim.sweep.plan import SweepPlan, load_sweep
from sim.sweep.runner import SweepReport, run_sweep
from sim.sweep.worker import RunOutcome

REGRESSION_DIR = Path("scenarios/regression")
BASELINE_DIR = REGRESSION_DIR / "baseline"
EXIT_RUN_FAILED = 1


def executor_args(p: argparse.ArgumentParser, progress: bool = True) -> None:
    """``--executor``, ``--scheduler``, ``--workers`` (and ``--no-progress``) of a
    command that runs simulations in parallel: sweep, baseline, plan."""
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local process pool (default) or a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies dask); "
                        "without it, --executor dask starts a local cluster")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (default: one per core); with --scheduler, "
                        "wait for N workers before starting")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("sweep", help="run a sweep file: axes × seeds, locally or on Dask")
    s.add_argument("file", help="sweep YAML: a scenario with sweep: axes and seeds:")
    s.add_argument("--out", help="results directory (default: results/<name>-sweep)")
    s.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a key of the base scenario")
    s.add_argument("--summary-only", action="store_true",
                   help="write each run's summary.json only, not its tables")
    s.add_argument("--force", action="store_true",
                   help="re-run finished runs too; write into --out even if capsim did not "
                        "write it (nothing in it is deleted)")
    s.add_argument("--no-report", action="store_true",
                   help="write no report.html (nor plots): neither the sweep's nor each run's")
    executor_args(s)
    s.set_defaults(handler=sweep_command)

    b = sub.add_parser("baseline", help="write the regression baseline for CI "
                                        "(scenarios/regression/*.yaml)")
    b.add_argument("files", nargs="*",
                   help=f"regression sweep files (default: {REGRESSION_DIR}/*.yaml)")
    b.add_argument("--out", default=str(BASELINE_DIR),
                   help=f"where to write (default: {BASELINE_DIR}); one folder per file; "
                        "a new folder, or one capsim wrote, which it replaces")
    b.add_argument("--force", action="store_true",
                   help="replace --out even if capsim did not write it")
    executor_args(b)
    b.set_defaults(handler=baseline_command)


def executor_from(args: argparse.Namespace) -> Executor:
    """The executor :func:`executor_args`' flags ask for; a Dask cluster is reached now."""
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1 (got {args.workers})")
    executor = make_executor(args.executor, scheduler=args.scheduler, workers=args.workers)
    if isinstance(executor, DaskExecutor):
        executor.connect()  # a cluster that cannot run anything: exit 2, nothing written
    return executor


class _Progress:
    """A rich progress bar on a terminal; one line per run elsewhere (CI logs)."""

    def __init__(self, label: str, enabled: bool, stack: ExitStack):
        self.label = label
        self.bar: Any = None
        self.task: Any = None
        self.failed = 0
        self.done = 0
        self.total = 0
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = stack.enter_context(Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("runs · {task.fields[failed]} failed"), TimeElapsedColumn(),
                TimeRemainingColumn(), transient=True,
            ))

    def start(self, todo: int, skipped: int) -> None:
        self.total = todo
        if skipped:
            print(f"{self.label}: {skipped} run{'s' * (skipped != 1)} already finished, "
                  "skipped", file=sys.stderr)
        if self.bar is not None:
            self.task = self.bar.add_task(self.label, total=todo, failed=0)

    def outcome(self, outcome: RunOutcome) -> None:
        self.done += 1
        if not outcome.ok:
            self.failed += 1
            msg = f"capsim: run {outcome.run_id} seed={outcome.seed} failed: {outcome.error}"
            if self.bar is not None:
                self.bar.console.print(msg, markup=False, highlight=False)
            else:
                print(msg, file=sys.stderr)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, failed=self.failed)
        else:
            status = "ok" if outcome.ok else "FAILED"
            print(f"{self.label}: [{self.done}/{self.total}] {outcome.run_id} "
                  f"seed={outcome.seed} {status} ({outcome.wall_s:.1f} s)", file=sys.stderr)


def _run(plan: SweepPlan, out: Path, executor: Executor, *, tables: bool, force: bool,
         progress: bool, report: bool = True) -> SweepReport:
    with ExitStack() as stack:
        bar = _Progress(plan.name, progress, stack)
        return run_sweep(plan, out, executor=executor, tables=tables, reports=report,
                         force=force, on_start=bar.start, on_outcome=bar.outcome)


def _print_points(report: SweepReport, plan: SweepPlan) -> None:
    """Means over seeds per point of a few headline KPIs."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    df = report.table[report.table["status"] == "ok"]
    if df.empty:
        return
    shown = [("total.ttft_p99_s", "TTFT p99 (s)", "{:.3f}"),
             ("total.slo_attainment", "SLO", "{:.1%}"),
             ("total.failed", "failed", "{:,.0f}"),
             ("total.cost_usd", "cost (USD)", "{:,.2f}")]
    table = Table(title=f"{plan.name}: means over seeds")
    axes = list(plan.axes)
    leaves = [re.split(r"[.\[\]]+", a.strip("]"))[-1] or a for a in axes]
    headers = leaves if len(set(leaves)) == len(leaves) else axes
    for header in headers or ["run"]:
        table.add_column(header, overflow="fold")
    table.add_column("seeds", justify="right")
    for _, label, _ in shown:
        table.add_column(label, justify="right")
    for rid, group in df.groupby("run_id", sort=False):
        cells = []
        for col, _, fmt in shown:
            values = group[col].dropna() if col in group else pd.Series(dtype=float)
            cells.append(fmt.format(float(values.mean())) if len(values) else "—")
        first = group.iloc[0]
        point = ["—" if first[a] is None else str(first[a]) for a in axes] if axes \
            else [str(rid)]
        table.add_row(*point, str(len(group)), *cells)
    Console().print(table)


def _write_report(report: SweepReport, plan: SweepPlan, file: str) -> None:
    """``report.html`` of the sweep (``sim.report.html``), beside the summary table."""
    from sim.report.html import write_sweep_report
    from sim.scenario.loader import load_scenario, read_document

    first = load_scenario(plan.runs[0].scenario, base_dir=plan.base_dir, check_files=False)
    write_sweep_report(report.table, report.out, title=plan.name, axes=list(plan.axes),
                       scenario=read_document(file), slo_s=first.spec.slo.ttft_p99)


def sweep_command(args: argparse.Namespace) -> int:
    from sim.report.console import notice_compile
    from sim.scenario.loader import parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    plan = load_sweep(args.file, overrides)
    executor = executor_from(args)
    out = Path(args.out) if args.out else Path("results") / f"{plan.name}-sweep"
    progress = not args.no_progress and sys.stderr.isatty()
    notice_compile()
    report = _run(plan, out, executor, tables=not args.summary_only, force=args.force,
                  progress=progress, report=not args.no_report)
    _print_points(report, plan)
    if not args.no_report:
        _write_report(report, plan, args.file)
    n = len(plan.runs)
    print(f"{n} run{'s' * (n != 1)} ({len(plan.points)} points × {len(plan.seeds)} seeds): "
          f"{len(report.ran)} ran, {len(report.skipped)} already finished, "
          f"{len(report.failed)} failed — summary in {out}/summary.parquet")
    return EXIT_RUN_FAILED if report.failed else 0


def regression_files(files: list[str]) -> list[Path]:
    if files:
        return [Path(f) for f in files]
    found = sorted(REGRESSION_DIR.glob("*.yaml"))
    if not found:
        raise InputError(f"no regression scenarios in {REGRESSION_DIR}/ "
                         "(run from the repository root, or name the files)")
    return found


class _BaselineFailed(Exception):
    def __init__(self, failed: int):
        super().__init__(f"{failed} run{'s' * (failed != 1)} failed")
        self.failed = failed


def baseline_command(args: argparse.Namespace) -> int:
    try:
        return _baseline(args)
    except _BaselineFailed as err:  # nothing replaced: the old baseline stays
        print(f"capsim: baseline not written: {err}", file=sys.stderr)
        return EXIT_RUN_FAILED


def _baseline(args: argparse.Namespace) -> int:
    """Run every regression sweep afresh (summaries only) and replace ``--out`` in one go."""
    files = regression_files(args.files)
    plans = [(path.stem, load_sweep(path)) for path in files]  # validate all first
    stems = [stem for stem, _ in plans]
    if len(set(stems)) != len(stems):
        raise InputError("two regression files have the same name: "
                         + ", ".join(sorted({s for s in stems if stems.count(s) > 1})))
    executor = executor_from(args)
    out = Path(args.out)
    progress = not args.no_progress and sys.stderr.isatty()
    failed = 0
    with output_dir(out, kind="baseline", force=args.force) as tmp:
        for stem, plan in plans:
            report = _run(plan, tmp / stem, executor, tables=False, force=True,
                          progress=progress)
            failed += len(report.failed)
            print(f"{stem}: {len(plan.runs)} runs ({len(plan.points)} points × "
                  f"{len(plan.seeds)} seeds), {len(report.failed)} failed")
        if failed:
            raise _BaselineFailed(failed)
    print(f"baseline written to {out}/")
    return 0
