"""report.html: self-contained, every KPI with its unit, every plot, the scenario; sweeps too."""

from __future__ import annotations

import base64
import html
import re

import pandas as pd
import pytest
import yaml

from sim.metrics.kpis import KPI_KEYS
from sim.report import format as fmt
from sim.report.html import (
    render_report,
    render_sweep_report,
    report_plots,
    sweep_axes,
    sweep_plots,
    write_report,
    write_sweep_report,
)
from tests.report.conftest import handmade

IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)">')


def sweep_table() -> pd.DataFrame:
    """Three shapes × two seeds, in the layout of sim.sweep's summary table, one run failed."""
    rows = []
    for shape, ttft, cost in (("minimal", 4.0, 1.5), ("throughput", 0.9, 1.8), ("fast", 0.3, 3.0)):
        for seed in (1, 2):
            rows.append({"run_id": f"shape={shape}-0000", "seed": seed, "shape": shape,
                         "status": "ok", "error": None, "wall_s": 1.0, "simulated_s": 600.0,
                         "total.requests": 1000 + seed, "total.ttft_p99_s": ttft * (1 + 0.1 * seed),
                         "total.slo_attainment": 0.99, "total.cost_usd": 100 * cost,
                         "total.cost_per_million_tokens_usd": cost + seed / 10,
                         "deployments.chat.cost_usd": 100 * cost})
    rows.append({"run_id": "shape=fast-0000", "seed": 3, "shape": "fast", "status": "failed",
                 "error": "InputError: boom"})
    return pd.DataFrame(rows)


def test_every_kpi_has_a_label_and_unit():
    assert set(KPI_KEYS) <= set(fmt.KPI_DISPLAY)
    grouped = [k for _, keys in fmt.KPI_GROUPS for k in keys]
    assert set(KPI_KEYS) <= set(grouped) <= set(fmt.KPI_DISPLAY)
    assert len(grouped) == len(set(grouped))


@pytest.mark.parametrize(("key", "value", "text"), [
    ("requests", 19366, "19,366"),
    ("ttft_p99_s", 0.30441, "304 ms"),
    ("tpot_p50_s", 0.0123, "12.3 ms"),
    ("e2e_p99_s", 7.788, "7.79 s"),
    ("pending_replica_seconds", 5400.0, "90 min"),
    ("pending_replica_seconds", 36000.0, "10 h"),
    ("slo_attainment", 0.97, "97.0 %"),
    ("slo_attainment", 0.9995, "99.95 %"),
    ("utilization", 1.0, "100.0 %"),
    ("cost_usd", 64.0, "$64.00"),
    ("cost_usd", 123456.7, "$123,457"),
    ("cost_per_million_tokens_usd", 0.0123, "$0.0123"),
    ("gpu_seconds", 28800.0, "8.00 GPU-h"),
    ("mean_ready_replicas", 2.0, "2.00"),
    ("serverless_cost_usd", None, "—"),
    ("ttft_p99_s", float("nan"), "—"),
    ("not_a_kpi", 1.23456, "1.235"),
])
def test_format_kpi(key, value, text):
    assert fmt.format_kpi(key, value) == text


def test_findings_are_computed_from_the_summary():
    res = handmade()
    t = res.summary["total"]
    t |= {"requests": 400, "ok": 380, "failed": 20, "http_503": 60, "http_429": 12,
          "retries": 50, "user_ttft_p99_s": 2.5, "slo_attainment": 0.9, "cost_usd": 10.0,
          "serverless_cost_usd": 40.0, "gpu_seconds": 7200.0, "utilization": 0.5,
          "cost_per_million_tokens_usd": 1.25, "mean_ready_replicas": 1.5,
          "max_ready_replicas": 3, "cold_starts": 2, "pending_replica_seconds": 30.0}
    # it served 95 % and missed its SLO: that comes first, and no saving is claimed
    assert fmt.findings(res.summary) == [
        "The run did not serve its traffic: only 95.0 % of 400 requests finished ok.",
        "The run missed its SLO: 90.0 % of requests met every objective; p99 TTFT 2.5 s "
        "above 2 s.",
        "400 requests: 380 ok (95.0 %), 20 failed; 60 HTTP 503 and 12 HTTP 429 responses, "
        "50 retries.",
        "90.0 % of requests met every objective: p99 TTFT 2.5 s misses its 2 s objective.",
        "Dedicated GPUs cost $10.00 for 2.00 GPU-h at 50.0 % utilization, $1.25 per 1M tokens;"
        " serverless prices for the same requests would be $40.00, but no saving follows from"
        " a run that did not serve its traffic within its SLO.",
        "1.50 replicas ready on average, at most 3; 2 cold starts; replicas waited 30 s in "
        "total for GPUs.",
    ]
    t |= {"ok": 400, "failed": 0, "slo_attainment": 0.995, "user_ttft_p99_s": 0.5}
    lines = fmt.findings(res.summary)
    assert fmt.service_warnings(res.summary) == []
    assert lines[0].startswith("400 requests: 400 ok")
    assert "p99 TTFT 500 ms meets its 2 s objective" in lines[1]
    assert lines[2].endswith("would cost $40.00 — dedicated is 4× cheaper.")
    t |= {"serverless_cost_usd": 5.0}
    assert fmt.findings(res.summary)[2].endswith("would cost $5.00 — serverless would be 2× "
                                                 "cheaper.")
    res.summary["scenario"] = {"slo": {}}
    assert fmt.findings(res.summary)[1].startswith("No latency objective is set")


