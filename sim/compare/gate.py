"""``capsim compare BASE NEW``: KPI changes over seeds, and a regression verdict for CI.

For every grid point (run id) of every scenario, and every gated KPI of the
``total`` (and of each deployment when there are several):

* the mean over seeds on each side;
* the change — the relative change of the geometric means for positive KPIs
  with a relative tolerance (latencies and costs vary by factors), else the
  difference of the means — with its confidence interval: paired t when both
  sides ran the same seeds (same seed, same traffic), Welch's t otherwise
  (see :mod:`sim.compare.stats`);
* a verdict: **regression** when the KPI got worse by more than its
  tolerance *and* the interval lies entirely on the worse side of zero.

See ``docs/ci.md`` for the rules, the defaults and an example CI workflow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.compare.schema import read_summary, read_sweep_manifest
from sim.compare.stats import Delta, paired, welch
from sim.errors import InputError
from sim.metrics.kpis import KPI_KEYS, KPIS

# +1: higher is worse; −1: higher is better; 0: no direction (reported, never gated).
DIRECTION: dict[str, int] = {k.key: k.direction for k in KPIS if not k.total_only}


@dataclass(frozen=True)
class Tolerance:
    """How much worse a KPI may get: a fraction of the BASE mean, or an absolute amount."""

    value: float
    relative: bool

    def absolute(self, base_mean: float) -> float:
        return self.value * abs(base_mean) if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"


def _tolerance(text: str) -> Tolerance:
    """``"10%"`` (relative) or ``"0.01"`` (absolute)."""
    if text.endswith("%"):
        return Tolerance(float(text[:-1]) / 100, True)
    return Tolerance(float(text), False)


# Gated by default: the KPIs the registry gives a tolerance (latency tails, errors,
# SLO attainment and cost).
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    k.key: _tolerance(k.tolerance) for k in KPIS if k.tolerance is not None and not k.total_only
}


def parse_tolerance(text: str) -> tuple[str, Tolerance | None]:
    """``ttft_p99_s=5%`` (relative), ``slo_attainment=0.02`` (absolute), ``cost_usd=off``."""
    if "=" not in text:
        raise InputError(f"--tolerance needs metric=value, e.g. ttft_p99_s=5% (got {text!r})")
    metric, raw = (part.strip() for part in text.split("=", 1))
    if metric not in DIRECTION:
        raise InputError(f"--tolerance: unknown metric {metric!r} "
                         f"(known: {', '.join(KPI_KEYS)})")
    if DIRECTION[metric] == 0:
        raise InputError(f"--tolerance: {metric} has no better or worse direction; "
                         "it is reported, not gated")
    if raw.lower() in ("off", "none"):
        return metric, None
    relative = raw.endswith("%")
    try:
        value = float(raw[:-1] if relative else raw)
    except ValueError:
        raise InputError(f"--tolerance {metric}: not a number or percentage: {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"--tolerance {metric}: must be a non-negative number (got {raw!r})")
    return metric, Tolerance(value / 100 if relative else value, relative)


def tolerances(overrides: Iterable[str] = ()) -> dict[str, Tolerance]:
    """The default tolerances with ``--tolerance`` items applied (``off`` removes one)."""
    out: dict[str, Tolerance] = dict(DEFAULT_TOLERANCES)
    for item in overrides:
        metric, tol = parse_tolerance(item)
        if tol is None:
            out.pop(metric, None)
        else:
            out[metric] = tol
    return out


# ---------------------------------------------------------------------------------------
# Reading result directories


@dataclass
class ResultSet:
    """The runs of one scenario in one result directory: run id -> seed -> summary."""

    path: Path
    name: str
    runs: dict[str, dict[int, dict[str, Any]]]


def _single(path: Path) -> ResultSet:
    summary = read_summary(path / "summary.json")
    rid = str(summary.get("run_id", "base"))
    return ResultSet(path, str(summary["name"]), {rid: {int(summary["seed"]): summary}})


def _sweep(path: Path) -> ResultSet:
    from sim.sweep.store import run_dir

    manifest = read_sweep_manifest(path / "sweep.json")
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    for entry in manifest["runs"]:
        rid = str(entry["run_id"])
        runs[rid] = {}
        for seed in manifest["seeds"]:
            file = run_dir(path, rid, int(seed)) / "summary.json"
            if not file.is_file():
                raise InputError(f"run {rid} seed={seed} has no results "
                                 "(it failed or has not run yet)", file=str(path))
            summary = read_summary(file)
            if summary["seed"] != seed or str(summary.get("run_id", rid)) != rid:
                raise InputError(f"{rid}/seed={seed}/summary.json holds run "
                                 f"{summary.get('run_id')} seed={summary['seed']}",
                                 file=str(path))
            runs[rid][int(seed)] = summary
    return ResultSet(path, str(manifest["name"]), runs)


def _is_result(path: Path) -> bool:
    return (path / "sweep.json").is_file() or (path / "summary.json").is_file()


def load_results(path: str | Path) -> dict[str, ResultSet]:
    """A sweep directory, a ``capsim run`` directory, or a folder of either (a suite,
    such as ``capsim baseline``'s) → results by scenario folder (``""`` when not a suite)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such results directory", file=str(path))
    if (path / "sweep.json").is_file():
        return {"": _sweep(path)}
    if (path / "summary.json").is_file():
        return {"": _single(path)}
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and _is_result(p))
    if not subdirs:
        raise InputError("not a capsim result directory (no sweep.json or summary.json, "
                         "here or one level down)", file=str(path))
    return {p.name: (_sweep(p) if (p / "sweep.json").is_file() else _single(p))
            for p in subdirs}


