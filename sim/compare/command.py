"""``capsim compare BASE NEW``: parser and handler, wired in by ``sim.cli``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sim.errors import InputError


def add_parser(sub: Any) -> None:
    c = sub.add_parser(
        "compare",
        help="KPI deltas over seeds between two result directories; exit 1 on a regression",
    )
    c.add_argument("base", help="BASE results: a sweep, a run, or a folder of them (a baseline)")
    c.add_argument("new", help="NEW results, of the same scenarios and sweep points")
    c.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                   help="how much worse a KPI may get: 5%% (of BASE), 0.02 (absolute), "
                        "or off; repeatable (defaults: docs/ci.md)")
    c.add_argument("--confidence", type=float, default=0.95,
                   help="confidence level of the intervals (default 0.95)")
    c.add_argument("--all", dest="all_metrics", action="store_true",
                   help="show every KPI, not only the gated ones")
    c.add_argument("--markdown", metavar="FILE",
                   help="also write the Markdown table to FILE (e.g. $GITHUB_STEP_SUMMARY)")
    c.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from sim.compare.gate import compare, markdown

    result = compare(args.base, args.new, tolerance=args.tolerance,
                     confidence=args.confidence, all_metrics=args.all_metrics)
    text = markdown(result)
    if args.markdown:
        try:
            with Path(args.markdown).open("w") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror}", file=args.markdown) from None
    print(text, end="")
    return result.exit_code
