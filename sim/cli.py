"""``capsim``: the command line, and the one error boundary around every command.

Whatever the input, a command ends with one of these exit codes and, on failure,
one line on stderr — never a traceback:

* 0 — success;
* 1 — a regression (``compare``) or failed runs (``sweep``, ``baseline``);
* 2 — bad input or usage: ``capsim: error: FILE: WHERE: REASON``;
* 3 — an internal error, a bug: one line naming the file the traceback was written to;
* 130 — interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim import __version__
from sim.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    InputError,
    elide,
)
from sim.estimate import estimate
from sim.memory import steady_heap

EPILOG = """\
exit codes:
  0    success
  1    a regression (compare) or failed runs (sweep, baseline)
  2    bad input or usage: one line "capsim: error: FILE: WHERE: REASON"
  3    internal error (a bug): one line naming the file holding the details
  130  interrupted (Ctrl-C)
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for any bad input
        self.exit(EXIT_BAD_INPUT, f"capsim: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="capsim",
        description="Simulate dedicated LLM deployments: GPUs, autoscaling, cold starts, cost.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"capsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run one scenario and write its results")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="results directory (default: results/<scenario name>); "
                                 "a new folder, or one capsim wrote, which it replaces")
    r.add_argument("--force", action="store_true",
                   help="replace --out even if capsim did not write it")
    r.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set seed=3 --set deployments[0].max_queue=10",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--yes", action="store_true",
                   help="run a large scenario without the estimate's warnings "
                        "(hard limits still refuse)")
    r.add_argument("--no-requests", action="store_true",
                   help="keep no per-request table (flat memory for long horizons; "
                        "latency percentiles from quantile sketches)")
    r.set_defaults(handler=_run)

    v = sub.add_parser("validate", help="check a scenario (and its traces) or a trace file")
    v.add_argument("file", help="scenario YAML, or a trace (.csv, .jsonl)")
    v.set_defaults(handler=_validate)

    c = sub.add_parser("catalog", help="show accelerators, shapes, regions or prices")
    c.add_argument(
        "what", nargs="?", default="accelerators",
        choices=["accelerators", "shapes", "regions", "prices"],
    )
    c.set_defaults(handler=_catalog)

    b = sub.add_parser("bench", help="measure simulation speed against a naive SimPy model")
    b.add_argument("--requests", type=int, default=200_000, help="requests per measured run")
    b.add_argument("--repeats", type=int, default=3, help="runs per model; the best is kept")
    b.add_argument("--sweep", action="store_true",
                   help="instead: speed-up of a sweep on the local pool and on Dask over a "
                        "sequential run")
    b.add_argument("--scale", action="store_true",
                   help="instead: wall time, peak memory and requests per second of "
                        "scenarios/bench/week.yaml over 1 hour, 1 day and 1 week")
    b.add_argument("--scenario", metavar="FILE",
                   help="with --scale: the scenario to measure (default: "
                        "scenarios/bench/week.yaml, from the current folder)")
    b.add_argument("--runs", type=int, default=16, help="with --sweep: runs in the sweep")
    b.add_argument("--workers", type=int, help="with --sweep: worker processes (default: cores)")
    b.set_defaults(handler=_bench)

    e = sub.add_parser(
        "breakeven",
        help="every range of request rates where on-demand GPUs cost less per served token "
             "than serverless, while meeting the SLO",
    )
    e.add_argument("scenario", help="scenario YAML; its deployment's traffic is scaled")
    e.add_argument("--deployment", help="which deployment (default: the first)")
    e.add_argument("--low", type=float, default=1 / 16, help="smallest rate factor (1/16)")
    e.add_argument("--high", type=float, default=16.0, help="largest rate factor (16)")
    e.add_argument("--grid", type=int, default=7, help="rates simulated before bisection")
    e.add_argument("--out", help="folder for breakeven.json, breakeven.csv and breakeven.png "
                                 "(default: results/<scenario name>-breakeven)")
    e.add_argument("--force", action="store_true",
                   help="replace --out even if capsim did not write it")
    e.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a scenario key, as for capsim run",
    )
    e.set_defaults(handler=_breakeven)

    from sim.compare.command import add_parser as add_compare_parser
    from sim.plan.command import add_parser as add_plan_parser
    from sim.sweep.commands import add_parsers as add_sweep_parsers

    add_sweep_parsers(sub)  # sweep, baseline
    add_compare_parser(sub)  # compare
    add_plan_parser(sub)  # plan
    from sim.perf.loadtest import add_parser as add_calibrate_parser

    add_calibrate_parser(sub)  # calibrate
    return p


