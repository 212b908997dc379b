"""``capsim plan``: parser and handler, wired in by ``sim.cli``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.sweep.commands import executor_args, executor_from


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="find the cheapest configuration that holds the SLO (a scenario with plan:)",
        description=(
            "Search the shapes, replica counts, policies and regions a scenario's plan: "
            "section allows: analytic pruning from the throughput model, then simulation "
            "(bisection on replica counts, coordinate search over autoscaler bounds and "
            "targets), then confirmation of the best few on fresh seeds. Writes plan.json, "
            "best.yaml, pareto.png and report.html."
        ),
    )
    p.add_argument("scenario", help="scenario YAML with a plan: section")
    p.add_argument("--out", help="results folder (default: results/<scenario name>-plan); "
                                 "a new folder, or one capsim wrote, which it replaces")
    p.add_argument("--force", action="store_true",
                   help="replace --out even if capsim did not write it")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a key first, e.g. --set plan.replicas.max=8 --set duration=10m",
    )
    executor_args(p, progress=False)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from sim.io import check_target
    from sim.plan.output import print_plan, write_plan
    from sim.plan.search import plan
    from sim.scenario.loader import parse_override
    overrides = dict(parse_override(item) for item in args.overrides)
    if args.out:
        check_target(Path(args.out), force=args.force)  # before the search, not after
    executor = executor_from(args)
    result = plan(args.scenario, overrides, executor=executor,
                  progress=lambda line: print(f"  {line}", file=sys.stderr))
    out = Path(args.out) if args.out else Path("results") / f"{result.name}-plan"
    write_plan(result, out, force=args.force)
    print_plan(result)
    print(f"plan written to {out}/")
    return 0
