"""The regression gate: a worse configuration is flagged, a reseeded identical one is not,
and results of different scenarios are refused."""

from __future__ import annotations

import json
import shutil

import pytest

from sim.compare import (
    DEFAULT_TOLERANCES,
    Delta,
    Tolerance,
    compare,
    markdown,
    parse_tolerance,
    tolerances,
    verdict,
)
from sim.errors import InputError
from sim.sweep import SerialExecutor, load_sweep, run_sweep
from tests.sweep.helpers import sweep_doc

REPLICAS = "deployments[0].autoscaler.replicas"
RPS = 20


def _sweep(out, seeds, replicas=2, **changes):
    """Five minutes of 20 req/s on 8B replicas: one replica is clearly worse than two."""
    doc = sweep_doc(seeds=seeds, **changes)
    doc["deployments"][0]["autoscaler"]["replicas"] = replicas
    doc["deployments"][0]["traffic"]["arrivals"]["rps"] = RPS
    report = run_sweep(load_sweep(doc), out, executor=SerialExecutor(), tables=False)
    assert report.ok
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("base"), [1, 2, 3, 4])


def test_a_worse_configuration_is_flagged(base, tmp_path):
    worse = _sweep(tmp_path / "worse", [1, 2, 3, 4], replicas=1)
    result = compare(base, worse)
    assert result.exit_code == 1
    flagged = {r.metric for r in result.regressions}
    assert {"ttft_p99_s", "tpot_p99_s", "e2e_p99_s"} <= flagged
    ttft = next(r for r in result.rows if r.metric == "ttft_p99_s")
    assert ttft.delta is not None and ttft.delta.method == "paired t on logs, n=4"
    assert ttft.delta.scale == "ratio" and ttft.delta.low > 0.10  # clearly, not just, worse
    # Half the replicas: cheaper, which the gate reports as better, never as a regression.
    cost = next(r for r in result.rows if r.metric == "cost_usd")
    assert cost.verdict == "better"
    text = markdown(result)
    assert "**REGRESSION**" in text and text.rstrip().endswith("— exit 1.")
    assert "| chat" not in text  # one deployment: the total only


def test_a_reseeded_identical_configuration_is_not_flagged(base, tmp_path):
    again = _sweep(tmp_path / "again", [11, 12, 13, 14])
    result = compare(base, again)
    assert result.exit_code == 0, markdown(result)
    rows = [r for r in result.rows if r.delta is not None]
    assert {r.delta.method for r in rows} <= {"Welch t, 4 vs 4", "Welch t on logs, 4 vs 4"}
    # The seeds differ, so the means do too; the intervals say it is noise.
    ttft = next(r for r in rows if r.metric == "ttft_p99_s")
    assert ttft.delta.method == "Welch t on logs, 4 vs 4"
    assert ttft.delta.estimate != 0 and ttft.delta.low < 0 < ttft.delta.high
    assert markdown(result).rstrip().endswith("No regression beyond tolerance — exit 0.")


def test_the_same_runs_compare_exactly_equal(base):
    result = compare(base, base, all_metrics=True)
    assert result.exit_code == 0
    assert {r.verdict for r in result.rows} <= {"ok", "—", "n/a"}
    assert all(r.delta.delta == 0 for r in result.rows if r.delta is not None)
    # every KPI of the registry that a run reports as a number, with --all
    from sim.metrics.kpis import KPIS

    assert {r.metric for r in result.rows} >= {k.key for k in KPIS if k.better is not None}


def test_a_tolerance_can_excuse_or_disable(base, tmp_path):
    worse = _sweep(tmp_path / "worse", [1, 2, 3, 4], replicas=1)
    loose = compare(base, worse, tolerance=["ttft_p99_s=500%", "tpot_p99_s=off"])
    assert "ttft_p99_s" not in {r.metric for r in loose.regressions}
    assert "tpot_p99_s" not in {r.metric for r in loose.rows}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "other"}, "different scenarios ('tiny'"),
        ({"sweep": {REPLICAS: [1, 2]}}, "different sweep points"),
        ({"duration": "6m"}, "differ in duration"),
        ({"traffic_rps": 21}, "differ in deployments[0].traffic.arrivals.rps"),
        ({"slo": {"ttft_p99": "2s"}}, "differ in slo.ttft_p99"),
    ],
)
def test_results_of_different_scenarios_are_refused(base, tmp_path, change, message):
    change = dict(change)
    doc_changes = {k: v for k, v in change.items() if k != "traffic_rps"}
    doc = sweep_doc(seeds=[1, 2], **doc_changes)
    doc["deployments"][0]["traffic"]["arrivals"]["rps"] = RPS
    if "traffic_rps" in change:
        doc["deployments"][0]["traffic"]["arrivals"]["rps"] = change["traffic_rps"]
    run_sweep(load_sweep(doc), tmp_path / "new", executor=SerialExecutor(), tables=False)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        compare(base, tmp_path / "new")