def main(argv: Sequence[str] | None = None) -> int:
    steady_heap()
    args = _parser().parse_args(argv)
    return run_command(args.handler, args)


def run_command(handler: Callable[[argparse.Namespace], int | None],
                args: argparse.Namespace) -> int:
    """The error boundary: run one subcommand's handler and turn whatever it raises
    into one line on stderr and an exit code (see the module docstring).

    Warnings raised while the command runs (numpy's ``RuntimeWarning`` and the like)
    are held back: shown after a command that succeeds, dropped before an error line.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            code = int(handler(args) or 0)
        except InputError as err:
            return _fail(EXIT_BAD_INPUT, f"capsim: error: {err}")
        except KeyboardInterrupt:
            return _fail(EXIT_INTERRUPTED, "capsim: interrupted")
        except BrokenPipeError:  # `capsim catalog | head`: the reader left; not an error
            _silence_stdout()
            return 0
        except MemoryError:
            path = _write_crash_report(args)
            return _fail(EXIT_INTERNAL, "capsim: error: out of memory; the run's estimate "
                                        f"should have refused it — please report (details: {path})")
        except OSError as exc:  # the disk, not the program: unreadable, full, read-only
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(EXIT_BAD_INPUT,
                         f"capsim: error: {elide(where + (exc.strerror or str(exc)), 300)}")
        except Exception as exc:
            path = _write_crash_report(args)
            what = elide(f"{type(exc).__name__}: {exc}", 160)
            return _fail(EXIT_INTERNAL, f"capsim: internal error (a bug in capsim): {what}; "
                                        f"details written to {path}")
    for w in caught:
        print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno),
              end="", file=sys.stderr)
    return code


def _fail(code: int, line: str) -> int:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    print(line, file=sys.stderr)
    return code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def crash_dir() -> Path:
    """Where tracebacks of internal errors go: ``$XDG_CACHE_HOME/capsim`` (else
    ``~/.cache/capsim``), or the temporary folder when that cannot be written."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "capsim"


def _write_crash_report(args: argparse.Namespace) -> str:
    text = (f"capsim {__version__}, python {sys.version.split()[0]}\n"
            f"command: {' '.join(sys.argv)}\narguments: {vars(args)}\n\n"
            f"{traceback.format_exc()}")
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return str(path)
        except OSError:
            continue
    return "(nowhere: no writable cache or temporary folder)"


def _bench(args: argparse.Namespace) -> int:
    if args.scale:
        from sim.bench_scale import main as scale_bench

        return scale_bench(scenario=args.scenario)
    if args.sweep:
        from sim.sweep.bench import main as sweep_bench

        return sweep_bench(runs=args.runs, workers=args.workers, repeats=args.repeats)
    from sim.bench import main as bench_main

    return bench_main(requests=args.requests, repeats=args.repeats)


def _run(args: argparse.Namespace) -> int:
    import sim
    from sim.io import RequestsFile, output_dir, write_run
    from sim.report.console import notice_compile, print_summary, run_progress
    from sim.scenario.loader import parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    try:
        loaded = sim.load_scenario(args.scenario, overrides)
    except InputError as err:
        if err.where == "plan" and "unknown key" in err.reason:
            err.reason = "a plan: section is for capsim plan (capsim run takes the scenario " \
                         "without it: see the plan's best.yaml)"
        raise
    size = estimate(loaded, keep_requests=not args.no_requests,
                    streamed=True).refuse(args.scenario)  # the table goes to disk
    if not (args.yes or loaded.spec.large_run_ok):
        for line in size.warnings():
            print(f"capsim: warning: {line} (--yes hides this)", file=sys.stderr)
    out = Path(args.out) if args.out else Path("results") / loaded.spec.name
    show_progress = not args.no_progress and sys.stderr.isatty()
    notice_compile()
    from sim.workload.generate import traffic_warnings

    for dep in loaded.spec.deployments:
        for line in traffic_warnings(dep.traffic, loaded.spec.duration, loaded.base_dir):
            print(f"capsim: warning: {line}", file=sys.stderr)
    with output_dir(out, kind="run", force=args.force) as tmp, \
            run_progress(loaded.spec.name, loaded.spec.duration, show_progress) as (on_t, phase):
        # the request table goes to disk a window at a time: memory stays flat
        sink = None if args.no_requests else RequestsFile(tmp / "requests.parquet")
        result = sim.run(loaded, progress=on_t, keep_requests=False, requests_sink=sink)
        write_run(result, tmp, phase=phase)
    from sim.report.format import service_warnings

    for line in service_warnings(result.summary):
        print(f"warning: {line}")
    print_summary(result)
    print(f"results written to {out}/")
    return 0


