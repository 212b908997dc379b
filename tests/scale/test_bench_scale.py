"""``capsim bench --scale`` measures a run in a child process (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from sim.bench_scale import SCENARIO, measure
from sim.cli import _parser, main
from sim.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_week_scenario_is_valid_and_a_week_long():
    loaded = load_scenario(ROOT / SCENARIO)
    assert loaded.spec.duration == 7 * 86400
    assert len(loaded.spec.deployments) == 3


def test_a_short_horizon_is_measured_in_its_own_process():
    point = measure("20m", ROOT / SCENARIO)
    assert point.requests > 10_000
    assert point.wall_s > 0 and point.peak_rss_mib > 0
    assert point.requests_per_s > 0


def test_the_flags_are_parsed():
    args = _parser().parse_args(["bench", "--scale", "--scenario", "x.yaml"])
    assert args.scale and args.scenario == "x.yaml"


def test_outside_a_checkout_it_asks_for_the_scenario(tmp_path, monkeypatch, capsys):
    # Installed capsim finds nothing through its own files: the scenario comes from the
    # current folder or --scenario, and a missing one is one line, exit 2.
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--scale"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scenario FILE" in err[0]
