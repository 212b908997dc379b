"""A self-contained ``report.html``: summary tables, plots (embedded PNG), the scenario."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from sim import plot
from sim.metrics.summary import KPI_KEYS
from sim.results import Result


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def figures(result: Result) -> dict[str, bytes]:
    """The report's plots as PNG bytes, by file name."""
    out = {}
    if not result.timeline.empty:
        out["timeline.png"] = _png(plot.timeline(result))
    if (result.requests["status"] == "ok").any():
        out["ttft_cdf.png"] = _png(plot.latency_cdf([result], "ttft_s"))
        out["e2e_cdf.png"] = _png(plot.latency_cdf([result], "e2e_s"))
    return out


def write_report(result: Result, folder: Path) -> None:
    """Write the plots as PNG files and ``report.html`` embedding them into ``folder``."""
    pngs = figures(result)
    for name, data in pngs.items():
        (folder / name).write_bytes(data)
    s = result.summary
    table = pd.DataFrame(
        {name: [kpis.get(k) for k in KPI_KEYS] for name, kpis in s["deployments"].items()}
        | {"total": [s["total"].get(k) for k in KPI_KEYS]},
        index=list(KPI_KEYS),
    )
    images = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}"></figure>'
        for name, data in pngs.items()
    )
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>capsim report — {html.escape(str(s["name"]))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ padding: 2px 10px; border-bottom: 1px solid #ddd; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }} img {{ max-width: 100%; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(str(s["name"]))}</h1>
<p>seed {s["seed"]} · {s["simulated_s"] / 3600:.2f} h simulated in {s["wall_s"]:.1f} s ·
capsim {html.escape(str(s["capsim_version"]))}</p>
<h2>Summary</h2>
{table.to_html(na_rep="—", float_format=lambda v: f"{v:,.4g}")}
<h2>Plots</h2>
{images}
<h2>Scenario (resolved, defaults included)</h2>
<pre>{html.escape(json.dumps(s["scenario"], indent=2))}</pre>
</body></html>
"""
    (folder / "report.html").write_text(doc)
