"""The policy comparison of ``docs/policies.md``: every scenario of
``scenarios/policies/`` (one per policy, the same deployment and traffic) run
once, summarised as one Markdown table.

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

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios" / "policies"
DOC = ROOT / "docs" / "policies.md"
BEGIN = "<!-- BEGIN policy comparison: python -m sim.policies.compare --write -->"
END = "<!-- END policy comparison -->"
#: table order: the baseline, the provider's default, then the replicas of other systems
ORDER = ("static", "fireworks", "hpa", "keda", "kpa", "ray_serve", "target_tracking",
         "scheduled", "predictive")
COLUMNS = ("policy", "p99 TTFT (s)", "SLO attainment", "503s", "GPU-hours", "cost (USD)",
           "mean ready replicas", "max ready")


def scenario_files(folder: Path = SCENARIOS) -> list[Path]:
    """The comparison's scenarios, in table order (others after, by name)."""
    files = {p.stem: p for p in folder.glob("*.yaml")}
    known = [files.pop(name) for name in ORDER if name in files]
    return known + [files[name] for name in sorted(files)]


def row(path: Path, overrides: dict[str, Any] | None = None) -> list[str]:
    """One table row: the run of ``path``, summarised."""
    import sim

    res = sim.run(str(path), overrides=overrides)
    total = res.summary["total"]
    policy = res.summary["scenario"]["deployments"][0]["autoscaler"]["policy"]
    return [
        f"`{policy}`",
        f"{total['ttft_p99_s']:.2f}",
        f"{total['slo_attainment']:.3f}",
        f"{total['http_503']:,}",
        f"{total['gpu_seconds'] / 3600:.2f}",
        f"{total['cost_usd']:.2f}",
        f"{total['mean_ready_replicas']:.2f}",
        f"{total['max_ready_replicas']}",
    ]


def table(files: Sequence[Path], overrides: dict[str, Any] | None = None) -> str:
    """The comparison as a Markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"]
    for path in files:
        lines.append("| " + " | ".join(row(path, overrides)) + " |")
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
    args = parser.parse_args(argv)
    body = table(scenario_files(args.scenarios))
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
