"""``capsim bench --scale`` measures a run in a child process (no timing asserted)."""

from __future__ import annotations

from sim.bench_scale import SCENARIO, measure
from sim.cli import _parser
from sim.scenario.loader import load_scenario


def test_week_scenario_is_valid_and_a_week_long():
    loaded = load_scenario(SCENARIO)
    assert loaded.spec.duration == 7 * 86400
    assert len(loaded.spec.deployments) == 3


def test_a_short_horizon_is_measured_in_its_own_process():
    point = measure("20m")
    assert point.requests > 10_000
    assert point.wall_s > 0 and point.peak_rss_mib > 0
    assert point.requests_per_s > 0


def test_the_flag_is_parsed():
    assert _parser().parse_args(["bench", "--scale"]).scale