def test_what_is_under_test_may_change(base, tmp_path):
    # A different shape, queue and retry policy: comparable (that is the point).
    doc = sweep_doc(seeds=[1, 2, 3, 4], clients={"max_retries": 2})
    doc["deployments"][0]["traffic"]["arrivals"]["rps"] = RPS
    doc["deployments"][0]["max_queue"] = 128
    doc["deployments"][0]["shape"] = {"accelerator": "H200_141GB", "count": 1,
                                      "precision": "FP8"}
    run_sweep(load_sweep(doc), tmp_path / "new", executor=SerialExecutor(), tables=False)
    assert compare(base, tmp_path / "new").rows


def _edit_summaries(root, change):
    for path in sorted(root.glob("*/seed=*/summary.json")):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))


def test_runs_whose_traffic_differs_are_not_paired(base, tmp_path):
    assert compare(base, base).exit_code == 0  # the same fingerprints pair
    changed = tmp_path / "changed"
    shutil.copytree(base, changed)
    # What a change in how traffic is seeded leaves: same scenario, same seeds, other requests.
    _edit_summaries(changed, lambda d: d["traffic_fingerprint"].__setitem__("chat", "b2-00"))
    with pytest.raises(InputError, match="simulated different traffic for deployment 'chat'"):
        compare(base, changed)
    old = tmp_path / "old"
    shutil.copytree(base, old)
    _edit_summaries(old, lambda d: d.pop("traffic_fingerprint"))
    with pytest.raises(InputError, match=r"BASE .* has no traffic fingerprint"):
        compare(old, base)


def test_the_fingerprint_is_that_of_the_generated_requests():
    import sim
    from sim.engine.rng import seed_sequence
    from sim.workload.fingerprint import fingerprint
    from sim.workload.generate import generate

    for seed in (1, 2):
        doc = sweep_doc(seed=seed, duration="90m")  # two hourly windows of generation
        doc["deployments"][0]["traffic"]["arrivals"]["rps"] = 2
        loaded = sim.load_scenario(doc)
        dep = loaded.spec.deployments[0]
        work = generate(dep.traffic, loaded.spec.duration,
                        seed_sequence(seed, "deployment", dep.name, "traffic"))
        fps = {chunk: sim.run(loaded, chunk_s=chunk).summary["traffic_fingerprint"]
               for chunk in (600.0, None)}
        expected = fingerprint(work.arrival_s, work.input_tokens, work.output_tokens)
        assert fps[600.0] == fps[None] == {dep.name: expected}
    one = fingerprint(work.arrival_s, work.input_tokens, work.output_tokens)
    shifted = fingerprint(work.arrival_s + 1e-9, work.input_tokens, work.output_tokens)
    assert one != shifted and one != fingerprint(work.arrival_s, work.output_tokens,
                                                 work.input_tokens)


