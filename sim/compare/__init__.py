"""``capsim compare``: KPI deltas with confidence intervals over seeds, and a CI gate.

::

    from sim.compare import compare, markdown
    result = compare("scenarios/regression/baseline", "results/new", tolerance=["cost_usd=2%"])
    print(markdown(result)); result.exit_code      # 1 on a significant regression

See ``docs/ci.md``.
"""

from sim.compare.gate import (
    DEFAULT_TOLERANCES,
    DIRECTION,
    Comparison,
    ResultSet,
    Row,
    Tolerance,
    compare,
    load_results,
    markdown,
    parse_tolerance,
    tolerances,
    verdict,
)
from sim.compare.stats import Delta, paired, t_ppf, welch

__all__ = [
    "DEFAULT_TOLERANCES",
    "DIRECTION",
    "Comparison",
    "Delta",
    "ResultSet",
    "Row",
    "Tolerance",
    "compare",
    "load_results",
    "markdown",
    "paired",
    "parse_tolerance",
    "t_ppf",
    "tolerances",
    "verdict",
    "welch",
]
