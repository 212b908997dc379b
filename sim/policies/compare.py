"""The policy comparison of ``docs/policies.md``: every scenario of
``scenarios/policies/`` (one per policy, the same deployment and traffic) run
with seeds 1 … N (the same N seeds, hence the same requests, for every
policy), summarised as one Markdown table of means over the seeds.

    python -m sim.policies.compare            # print the table
    python -m sim.policies.compare --write    # put it into docs/policies.md
    python -m sim.policies.compare --check    # exit 1 if the doc's table is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Repository tooling: paths are relative to the current folder (a checkout); pass others.
SCENARIOS = Path("scenarios") / "policies"
DOC = Path("docs") / "policies.md"
BEGIN = "<!-- BEGIN policy comparison: python -m sim.policies.compare --write -->"
END = "<!-- END policy comparison -->"
#: table order: the baseline, the provider's default, then the replicas of other systems
ORDER = ("static", "fireworks", "hpa", "keda", "kpa", "ray_serve", "target_tracking",
         "scheduled", "predictive")
SEEDS = 5
COLUMNS = ("policy", "p99 user TTFT (s)", "p99 user TTFT range (s)", "SLO attainment",
           "503s", "cold starts", "GPU-hours", "cost (USD)", "mean ready replicas", "max ready")


def scenario_files(folder: Path = SCENARIOS) -> list[Path]:
    """The comparison's scenarios, in table order (others after, by name)."""
    files = {p.stem: p for p in folder.glob("*.yaml")}
    known = [files.pop(name) for name in ORDER if name in files]
    return known + [files[name] for name in sorted(files)]


def row(path: Path, seeds: Sequence[int], overrides: dict[str, Any] | None = None) -> list[str]:
    """One table row: the runs of ``path`` with each seed, summarised (means; the
    range of p99 TTFT; the highest replica count)."""
    import sim

    totals = []
    policy = ""
    for seed in seeds:
        res = sim.run(str(path), overrides={**(overrides or {}), "seed": seed})
        totals.append(res.summary["total"])
        policy = res.summary["scenario"]["deployments"][0]["autoscaler"]["policy"]

    def mean(key: str) -> float:
        return sum(float(t[key]) for t in totals) / len(totals)

    # TTFT as users see it: from the first attempt, 503 backoff and cold starts included
    ttft = [float(t["user_ttft_p99_s"]) for t in totals]
    slo = (f"{mean('slo_attainment'):.3f}"
           if all(t["slo_attainment"] is not None for t in totals) else "—")
    return [
        f"`{policy}`",
        f"{mean('user_ttft_p99_s'):.2f}",
        f"{min(ttft):.2f}–{max(ttft):.2f}",
        slo,
        f"{mean('http_503'):,.0f}",
        f"{mean('cold_starts'):,.0f}",
        f"{mean('gpu_seconds') / 3600:.2f}",
        f"{mean('cost_usd'):.2f}",
        f"{mean('mean_ready_replicas'):.2f}",
        f"{max(int(t['max_ready_replicas']) for t in totals)}",
    ]


def table(files: Sequence[Path], seeds: Sequence[int] = tuple(range(1, SEEDS + 1)),
          overrides: dict[str, Any] | None = None) -> str:
    """The comparison as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"]
    for path in files:
        lines.append("| " + " | ".join(row(path, seeds, overrides)) + " |")
    return "\n".join(lines) + "\n"


def splice(doc: str, body: str) -> str:
    """``doc`` with the text between the markers replaced by ``body``."""
    if BEGIN not in doc or END not in doc:
        raise ValueError(f"the doc has no {BEGIN!r} … {END!r} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.policies.compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if {DOC.name}'s table is not current")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--scenarios", type=Path, default=SCENARIOS)
    parser.add_argument("--seeds", type=int, default=SEEDS,
                        help=f"seeds 1 … N per policy (the doc: {SEEDS})")
    parser.add_argument("--duration", default=None, help="override every run's duration")
    args = parser.parse_args(argv)
    if (args.seeds != SEEDS or args.duration) and (args.write or args.check):
        parser.error("--seeds and --duration are for exploring; the doc's table uses the "
                     "defaults")
    overrides = {"duration": args.duration} if args.duration else None
    body = table(scenario_files(args.scenarios), range(1, args.seeds + 1), overrides)
    if not (args.write or args.check):
        sys.stdout.write(body)
        return 0
    doc = args.doc.read_text(encoding="utf-8")
    new = splice(doc, body)
    if args.check:
        if new != doc:
            sys.stderr.write(f"{args.doc} is stale: run python -m sim.policies.compare --write\n")
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
