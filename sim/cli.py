"""``capsim``: the command line.  Bad input → one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sim import __version__
from sim.errors import InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as for any bad input
        self.exit(EXIT_BAD_INPUT, f"capsim: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="capsim",
        description="Simulate dedicated LLM deployments: GPUs, autoscaling, cold starts, cost.",
    )
    p.add_argument("--version", action="version", version=f"capsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run one scenario and write its results")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="results directory (default: results/<scenario name>)")
    r.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set seed=3 --set deployments[0].max_queue=10",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--no-requests", action="store_true",
                   help="keep no per-request table (flat memory for long horizons; "
                        "latency percentiles from quantile sketches)")

    v = sub.add_parser("validate", help="check a scenario (and its traces) or a trace file")
    v.add_argument("file", help="scenario YAML, or a trace (.csv, .jsonl)")

    c = sub.add_parser("catalog", help="show accelerators, shapes, regions or prices")
    c.add_argument(
        "what", nargs="?", default="accelerators",
        choices=["accelerators", "shapes", "regions", "prices"],
    )

    b = sub.add_parser("bench", help="measure simulation speed against a naive SimPy model")
    b.add_argument("--requests", type=int, default=200_000, help="requests per measured run")
    b.add_argument("--repeats", type=int, default=3, help="runs per model; the best is kept")
    b.add_argument("--sweep", action="store_true",
                   help="instead: speed-up of a sweep on the local pool and on Dask over a "
                        "sequential run")
    b.add_argument("--scale", action="store_true",
                   help="instead: wall time, peak memory and requests per second of "
                        "scenarios/bench/week.yaml over 1 hour, 1 day and 1 week")
    b.add_argument("--runs", type=int, default=16, help="with --sweep: runs in the sweep")
    b.add_argument("--workers", type=int, help="with --sweep: worker processes (default: cores)")

    e = sub.add_parser(
        "breakeven",
        help="request rate where on-demand GPUs cost what serverless does per token",
    )
    e.add_argument("scenario", help="scenario YAML; its deployment's traffic is scaled")
    e.add_argument("--deployment", help="which deployment (default: the first)")
    e.add_argument("--low", type=float, default=1 / 16, help="smallest rate factor (1/16)")
    e.add_argument("--high", type=float, default=16.0, help="largest rate factor (16)")
    e.add_argument("--grid", type=int, default=7, help="rates simulated before bisection")
    e.add_argument("--out", help="folder for breakeven.png and breakeven.csv "
                                 "(default: results/<scenario name>-breakeven)")

    from sim.compare.command import add_parser as add_compare_parser
    from sim.sweep.commands import add_parsers as add_sweep_parsers

    add_sweep_parsers(sub)  # sweep, baseline
    add_compare_parser(sub)  # compare
    from sim.perf.loadtest import add_parser as add_calibrate_parser

    add_calibrate_parser(sub)  # calibrate
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "catalog":
            return _catalog(args)
        if args.command == "breakeven":
            return _breakeven(args)
        if args.command in ("sweep", "baseline", "compare", "calibrate"):
            return int(args.handler(args))
        if args.command == "bench" and args.scale:
            from sim.bench_scale import main as scale_bench

            return scale_bench()
        if args.command == "bench" and args.sweep:
            from sim.sweep.bench import main as sweep_bench

            return sweep_bench(runs=args.runs, workers=args.workers, repeats=args.repeats)
        if args.command == "bench":
            from sim.bench import main as bench_main

            return bench_main(requests=args.requests, repeats=args.repeats)
    except InputError as err:
        print(f"capsim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _run(args: argparse.Namespace) -> int:
    import sim
    from sim.report.console import print_summary
    from sim.report.writer import write_results
    from sim.scenario.loader import parse_override

    overrides = dict(parse_override(item) for item in args.overrides)
    loaded = sim.load_scenario(args.scenario, overrides)
    out = Path(args.out) if args.out else Path("results") / loaded.spec.name
    show_progress = not args.no_progress and sys.stderr.isatty()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.percentage:>3.0f}% of simulated time"), TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task(loaded.spec.name, total=loaded.spec.duration)
            result = sim.run(loaded, progress=lambda t: bar.update(task, completed=t),
                             keep_requests=not args.no_requests)
    else:
        result = sim.run(loaded, keep_requests=not args.no_requests)
    write_results(result, out)
    print_summary(result)
    print(f"results written to {out}/")
    return 0


def _breakeven(args: argparse.Namespace) -> int:
    import sim
    from sim.analysis import breakeven
    from sim.report.console import print_table
    from sim.report.writer import write_files

    if not (0 < args.low < args.high) or args.grid < 2:
        raise InputError("need 0 < --low < --high and --grid ≥ 2")
    loaded = sim.load_scenario(args.scenario)
    out = Path(args.out) if args.out else Path("results") / f"{loaded.spec.name}-breakeven"
    try:
        result = breakeven(loaded, args.deployment, low=args.low, high=args.high,
                           grid=args.grid,
                           progress=lambda line: print(f"  {line}", file=sys.stderr))
    except InputError as err:
        raise err.with_file(args.scenario) from None
    table = result.points[["rps", "on_demand_per_million", "serverless_per_million",
                           "cost_usd", "serverless_cost_usd", "ok_fraction"]]
    print_table(table, title=f"{result.deployment}: USD per 1M tokens by request rate")
    from sim.report.html import Plot

    plot = Plot.of("breakeven.png", "break-even", "", result.plot())
    write_files(out, {"breakeven.csv": table.to_csv(index=False).encode(),
                      "breakeven.png": plot.png})
    if result.rps is None:
        print(f"no break-even between {table['rps'].min():.3g} and {table['rps'].max():.3g} req/s")
    else:
        print(f"break-even: on-demand is cheaper per token above ≈ {result.rps:.3g} req/s")
    print(f"plot and table written to {out}/")
    return 0


def _validate(args: argparse.Namespace) -> int:
    import sim
    from sim.workload import read_trace

    path = Path(args.file)
    if path.suffix in (".csv", ".jsonl"):
        work = read_trace(path)
        print(f"{path}: valid trace, {len(work)} requests")
        return 0
    from sim.sweep import is_sweep_file, load_sweep

    if is_sweep_file(path):
        plan = load_sweep(path)
        print(f"{path}: valid sweep '{plan.name}': {len(plan.points)} points × "
              f"{len(plan.seeds)} seeds = {len(plan.runs)} runs")
        return 0
    loaded = sim.load_scenario(path)
    n = len(loaded.spec.deployments)
    print(f"{path}: valid scenario '{loaded.spec.name}' ({n} deployment{'s' * (n != 1)})")
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
