"""Self-contained HTML reports: tables with units, every plot embedded, the scenario.

Two entry points, each as a string (``render_*``) or written into a folder
(``write_*``, which also writes every plot as a PNG file beside the report):

* :func:`render_report` / :func:`write_report` — one :class:`~sim.results.Result`
  (``capsim run``): findings in words, the summary per deployment and in
  total, the timeline, GPU allocation, latency CDFs, cost breakdown, billing
  and the resolved scenario.
* :func:`render_sweep_report` / :func:`write_sweep_report` — a sweep's summary
  table, one row per run (``capsim sweep``): cost per 1M tokens against p99
  TTFT, the runs averaged over seeds per combination of the sweep axes, every
  run, and the sweep file.

Images are PNG data URIs, so the file can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from matplotlib.figure import Figure

from sim import plot
from sim.metrics.kpis import KPI_KEYS
from sim.report.format import KPI_GROUPS, findings, format_kpi, format_value, has_slo, kpi_label
from sim.results import Result

__all__ = [
    "Plot",
    "render_report",
    "render_sweep_report",
    "report_plots",
    "sweep_axes",
    "sweep_plots",
    "write_report",
    "write_sweep_report",
]

PNG_DPI = 100


@dataclass(frozen=True)
class Plot:
    """One plot of a report: its PNG file name, heading, section and image bytes."""

    file: str
    title: str
    section: str
    png: bytes

    @classmethod
    def of(cls, file: str, title: str, section: str, fig: Figure) -> Plot:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=PNG_DPI)
        return cls(file, title, section, buf.getvalue())

    def img(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return (f'<figure><img alt="{_e(self.title)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_e(self.title)}</figcaption></figure>")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- one run


def report_plots(result: Result) -> list[Plot]:
    """The plots of a one-run report; those without data to show are left out."""
    plots = []
    if not result.timeline.empty:
        plots.append(Plot.of("timeline.png", "Load and capacity over time", "load",
                             plot.timeline(result)))
    alloc = getattr(result, "allocation", None)
    has_alloc = isinstance(alloc, pd.DataFrame) and not alloc.empty
    if has_alloc or "gpus_allocated" in result.timeline.columns:
        plots.append(Plot.of("gpu_allocation.png", "GPUs allocated per datacenter and type",
                             "load", plot.gpu_allocation(result)))
    reqs = result.request_rows
    if not reqs.empty and bool((reqs["status"] == "ok").any()):
        for metric, name in (("ttft_s", "Time to first token"), ("tpot_s", "Time per output "
                             "token"), ("e2e_s", "End-to-end latency")):
            plots.append(Plot.of(f"{metric.removesuffix('_s')}_cdf.png", f"{name}: CDF",
                                 "latency", plot.latency_cdf(result, metric)))
    if not result.billing.empty:
        plots.append(Plot.of("cost_breakdown.png", "Cost breakdown", "cost",
                             plot.cost_breakdown(result)))
    return plots


def _summary_table(summary: Mapping[str, Any]) -> str:
    deployments: Mapping[str, Mapping[str, Any]] = summary.get("deployments") or {}
    total: Mapping[str, Any] = summary.get("total") or {}
    columns = [*deployments, "total"] if len(deployments) != 1 else ["total"]
    blocks = {**deployments, "total": total}
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    # no objective: SLO attainment is not shown
    known: set[str] = set() if has_slo(summary) else {"slo_attainment"}
    groups = list(KPI_GROUPS)
    extra = tuple(k for k in [*KPI_KEYS, *total] if k not in
                  {key for _, keys in KPI_GROUPS for key in keys}
                  and not isinstance(total.get(k), dict))
    if extra:
        groups.append(("Other", tuple(dict.fromkeys(extra))))
    for title, keys in groups:
        rows = [k for k in keys if k in total and k not in known]
        if not rows:
            continue
        body.append(f'<tr class="group"><th colspan="{len(columns) + 1}">{_e(title)}</th></tr>')
        for key in rows:
            known.add(key)
            cells = "".join(f"<td>{_e(format_kpi(key, blocks[c].get(key)))}</td>"
                            for c in columns)
            body.append(f'<tr><th scope="row" title="{_e(key)}">{_e(kpi_label(key))}</th>'
                        f"{cells}</tr>")
    caption = ("one deployment: its numbers are the total" if len(deployments) == 1
               else "per deployment and in total")
    return (f'<table class="kpi"><caption>{_e(caption)}</caption><thead><tr><th></th>{head}'
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _cards(summary: Mapping[str, Any]) -> str:
    t = summary.get("total") or {}
    keys = ("requests", "slo_attainment", "user_ttft_p99_s", "tpot_p99_s", "cost_usd",
            "cost_per_million_tokens_usd", "serverless_cost_usd")
    # a card shows what was measured: no SLO attainment without an objective
    skip = set() if has_slo(summary) else {"slo_attainment"}
    cards = [f'<div class="card"><div class="value">{_e(format_kpi(k, t.get(k)))}</div>'
             f'<div class="label">{_e(kpi_label(k))}</div></div>'
             for k in keys if t.get(k) is not None and k not in skip]
    return f'<div class="cards">{"".join(cards)}</div>'


def _billing_table(billing: pd.DataFrame) -> str:
    if billing.empty:
        return "<p>No billed GPU time.</p>"
    keys = [c for c in ("kind", "deployment", "datacenter", "accelerator")
            if c in billing.columns]
    bill = billing.copy()
    if "gpu_seconds" not in bill.columns:
        bill["gpu_seconds"] = bill["gpus"] * bill["seconds"]
    for key in keys:
        bill[key] = bill[key].astype("string").fillna("").replace("", "—")
    grouped = (bill.groupby(keys, observed=True, sort=True)
               .agg(lines=("cost_usd", "size"), gpu_seconds=("gpu_seconds", "sum"),
                    usd_per_gpu_hour=("usd_per_gpu_hour", "mean"), cost_usd=("cost_usd", "sum"))
               .reset_index())
    head = [*keys, "replica intervals", "GPU time", "USD per GPU-hour", "cost"]
    rows = []
    for rec in grouped.to_dict("records"):
        cells = [_e(rec[k]) for k in keys] + [
            _e(f"{int(rec['lines']):,}"), _e(format_value(rec["gpu_seconds"], "gpu_hours")),
            _e(format_value(rec["usd_per_gpu_hour"], "usd")),
            _e(format_value(rec["cost_usd"], "usd")),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f'<table class="data"><thead><tr>{"".join(f"<th>{_e(h)}</th>" for h in head)}'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>")


_SECTIONS = (
    ("load", "Load and capacity"),
    ("latency", "Latency"),
    ("cost", "Cost"),
)


def render_report(result: Result, plots: Sequence[Plot] | None = None) -> str:
    """``report.html`` of one run, as a string (``plots``: :func:`report_plots`)."""
    if plots is None:
        plots = report_plots(result)
    s = result.summary
    name = str(s.get("name", "run"))
    def unbroken(text: str) -> str:  # a number stays on the line of its unit
        return _e(text).replace(" ", "&nbsp;")

    meta = (f"seed&nbsp;{_e(s.get('seed'))} · "
            f"{unbroken(format_value(s.get('simulated_s'), 'seconds'))} "
            f"simulated in {unbroken(format_value(s.get('wall_s'), 'seconds'))} · "
            f"capsim&nbsp;{_e(s.get('capsim_version'))}")
    sections = [
        ("findings", "Findings",
         _cards(s) + "<ul class=\"findings\">"
         + "".join(f"<li>{_e(x)}</li>" for x in findings(s)) + "</ul>"),
        ("summary", "Summary", _summary_table(s)),
    ]
    for key, title in _SECTIONS:
        body = "".join(p.img() for p in plots if p.section == key)
        if key == "cost":
            body += "<h3>Billing lines</h3>" + _billing_table(result.billing)
        if body:
            sections.append((key, title, body))
    scenario = result.scenario or s.get("scenario") or {}
    sections.append(("scenario", "Scenario (resolved, defaults included)",
                     f"<pre>{_e(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))}"
                     "</pre>"))
    return _page(f"capsim report — {name}", name, meta, sections)


def write_report(result: Result, folder: str | Path) -> Path:
    """Write every plot as PNG and ``report.html`` into ``folder``; return the report's path."""
    folder = Path(folder)
    plots = report_plots(result)
    for p in plots:
        (folder / p.file).write_bytes(p.png)
    path = folder / "report.html"
    path.write_text(render_report(result, plots), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- sweeps

# Columns of a sweep's summary table (sim.sweep.store.summary_table) that are
# neither axes nor KPIs.
SWEEP_META = ("run_id", "seed", "status", "error", "wall_s", "simulated_s")


def _kpi_of(column: str) -> str | None:
    """The summary key a sweep column holds in total (``total.cost_usd`` or ``cost_usd``)."""
    if column.startswith("total."):
        return column.removeprefix("total.")
    return column if column in KPI_KEYS else None


def sweep_axes(table: pd.DataFrame) -> list[str]:
    """The axis columns of a sweep table: neither run metadata nor a KPI."""
    return [c for c in table.columns
            if c not in SWEEP_META and _kpi_of(c) is None and not c.startswith("deployments.")]


def _totals(table: pd.DataFrame) -> pd.DataFrame:
    """Runs that finished, with their total KPIs under the plain key names."""
    if "status" in table.columns:
        table = table[table["status"].astype(str) == "ok"]
    keep = {c: _kpi_of(c) for c in table.columns if _kpi_of(c) is not None}
    kpis = table[list(keep)].rename(columns=keep)
    kpis = kpis.loc[:, ~kpis.columns.duplicated()]
    rest = table[[c for c in table.columns if c not in keep]]
    return pd.concat([rest, kpis], axis=1)


def _point_labels(table: pd.DataFrame, axes: Sequence[str]) -> pd.Series:
    if not axes:
        source = table["run_id"] if "run_id" in table.columns else table.index
        return pd.Series([str(v) for v in source], index=table.index)
    return table[list(axes)].astype(str).agg(" · ".join, axis=1)


def sweep_plots(
    table: pd.DataFrame, axes: Sequence[str] | None = None, slo_s: float | None = None
) -> list[Plot]:
    """The plots of a sweep report: cost per 1M tokens against p99 TTFT, one point per
    combination of the axes (mean over seeds), when the table has both."""
    axes = sweep_axes(table) if axes is None else list(axes)
    runs = _totals(table)
    needed = ["ttft_p99_s", "cost_per_million_tokens_usd"]
    if not set(needed) <= set(runs.columns) or runs[needed].dropna().empty:
        return []
    labelled = runs.assign(label=_point_labels(runs, axes))
    fig = plot.shape_comparison(labelled, label="label", slo_s=slo_s)
    return [Plot.of("cost_vs_ttft.png", "Cost per 1M tokens against p99 TTFT", "frontier", fig)]


def _data_table(table: pd.DataFrame, kpis: Iterable[str]) -> str:
    kpis = set(kpis)
    head = "".join(
        f'<th title="{_e(c)}">{_e(kpi_label(c) if c in kpis else c)}</th>' for c in table.columns
    )
    rows = []
    for rec in table.itertuples(index=False):
        cells = []
        for column, value in zip(table.columns, rec, strict=True):
            text = format_kpi(column, value) if column in kpis else format_value(value, "plain")
            cells.append(f"<td>{_e(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="scroll"><table class="data"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def render_sweep_report(
    table: pd.DataFrame,
    *,
    title: str = "sweep",
    axes: Sequence[str] | None = None,
    scenario: Mapping[str, Any] | None = None,
    slo_s: float | None = None,
    plots: Sequence[Plot] | None = None,
) -> str:
    """``report.html`` of a sweep, as a string.

    ``table`` has one row per run, as ``sim.sweep`` writes it (``run_id``,
    ``seed``, one column per axis, ``status``, ``error``, ``total.<kpi>``,
    ``deployments.<name>.<kpi>``); plain ``<kpi>`` columns work too.  ``axes``
    defaults to every column that is neither run metadata nor a KPI.  Finished
    runs with the same axis values are averaged over seeds; failed ones are
    listed with their error.  ``scenario`` is the sweep file as loaded;
    ``slo_s`` the TTFT objective to draw.  ``plots`` defaults to
    :func:`sweep_plots`; add others with :meth:`Plot.of`.
    """
    axes = sweep_axes(table) if axes is None else list(axes)
    missing = [a for a in axes if a not in table.columns]
    if missing:
        raise ValueError(f"sweep table has no column {', '.join(missing)}")
    if plots is None:
        plots = sweep_plots(table, axes, slo_s)
    runs = _totals(table)
    kpis = [k for k in [*KPI_KEYS, *runs.columns] if k in runs.columns and _kpi_of(k)]
    kpis = list(dict.fromkeys(kpis))
    n_seeds = table["seed"].nunique() if "seed" in table.columns else 1
    meta = f"{len(table):,} runs, {len(runs):,} finished"
    if axes:
        combos = table[axes].drop_duplicates()
        meta += f" · {len(combos):,} combinations of {', '.join(axes)} × {n_seeds} seeds"
    sections = []
    figures = "".join(p.img() for p in plots)
    if figures:
        sections.append(("frontier", "Cost against latency", figures))
    if axes and kpis and not runs.empty:
        groups = runs.groupby(axes, sort=False, observed=True, dropna=False)
        mean = groups[kpis].mean().reset_index()
        mean.insert(len(axes), "runs", groups.size().to_numpy())
        sections.append(("combinations", "Mean over seeds, per combination",
                         _data_table(mean, kpis)))
    shown = [c for c in ("run_id", "seed", *axes, "status") if c in runs.columns]
    sections.append(("runs", "Every finished run (totals)", _data_table(runs[shown + kpis], kpis)))
    if "status" in table.columns:
        failed = table[table["status"].astype(str) != "ok"]
        if not failed.empty:
            cols = [c for c in ("run_id", "seed", *axes, "status", "error") if c in failed.columns]
            sections.append(("failed", "Runs that did not finish", _data_table(failed[cols], ())))
    if scenario:
        sections.append(("scenario", "Sweep file (resolved)",
                         f"<pre>{_e(yaml.safe_dump(dict(scenario), sort_keys=False))}</pre>"))
    return _page(f"capsim sweep — {title}", title, _e(meta), sections)


def write_sweep_report(table: pd.DataFrame, folder: str | Path, **kwargs: Any) -> Path:
    """Write the sweep's plots as PNG and ``report.html`` into ``folder``; return its path.

    Keyword arguments are those of :func:`render_sweep_report`.
    """
    folder = Path(folder)
    plots = kwargs.pop("plots", None)
    if plots is None:
        plots = sweep_plots(table, kwargs.get("axes"), kwargs.get("slo_s"))
    for p in plots:
        (folder / p.file).write_bytes(p.png)
    path = folder / "report.html"
    path.write_text(render_sweep_report(table, plots=plots, **kwargs), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- page

_CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; --accent: #2f6690; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1180px; padding: 1.5em 2em 4em; }
h1 { margin: 0 0 .2em; font-size: 1.9em; }
h2 { margin-top: 2em; padding-bottom: .2em; border-bottom: 2px solid var(--line); }
h3 { margin-top: 1.5em; }
.meta { color: var(--muted); margin: 0; }
nav { margin: 1em 0; display: flex; flex-wrap: wrap; gap: .4em 1.2em; }
nav a { color: var(--accent); text-decoration: none; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(12em, 1fr)); gap: .7em;
         margin: 1em 0; }
.card { background: var(--bg); border: 1px solid var(--line); border-radius: 8px;
        padding: .7em .9em; }
.card .value { font-size: 1.45em; font-weight: 600; font-variant-numeric: tabular-nums;
               white-space: nowrap; }
.card .label { color: var(--muted); font-size: .85em; }
.findings li { margin: .3em 0; }
table { border-collapse: collapse; margin: .5em 0; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .3em; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); }
td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { background: var(--bg); text-align: right; }
tbody th { text-align: left; font-weight: normal; }
tr.group th { text-align: left; font-weight: 600; background: var(--bg); padding-top: .6em; }
table.data td:first-child { text-align: left; }
.scroll { overflow-x: auto; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: .9em; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 1em;
      overflow-x: auto; font-size: .85em; line-height: 1.35; }
"""


def _page(title: str, heading: str, meta: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The HTML page: ``sections`` are (anchor, heading, body HTML); ``meta`` is HTML."""
    nav = "".join(f'<a href="#{_e(a)}">{_e(h)}</a>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{_e(a)}"><h2>{_e(h)}</h2>\n{b}\n</section>'
                     for a, h, b in sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{_CSS}</style></head><body>
<header><h1>{_e(heading)}</h1><p class="meta">{meta}</p></header>
<nav>{nav}</nav>
{body}
</body></html>
"""