def _breakeven(args: argparse.Namespace) -> int:
    import json

    import sim
    from sim.analysis import breakeven
    from sim.io import check_target, write_files
    from sim.report.console import notice_compile, print_table
    from sim.report.html import Plot
    from sim.scenario.loader import parse_override

    if not (0 < args.low < args.high) or args.grid < 2:
        raise InputError("need 0 < --low < --high and --grid ≥ 2")
    overrides = dict(parse_override(item) for item in args.overrides)
    loaded = sim.load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("results") / f"{loaded.spec.name}-breakeven"
    check_target(out, force=args.force)  # before the simulations, not after
    notice_compile()
    try:
        result = breakeven(loaded, args.deployment, low=args.low, high=args.high,
                           grid=args.grid,
                           progress=lambda line: print(f"  {line}", file=sys.stderr))
    except InputError as err:
        raise err.with_file(args.scenario) from None
    table = result.points[["rps", "on_demand_per_million", "serverless_per_million",
                           "cost_usd", "serverless_cost_usd", "ok_fraction", "meets_slo",
                           "cheaper"]]
    print_table(table, title=f"{result.deployment}: USD per 1M served tokens by request rate")
    plot = Plot.of("breakeven.png", "break-even", "", result.plot())
    write_files(out, {
        "breakeven.csv": result.points.to_csv(index=False).encode(),
        "breakeven.json": (json.dumps(result.document(), indent=2) + "\n").encode(),
        "breakeven.png": plot.png,
    }, kind="breakeven", force=args.force)
    lo, hi = float(table["rps"].min()), float(table["rps"].max())
    missed = table[~table["meets_slo"].astype(bool)]
    if len(missed):
        print(f"dedicated misses the SLO at {len(missed)} of {len(table)} rates "
              f"({', '.join(f'{r:.3g}' for r in missed['rps'])} req/s): left out")
    if not result.cheaper_intervals:
        print(f"dedicated is cheaper per served token at no rate between {lo:.3g} and "
              f"{hi:.3g} req/s where it meets the SLO")
    else:
        ranges = ", ".join(f"{a:.3g}–{b:.3g}" for a, b in result.cheaper_intervals)
        print(f"dedicated is cheaper per served token, and meets the SLO, at {ranges} req/s "
              f"(rates simulated: {lo:.3g} to {hi:.3g})")
    print(f"plot, table and breakeven.json written to {out}/")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sim
    from sim.workload import read_trace

    path = Path(args.file)
    if path.suffix in (".csv", ".jsonl"):
        from sim.workload.traces import trace_stats, unit_warning

        stats = trace_stats(read_trace(path))
        print(f"{path}: valid trace, {stats.line()}")
        unit = unit_warning(stats, path)
        if unit is not None:
            print(f"capsim: warning: {path}: {unit}", file=sys.stderr)
        return 0
    from sim.sweep import is_sweep_file, load_sweep

    if is_sweep_file(path):
        plan = load_sweep(path)
        print(f"{path}: valid sweep '{plan.name}': {len(plan.points)} points × "
              f"{len(plan.seeds)} seeds = {len(plan.runs)} runs")
        return 0
    from sim.plan.search import is_plan_document, load_plan
    from sim.scenario.loader import read_document

    if is_plan_document(read_document(path)):
        _, spec, loaded, _, _ = load_plan(path)
        shapes = len(spec.shapes) if spec.shapes else 1
        regions = len(spec.regions) if spec.regions else 1
        families = shapes * regions * len(spec.candidates())
        print(f"{path}: valid plan '{loaded.spec.name}': {shapes} shape{'s' * (shapes != 1)} × "
              f"{len(spec.candidates())} polic{'ies' if len(spec.candidates()) != 1 else 'y'} × "
              f"{regions} region{'s' * (regions != 1)} = {families} families to search "
              "(capsim plan)")
        return 0
    loaded = sim.load_scenario(path)
    size = estimate(loaded).refuse(str(path))
    n = len(loaded.spec.deployments)
    print(f"{path}: valid scenario {elide(repr(loaded.spec.name))} "
          f"({n} deployment{'s' * (n != 1)}): {size.line()}")
    for line in size.warnings():
        print(f"{path}: warning: {line}")
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from sim import catalog
    from sim.report.console import print_table

    tables = {
        "accelerators": catalog.accelerators_table,
        "shapes": catalog.shapes_table,
        "regions": catalog.regions_table,
        "prices": catalog.prices_table,
    }
    print_table(tables[args.what](), title=args.what)
    return 0


if __name__ == "__main__":
    sys.exit(main())