def test_overloaded_run_warns_and_claims_no_saving(single_curve):
    import sim
    from tests.conftest import queue_scenario

    doc = queue_scenario(single_curve, rps=10.0, replicas=1, max_concurrency=1,
                         duration="10m")
    doc["billing"] = {"serverless": {"llama-v3p1-8b-instruct": {"input": 100.0,
                                                                "output": 100.0}}}
    summary = sim.run(doc, keep_requests=False).summary
    lines = fmt.findings(summary)
    assert lines[0].startswith("The run did not serve its traffic: only ")
    assert any(x.startswith("Cut off at the drain limit") for x in lines)
    assert any(x.startswith("Overloaded throughout") for x in lines)
    assert not any("× cheaper" in x for x in lines)


def test_report_of_a_real_run_is_self_contained(real_result):
    plots = report_plots(real_result)
    page = render_report(real_result, plots)
    images = IMG.findall(page)
    assert [alt for alt, _ in images] == [p.title for p in plots]
    assert [p.file for p in plots] == ["timeline.png", "gpu_allocation.png", "ttft_cdf.png",
                                       "tpot_cdf.png", "e2e_cdf.png", "cost_breakdown.png"]
    for _, data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    # Nothing is fetched from elsewhere.
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    total = real_result.summary["total"]
    for key in KPI_KEYS:
        assert html.escape(fmt.kpi_label(key)) in page
    assert fmt.format_kpi("ttft_p99_s", total["ttft_p99_s"]) in page
    for sentence in fmt.findings(real_result.summary):
        assert html.escape(sentence) in page
    # The scenario reads back as the resolved scenario.
    pre = re.search(r"<pre>(.*?)</pre>", page, re.S)
    assert pre and yaml.safe_load(html.unescape(pre.group(1))) == real_result.scenario


def test_report_table_has_one_column_per_deployment_and_a_total():
    page = render_report(handmade(), plots=[])
    head = re.search(r'<table class="kpi">.*?<thead><tr>(.*?)</tr>', page, re.S)
    assert head and re.findall(r"<th>([^<]*)</th>", head.group(1)) == ["", "chat", "code",
                                                                     "total"]
    assert "<td>reserved</td>" in page and "<td>on_demand</td>" in page  # billing by kind


def test_write_report_writes_the_plots_beside_it(tmp_path, real_result):
    path = write_report(real_result, tmp_path)
    assert path == tmp_path / "report.html"
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert files == sorted(p.file for p in report_plots(real_result))
    page = path.read_text(encoding="utf-8")
    for name in files:
        data = base64.b64encode((tmp_path / name).read_bytes()).decode()
        assert data in page


def test_sweep_report_averages_seeds_per_combination(tmp_path):
    table = sweep_table()
    assert sweep_axes(table) == ["shape"]
    path = write_sweep_report(table, tmp_path, title="shapes", slo_s=2.0,
                              scenario={"name": "shapes", "sweep": {"shape": ["minimal"]}})
    page = path.read_text(encoding="utf-8")
    assert (tmp_path / "cost_vs_ttft.png").exists()
    assert len(IMG.findall(page)) == 1
    assert "7 runs, 6 finished · 3 combinations of shape × 3 seeds" in page
    section = re.search(r'id="combinations">(.*?)</section>', page, re.S)
    assert section
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td>.*?</tr>", section.group(1))
    assert rows == [("minimal", "2"), ("throughput", "2"), ("fast", "2")]
    fast = table[(table["shape"] == "fast") & (table["status"] == "ok")]
    assert fmt.format_kpi("ttft_p99_s", fast["total.ttft_p99_s"].mean()) in section.group(1)
    failed = re.search(r'id="failed">(.*?)</section>', page, re.S)
    assert failed and "InputError: boom" in failed.group(1)
    assert "deployments.chat" not in page  # per-deployment columns stay in summary.csv
    assert "sweep:" in page


def test_sweep_report_without_cost_columns_has_tables_only():
    table = sweep_table().drop(columns="total.cost_per_million_tokens_usd")
    page = render_sweep_report(table)
    assert not IMG.findall(page)
    assert 'id="runs"' in page
    with pytest.raises(ValueError, match="no column policy"):
        render_sweep_report(table, axes=["policy"])


def test_sweep_report_of_a_real_sweep(real_sweep):
    out, table = real_sweep
    axis = "deployments[0].autoscaler.replicas"
    assert sweep_axes(table) == [axis]
    plots = sweep_plots(table)
    assert len(plots) == 1
    path = write_sweep_report(table, out, title="replicas", plots=plots)
    assert (out / "cost_vs_ttft.png").exists()
    page = path.read_text(encoding="utf-8")
    section = re.search(r'id="combinations">(.*?)</section>', page, re.S)
    assert section
    assert re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", section.group(1)) == [
        ("1", "2"), ("2", "2")]
    # More replicas cost more per token at this light load.
    means = table.groupby(axis)["total.cost_per_million_tokens_usd"].mean()
    assert means[2] > means[1]
