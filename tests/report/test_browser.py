"""report.html in a real headless Chromium: it renders, logs no error, and every plot loads.

Screenshots go to the test's tmp folder, and to ``$CAPSIM_SCREENSHOTS`` when
that is set (to look at them).  Without Chromium the tests are skipped with
the way to install it — except in CI (``CI`` set), where they fail, so a
missing browser cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sim.cli import main
from sim.report.html import report_plots, write_report, write_sweep_report
from tests.report.browser import INSTALL_HINT, Chromium, find_chromium
from tests.report.conftest import TRACE, handmade
from tests.report.test_html import sweep_table


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    chrome = Chromium(executable, tmp_path_factory.mktemp("chromium") / "profile")
    try:
        yield chrome
    finally:
        chrome.close()


def _keep(shot: Path) -> None:
    folder = os.environ.get("CAPSIM_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def _look(browser: Chromium, report: Path, shot: Path, plots: int) -> None:
    page = browser.open(report.as_uri())
    assert page.errors == []
    assert len(page.images) == plots
    assert page.broken_images == []
    assert all(i["naturalWidth"] >= 600 and i["naturalHeight"] >= 200 for i in page.images)
    # Every plot is laid out inside the page's column, at a readable width.
    widths = browser.evaluate("Array.from(document.images).map(i => i.getBoundingClientRect()"
                              ".width)")
    assert all(500 <= w <= 1200 for w in widths)
    browser.screenshot(shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    _keep(shot)


def test_the_checker_sees_errors_and_broken_images(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><html><head><link rel="icon" href="data:,"></head><body>'
                   '<img alt="gone" src="missing.png"><script>console.error("boom");'
                   "undefinedFunction();</script></body></html>")
    page = browser.open(bad.as_uri())
    assert page.console_errors == ["boom"]
    assert len(page.exceptions) == 1 and "undefinedFunction" in page.exceptions[0]
    assert any("missing.png" in e for e in page.log_errors)
    assert [i["alt"] for i in page.broken_images] == ["gone"]


def test_capsim_run_report_renders(browser, tmp_path):
    scenario = {
        "name": "browser-check", "seed": 5, "duration": "15m", "warmup": "1m",
        "slo": {"ttft_p99": "1s", "tpot_p99": "50ms"},
        "deployments": [{
            "name": "chat", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1}, "max_queue": 128,
            "traffic": {"arrivals": {"kind": "trace", "path": str(TRACE)}},
        }],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    _look(browser, out / "report.html", tmp_path / "run_report.png", plots=6)
    title = browser.evaluate("document.querySelector('h1').textContent")
    assert title == "browser-check"
    rows = browser.evaluate("document.querySelectorAll('table.kpi tbody tr').length")
    assert rows >= 23  # every KPI and its group headings


def test_report_with_stages_allocation_and_reservation_renders(browser, tmp_path):
    res = handmade()
    path = write_report(res, tmp_path)
    _look(browser, path, tmp_path / "handmade_report.png", plots=len(report_plots(res)))


def test_sweep_report_renders(browser, tmp_path):
    path = write_sweep_report(sweep_table(), tmp_path, title="shapes", slo_s=2.0,
                              scenario={"name": "shapes"})
    _look(browser, path, tmp_path / "sweep_report.png", plots=1)
