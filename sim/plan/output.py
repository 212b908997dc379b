"""What a plan writes: ``plan.json``, ``best.yaml``, ``pareto.png``, ``report.html``, and
the terminal's one-line answer with a short table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from matplotlib.figure import Figure
from rich.console import Console
from rich.table import Table

from sim.io.run import json_safe
from sim.plan.search import HOURS_PER_MONTH, Evaluation, PlanResult
from sim.report.format import percent_text, seconds_text, usd_text

_METRICS = ("cost_per_hour", "serverless_per_hour", "ttft_p99_s", "slo_attainment",
            "served_share", "share_503", "tpot_p99_s", "e2e_p99_s", "utilization",
            "mean_ready_replicas")


def _evaluation(e: Evaluation) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for key in _METRICS:
        metrics[key] = e.mean(key)
        ci = e.interval(key)
        if ci is not None:
            metrics[f"{key}_ci95"] = ci
    cost = metrics["cost_per_hour"]
    return {
        "configuration": e.config.as_dict(),
        "label": e.config.describe(),
        "phase": e.phase,
        "seeds": [r.seed for r in e.runs],
        "gpus": e.config.max_replicas * e.gpus_per_replica,
        "cost_usd_per_hour": cost,
        "cost_usd_per_month": None if cost is None else cost * HOURS_PER_MONTH,
        "serverless_usd_per_hour": metrics["serverless_per_hour"],
        "metrics": metrics,
        "feasible": e.feasible,
        "reason": None if e.feasible else "; ".join(dict.fromkeys(e.reasons)),
    }


def plan_document(result: PlanResult) -> dict[str, Any]:
    """``plan.json``: the question, every family's bound, every candidate, the answer."""
    spec = result.plan
    t = result.traffic
    return json_safe({
        "name": result.name,
        "deployment": result.deployment,
        "objective": spec.objective,
        "budget_usd_per_hour": spec.budget_usd_per_hour,
        "slo": result.slo,
        "constraints": spec.constraints.model_dump(),
        "traffic": {"rps": t.rps, "mean_input_tokens": t.mean_input,
                    "mean_output_tokens": t.mean_output, "p99_input_tokens": t.p99_input},
        "search_seed": result.search_seed,
        "confirmation_seeds": result.confirm_seeds,
        "families": [{"family": f.label, **f.bound.as_dict(), "pruned": f.pruned,
                      "search_note": f.note} for f in result.families],
        "candidates": [_evaluation(e) for e in result.evaluations],
        "confirmed": [_evaluation(e) for e in result.confirmed],
        "recommendation": None if result.best is None else _evaluation(result.best),
    })


def answer_line(result: PlanResult) -> str:
    """The answer in one line."""
    best = result.best
    if best is None:
        tried = len(result.evaluations)
        return (f"no configuration holds the SLO on fresh seeds ({tried} candidates simulated, "
                f"{sum(1 for f in result.families if f.pruned)} families dropped analytically)")
    cost = best.mean("cost_per_hour") or 0.0
    ttft = best.mean("ttft_p99_s")
    att = best.mean("slo_attainment")
    line = (f"{best.config.describe()}: {usd_text(cost)}/h ({usd_text(cost * HOURS_PER_MONTH)} "
            f"per 30-day month), p99 TTFT {seconds_text(ttft) if ttft is not None else '—'}, "
            f"SLO attainment {percent_text(att) if att is not None else '—'} on "
            f"{len(best.runs)} fresh seeds")
    serverless = best.mean("serverless_per_hour")
    if serverless is not None:
        line += f"; serverless for the same served tokens: {usd_text(serverless)}/h"
    return line


def _rows(result: PlanResult) -> list[Evaluation]:
    """The table: the confirmed candidates, then each family's cheapest holding one."""
    rows = list(result.confirmed)
    seen = {e.config for e in rows}
    by_family: dict[str, Evaluation] = {}
    for e in result.evaluations:
        if e.feasible and (e.config.family not in by_family
                           or e.score(result.plan.objective)
                           < by_family[e.config.family].score(result.plan.objective)):
            by_family[e.config.family] = e
    rows += [e for e in by_family.values() if e.config not in seen]
    return rows


def _money(value: float | None) -> str:
    return "—" if value is None else usd_text(value)


def print_plan(result: PlanResult, console: Console | None = None) -> None:
    """The answer in one line, then a short table and the families dropped."""
    console = console or Console()
    table = Table(title=f"{result.name}: candidates for {result.deployment}")
    for col in ("candidate", "USD/h", "USD/month", "serverless/h", "p99 TTFT", "SLO", "holds"):
        table.add_column(col, justify="left" if col == "candidate" else "right")
    for e in _rows(result):
        cost, ttft, att = e.mean("cost_per_hour"), e.mean("ttft_p99_s"), e.mean("slo_attainment")
        seeds = f"{len(e.runs)} seed{'s' * (len(e.runs) != 1)}"
        table.add_row(
            e.config.describe(),
            _money(cost), _money(None if cost is None else cost * HOURS_PER_MONTH),
            _money(e.mean("serverless_per_hour")),
            "—" if ttft is None else seconds_text(ttft),
            "—" if att is None else percent_text(att),
            f"{'yes' if e.feasible else 'no'} ({seeds})",
        )
    console.print(f"[bold]answer:[/bold] {answer_line(result)}")
    console.print(table)
    for f in result.families:
        if f.pruned:
            console.print(f"dropped {f.label}: {f.pruned}")
        elif f.note:
            console.print(f"{f.label}: {f.note}")