def test_a_missing_run_is_refused(base, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    shutil.rmtree(copy / "base" / "seed=3")
    with pytest.raises(InputError, match="run base seed=3 has no results"):
        compare(base, copy)


def test_single_runs_and_suites(tmp_path):
    from sim.cli import main

    scenario = tmp_path / "s.yaml"
    scenario.write_text(json.dumps(sweep_doc()))
    assert main(["run", str(scenario), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert main(["run", str(scenario), "--out", str(tmp_path / "b"), "--no-progress",
                 "--set", f"{REPLICAS}=1"]) == 0
    single = compare(tmp_path / "a", tmp_path / "b")
    assert {r.delta.method for r in single.rows if r.delta} == {"exact, same seed"}
    assert "ttft_p99_s" in {r.metric for r in single.regressions}
    # A suite: a folder of result folders, matched by name.
    for side in ("a", "b"):
        (tmp_path / f"suite-{side}").mkdir()
        shutil.copytree(tmp_path / side, tmp_path / f"suite-{side}" / "tiny")
    assert compare(tmp_path / "suite-a", tmp_path / "suite-b").exit_code == 1
    (tmp_path / "suite-b" / "tiny").rename(tmp_path / "suite-b" / "other")
    with pytest.raises(InputError, match=r"different scenarios \(only in BASE: tiny"):
        compare(tmp_path / "suite-a", tmp_path / "suite-b")


def test_parse_tolerance():
    assert parse_tolerance("ttft_p99_s=5%") == ("ttft_p99_s", Tolerance(0.05, True))
    assert parse_tolerance("slo_attainment=0.02") == ("slo_attainment", Tolerance(0.02, False))
    assert parse_tolerance("cost_usd=off") == ("cost_usd", None)
    for bad, msg in [("ttft", "metric=value"), ("ttft_p98_s=5%", "unknown metric"),
                     ("utilization=5%", "no better or worse direction"),
                     ("ttft_p99_s=fast", "not a number"), ("ttft_p99_s=-1%", "non-negative")]:
        with pytest.raises(InputError, match=msg):
            parse_tolerance(bad)
    tols = tolerances(["cost_usd=off", "retries=10"])
    assert "cost_usd" not in tols and tols["retries"] == Tolerance(10, False)
    assert tols["ttft_p99_s"] == DEFAULT_TOLERANCES["ttft_p99_s"]


@pytest.mark.parametrize(
    ("metric", "base", "delta", "low", "high", "tol", "expected"),
    [
        # Higher is worse: +20 % with the whole interval above zero.
        ("ttft_p99_s", 1.0, 0.2, 0.05, 0.35, Tolerance(0.1, True), "regression"),
        # +20 % but the interval crosses zero: not significant.
        ("ttft_p99_s", 1.0, 0.2, -0.05, 0.45, Tolerance(0.1, True), "worse (n.s.)"),
        # Significant but within the 10 % tolerance.
        ("ttft_p99_s", 1.0, 0.08, 0.02, 0.14, Tolerance(0.1, True), "ok"),
        # Significantly lower latency: better.
        ("ttft_p99_s", 1.0, -0.3, -0.4, -0.2, Tolerance(0.1, True), "better"),
        # Higher is better: SLO attainment down 0.05, absolute tolerance 0.01.
        ("slo_attainment", 0.99, -0.05, -0.08, -0.02, Tolerance(0.01, False), "regression"),
        ("slo_attainment", 0.90, 0.05, 0.02, 0.08, Tolerance(0.01, False), "better"),
        # From zero 503s, any significant increase is beyond a relative tolerance.
        ("http_503", 0.0, 3.0, 1.0, 5.0, Tolerance(0.05, True), "regression"),
        # No interval (one seed each side): the difference is taken as exact.
        ("cost_usd", 100.0, 6.0, None, None, Tolerance(0.05, True), "regression"),
        ("cost_usd", 100.0, 4.0, None, None, Tolerance(0.05, True), "ok"),
        ("cost_usd", 100.0, 6.0, None, None, None, "—"),
    ],
)
def test_verdict_by_hand(metric, base, delta, low, high, tol, expected):
    d = Delta(base, base + delta, delta, low, high, "test")
    assert verdict(metric, d, tol) == expected


@pytest.mark.parametrize(
    ("metric", "change", "low", "high", "tol", "expected"),
    [
        # On the ratio scale the tolerance is the relative change itself.
        ("ttft_p99_s", 0.30, 0.12, 0.50, 0.10, "regression"),
        ("ttft_p99_s", 0.30, -0.02, 0.65, 0.10, "worse (n.s.)"),
        ("ttft_p99_s", 0.07, 0.02, 0.12, 0.10, "ok"),
        ("cost_usd", -0.50, -0.52, -0.48, 0.05, "better"),
        # Higher is better: 20 % fewer ok requests is 20 % worse.
        ("ok", -0.20, -0.25, -0.15, 0.05, "regression"),
        ("ok", 0.20, 0.15, 0.25, 0.05, "better"),
    ],
)
def test_verdict_on_the_ratio_scale(metric, change, low, high, tol, expected):
    d = Delta(1.0, 1.0 + change, change, low, high, "test", "ratio")
    assert verdict(metric, d, Tolerance(tol, True)) == expected