# ---------------------------------------------------------------------------------------
# What makes two result sets comparable


def question(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved scenario that defines the question, which a change under
    test must not alter: horizon, warm-up, SLO, and each deployment's name, model and
    traffic.  Everything else — shapes, policies, replicas, regions, queues, clients,
    prices, seeds — may differ between BASE and NEW."""
    return {
        "duration": scenario.get("duration"),
        "warmup": scenario.get("warmup"),
        "slo": scenario.get("slo"),
        "deployments": [
            {"name": d.get("name"), "model": d.get("model"), "traffic": d.get("traffic")}
            for d in scenario.get("deployments", [])
        ],
    }


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return sub
            found = _first_difference(a[key], b[key], sub)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where} (length {len(a)} vs {len(b)})"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else (where or "value")


def check_comparable(base: ResultSet, new: ResultSet) -> None:
    """Refuse (InputError → exit 2) to compare results of different scenarios."""
    if base.name != new.name:
        raise InputError(f"BASE and NEW are results of different scenarios "
                         f"({base.name!r} in {base.path}, {new.name!r} in {new.path})")
    b_ids, n_ids = set(base.runs), set(new.runs)
    if b_ids != n_ids:
        only_b, only_n = sorted(b_ids - n_ids), sorted(n_ids - b_ids)
        detail = "; ".join(
            part for part in (
                f"only in BASE: {', '.join(only_b[:3])}" if only_b else "",
                f"only in NEW: {', '.join(only_n[:3])}" if only_n else "",
            ) if part
        )
        raise InputError(f"scenario {base.name!r}: BASE and NEW ran different sweep points "
                         f"({detail})")
    for rid in sorted(b_ids):
        b = question(next(iter(base.runs[rid].values()))["scenario"])
        n = question(next(iter(new.runs[rid].values()))["scenario"])
        diff = _first_difference(b, n)
        if diff:
            raise InputError(f"scenario {base.name!r}, run {rid}: BASE and NEW differ in "
                             f"{diff}, which defines the question (traffic, horizon, SLO); "
                             "only what is under test may change")
        if sorted(base.runs[rid]) == sorted(new.runs[rid]):  # paired: same traffic?
            for seed in sorted(base.runs[rid]):
                _check_same_traffic(base, new, rid, seed)


def _check_same_traffic(base: ResultSet, new: ResultSet, rid: str, seed: int) -> None:
    """Paired tests assume that a seed generates the same requests on both sides: the
    summaries' traffic fingerprints (sim.workload.fingerprint) must be equal."""
    where = f"scenario {base.name!r}, run {rid} seed={seed}"
    fps = []
    for side, rs in (("BASE", base), ("NEW", new)):
        fp = rs.runs[rid][seed].get("traffic_fingerprint")
        if not isinstance(fp, dict) or not fp:
            raise InputError(f"{where}: {side} ({rs.path}) has no traffic fingerprint "
                             "(written by an older capsim), so whether both sides simulated "
                             "the same requests is unknown; regenerate it (capsim baseline)")
        fps.append(fp)
    b, n = fps
    for dep in sorted(set(b) | set(n)):
        if b.get(dep) != n.get(dep):
            raise InputError(f"{where}: BASE and NEW simulated different traffic for "
                             f"deployment {dep!r} (fingerprint {b.get(dep)} vs {n.get(dep)}): "
                             "the code now generates other requests for the same seed, so "
                             "the runs cannot be paired; regenerate BASE (capsim baseline)")


# ---------------------------------------------------------------------------------------
# The comparison


@dataclass(frozen=True)
class Row:
    scenario: str
    run_id: str
    scope: str  # "total" or a deployment name
    metric: str
    delta: Delta | None
    tolerance: Tolerance | None
    verdict: str  # regression | worse (n.s.) | better | ok | n/a | —

    @property
    def regression(self) -> bool:
        return self.verdict == "regression"


@dataclass
class Comparison:
    base: str
    new: str
    confidence: float
    rows: list[Row] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def use_ratio(values: list[float], tol: Tolerance | None) -> bool:
    """Relative tolerances compare on the ratio scale, when every value is positive."""
    return (tol is None or tol.relative) and min(values) > 0


def verdict(metric: str, delta: Delta, tol: Tolerance | None) -> str:
    """Regression: worse beyond the tolerance, and the whole interval on the worse side.

    On the ratio scale the effect and the tolerance are both relative (``+0.12`` is
    12 % worse for a higher-is-worse metric, ``−0.12`` for a higher-is-better one).
    """
    if tol is None:
        return "—"
    sign = DIRECTION[metric]
    worse = sign * delta.estimate
    limit = tol.value if delta.scale == "ratio" else tol.absolute(delta.base_mean)
    if delta.has_interval:
        assert delta.low is not None and delta.high is not None
        lo, hi = sorted((sign * delta.low, sign * delta.high))
    else:
        lo = hi = worse
    if worse > limit:
        return "regression" if lo > 0 else "worse (n.s.)"
    if worse < -limit and hi < 0:
        return "better"
    return "ok"


def _values(runs: Mapping[int, dict[str, Any]], seeds: Sequence[int], scope: str,
            metric: str) -> list[float] | None:
    out = []
    for seed in seeds:
        summary = runs[seed]
        block = summary["total"] if scope == "total" else summary["deployments"].get(scope, {})
        value = block.get(metric)
        if value is None or isinstance(value, bool):
            return None
        out.append(float(value))
    return out


def compare_sets(
    base: ResultSet,
    new: ResultSet,
    tols: Mapping[str, Tolerance],
    *,
    confidence: float = 0.95,
    all_metrics: bool = False,
    label: str | None = None,
) -> list[Row]:
    check_comparable(base, new)
    metrics = list(KPI_KEYS) if all_metrics else [k for k in KPI_KEYS if k in tols]
    rows: list[Row] = []
    for rid in base.runs:
        b_runs, n_runs = base.runs[rid], new.runs[rid]
        b_seeds, n_seeds = sorted(b_runs), sorted(n_runs)
        same_seeds = b_seeds == n_seeds
        deployments = list(next(iter(b_runs.values()))["deployments"])
        scopes = ["total", *deployments] if len(deployments) > 1 else ["total"]
        for scope in scopes:
            for metric in metrics:
                tol = tols.get(metric)
                bv = _values(b_runs, b_seeds, scope, metric)
                nv = _values(n_runs, n_seeds, scope, metric)
                if bv is None or nv is None:
                    rows.append(Row(label or base.name, rid, scope, metric, None, tol, "n/a"))
                    continue
                log = use_ratio(bv + nv, tol)
                delta = (paired(bv, nv, confidence, log) if same_seeds
                         else welch(bv, nv, confidence, log))
                rows.append(Row(label or base.name, rid, scope, metric, delta, tol,
                                verdict(metric, delta, tol)))
    return rows


def compare(
    base: str | Path,
    new: str | Path,
    *,
    tolerance: Iterable[str] = (),
    confidence: float = 0.95,
    all_metrics: bool = False,
) -> Comparison:
    """Compare two result directories (sweeps, single runs, or suites of either)."""
    if not 0.5 <= confidence < 1.0:
        raise InputError(f"--confidence must be in [0.5, 1) (got {confidence})")
    tols = tolerances(tolerance)
    b_sets, n_sets = load_results(base), load_results(new)
    if set(b_sets) != set(n_sets):
        only_b = sorted(set(b_sets) - set(n_sets))
        only_n = sorted(set(n_sets) - set(b_sets))
        what = "; ".join(p for p in (
            f"only in BASE: {', '.join(only_b) or '(a single result)'}" if only_b else "",
            f"only in NEW: {', '.join(only_n) or '(a single result)'}" if only_n else "",
        ) if p)
        raise InputError(f"BASE and NEW hold different scenarios ({what})")
    result = Comparison(str(base), str(new), confidence)
    for key in sorted(b_sets):
        result.rows += compare_sets(b_sets[key], n_sets[key], tols, confidence=confidence,
                                    all_metrics=all_metrics)
    return result


# ---------------------------------------------------------------------------------------
# Markdown


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _signed(x: float, ratio: bool) -> str:
    if ratio:
        return f"{x * 100:+.1f} %"
    return "0" if x == 0 else f"{x:+.4g}"


def markdown(result: Comparison) -> str:
    pct = f"{result.confidence * 100:g} %"
    lines = [
        "### capsim compare",
        "",
        f"BASE `{result.base}` → NEW `{result.new}`. Means over seeds. *change*: relative "
        "change of the geometric means (%) for positive metrics with a relative tolerance, "
        f"else the difference of the means; with its {pct} confidence interval (paired t "
        "on common seeds, else Welch t). A regression is worse than BASE by more than "
        "the tolerance, with the whole interval on the worse side.",
        "",
        f"| scenario | run | scope | metric | BASE | NEW | change | {pct} CI "
        "| tolerance | test | verdict |",
        "|---|---|---|---|--:|--:|--:|:-:|--:|---|---|",
    ]
    for row in result.rows:
        d = row.delta
        verdict_cell = "**REGRESSION**" if row.regression else row.verdict
        tol = str(row.tolerance) if row.tolerance is not None else "—"
        if d is None:
            lines.append(f"| {row.scenario} | {row.run_id} | {row.scope} | {row.metric} "
                         f"| — | — | — | — | {tol} | — | {verdict_cell} |")
            continue
        ratio = d.scale == "ratio"
        ci = (f"[{_signed(d.low, ratio)}, {_signed(d.high, ratio)}]"
              if d.low is not None and d.high is not None else "—")
        lines.append(
            f"| {row.scenario} | {row.run_id} | {row.scope} | {row.metric} "
            f"| {_num(d.base_mean)} | {_num(d.new_mean)} | {_signed(d.estimate, ratio)} "
            f"| {ci} | {tol} | {d.method} | {verdict_cell} |"
        )
    lines.append("")
    n = len(result.regressions)
    if n:
        lines.append(f"**{n} regression{'s' * (n != 1)} beyond tolerance** — exit 1.")
    else:
        lines.append("No regression beyond tolerance — exit 0.")
    return "\n".join(lines) + "\n"