def _xy(evals: list[Evaluation]) -> tuple[list[float], list[float]]:
    """(p99 TTFT, cost per hour) of evaluations that have both."""
    x = [e.mean("ttft_p99_s") for e in evals]
    y = [e.mean("cost_per_hour") for e in evals]
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def pareto_figure(result: PlanResult) -> Figure:
    """Cost per hour against p99 TTFT of every candidate; those that do not hold marked ×."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    shown = [e for e in result.evaluations
             if e.mean("ttft_p99_s") is not None and e.mean("cost_per_hour") is not None]
    families = list(dict.fromkeys(e.config.family for e in shown))
    colors = plt.get_cmap("tab10")
    for i, fam in enumerate(families):
        color = colors(i % 10)
        for holds, marker, what in ((True, "o", "holds"), (False, "x", "does not hold")):
            pts = [e for e in shown if e.config.family == fam and e.feasible == holds]
            if pts:
                x, y = _xy(pts)
                ax.scatter(x, y, marker=marker, color=color, label=f"{fam} ({what})")
    front: list[Evaluation] = []
    for e in sorted((e for e in shown if e.feasible), key=lambda e: e.score("cost")):
        if not front or _xy([e])[0][0] < _xy([front[-1]])[0][0]:
            front.append(e)
    if len(front) > 1:
        x, y = _xy(front)
        ax.step(x, y, where="post", color="grey", linestyle="--", linewidth=1,
                label="frontier of candidates that hold")
    if result.best is not None and result.best.mean("ttft_p99_s") is not None:
        x, y = _xy([result.best])
        ax.scatter(x, y, marker="*", s=260, facecolor="none", edgecolor="black",
                   label="recommendation (mean over fresh seeds)")
    limit = result.slo.get("ttft_p99")
    if limit is not None:
        ax.axvline(limit, color="red", linestyle=":", label=f"TTFT objective {limit:g} s")
    ax.set_xscale("log")
    ax.set_xlabel("p99 TTFT (s, log scale)")
    ax.set_ylabel("cost (USD per hour)")
    ax.set_title(f"{result.name}: cost against p99 TTFT of every candidate")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def render_html(result: PlanResult, png: bytes) -> str:
    import pandas as pd

    from sim.report.html import Plot, _data_table, _e, _page

    plot = Plot("pareto.png", "Cost per hour against p99 TTFT", "pareto", png)
    doc = plan_document(result)
    rows = []
    for c in doc["candidates"] + doc["confirmed"]:
        m = c["metrics"]
        rows.append({"candidate": c["label"], "phase": c["phase"],
                     "seeds": ", ".join(str(s) for s in c["seeds"]),
                     "USD/h": _money(c["cost_usd_per_hour"]),
                     "USD/month": _money(c["cost_usd_per_month"]),
                     "serverless USD/h (same served tokens)": _money(
                         c["serverless_usd_per_hour"]),
                     "p99 TTFT": "—" if m["ttft_p99_s"] is None else seconds_text(m["ttft_p99_s"]),
                     "SLO attainment": "—" if m["slo_attainment"] is None
                     else percent_text(m["slo_attainment"]),
                     "served": percent_text(m["served_share"]),
                     "holds": "yes" if c["feasible"] else f"no: {c['reason']}"})
    fams = pd.DataFrame([{"family": f["family"], "replica": f["shape"] or "—",
                          "fewest replicas (capacity bound)": f["min_replicas"],
                          "idle TTFT of the p99 prompt": "—" if f["idle_ttft_p99_prompt_s"]
                          is None else seconds_text(f["idle_ttft_p99_prompt_s"]),
                          "outcome": f["pruned"] or f["search_note"] or "searched"}
                         for f in doc["families"]])
    sections = [
        ("answer", "Answer", f"<p>{_e(answer_line(result))}</p>"),
        ("pareto", "Cost against latency", plot.img()),
        ("candidates", "Every candidate simulated", _data_table(pd.DataFrame(rows), ())),
        ("families", "Analytic bounds", _data_table(fams, ())),
    ]
    best = result.best_scenario()
    if best is not None:
        sections.append(("best", "best.yaml", f"<pre>{_e(best_yaml(best))}</pre>"))
    t = result.traffic
    meta = (f"{t.rps:.3g} req/s, {t.mean_input:,.0f} input / {t.mean_output:,.0f} output tokens "
            f"on average · search seed {result.search_seed}, confirmed on seeds "
            f"{', '.join(str(s) for s in result.confirm_seeds)}")
    return _page(f"capsim plan — {result.name}", f"plan: {result.name}", _e(meta), sections)


def best_yaml(scenario: dict[str, Any]) -> str:
    return ("# The recommendation of capsim plan, as a runnable scenario.\n"
            + yaml.safe_dump(scenario, sort_keys=False))


def write_plan(result: PlanResult, out: str | Path, *, force: bool = False) -> None:
    """Write ``plan.json``, ``best.yaml`` (if anything holds), ``pareto.png`` and
    ``report.html`` into ``out``, all or none (``sim.io.write_files``: ``out`` must be
    new or a folder capsim wrote, unless ``force``)."""
    import matplotlib.pyplot as plt

    from sim.io import write_files
    from sim.report.html import Plot

    fig = pareto_figure(result)
    png = Plot.of("pareto.png", "", "", fig).png
    plt.close(fig)
    files = {
        "plan.json": (json.dumps(plan_document(result), indent=2) + "\n").encode(),
        "pareto.png": png,
        "report.html": render_html(result, png).encode(),
    }
    best = result.best_scenario()
    if best is not None:
        files["best.yaml"] = best_yaml(best).encode()
    write_files(Path(out), files, kind="plan", force=force)
