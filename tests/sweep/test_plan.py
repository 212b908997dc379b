"""Sweep files: grid expansion, seeds, stable run ids, validation before anything runs."""

from __future__ import annotations

import pytest
import yaml

from sim.errors import InputError
from sim.sweep import load_sweep, run_id
from tests.sweep.helpers import sweep_doc, write_sweep


def test_cartesian_product_times_seeds_in_grid_order():
    plan = load_sweep(sweep_doc(
        sweep={"deployments[0].autoscaler.replicas": [1, 2, 3],
               "deployments[0].shape.precision": ["FP8", "BF16"]},
        seeds=2,
    ))
    assert len(plan.points) == 6
    assert len(plan.runs) == 12
    assert plan.seeds == [1, 2]  # seed 1 of the base, then seed + 1
    first = plan.runs[0]
    assert first.overrides == {"deployments[0].autoscaler.replicas": 1,
                               "deployments[0].shape.precision": "FP8"}
    assert [r.seed for r in plan.runs[:2]] == [1, 2]
    assert plan.runs[2].overrides["deployments[0].shape.precision"] == "BF16"
    # Each run carries its resolved scenario, with the axis values and its seed applied.
    for run in plan.runs:
        dep = run.scenario["deployments"][0]
        assert dep["autoscaler"]["replicas"] == run.overrides["deployments[0].autoscaler.replicas"]
        assert dep["shape"]["precision"] == run.overrides["deployments[0].shape.precision"]
        assert run.scenario["seed"] == run.seed
        assert run.scenario["clients"]["max_retries"] == 5  # defaults resolved


def test_dependent_axes_give_each_value_its_own_range():
    plan = load_sweep(sweep_doc(sweep={
        "deployments[0].shape.precision": {
            "FP8": {"deployments[0].autoscaler.replicas": [1, 2]},
            "BF16": {"deployments[0].autoscaler.replicas": [3, 4, 5]},
        },
        "deployments[0].max_queue": [8, 16],
    }))
    points = [o for _, o in plan.points]
    assert len(points) == (2 + 3) * 2
    pairs = {(o["deployments[0].shape.precision"], o["deployments[0].autoscaler.replicas"])
             for o in points}
    assert pairs == {("FP8", 1), ("FP8", 2), ("BF16", 3), ("BF16", 4), ("BF16", 5)}
    assert plan.axes["deployments[0].autoscaler.replicas"] == [1, 2, 3, 4, 5]
    for run in plan.runs:
        assert run.scenario["deployments"][0]["autoscaler"]["replicas"] == \
            run.overrides["deployments[0].autoscaler.replicas"]


def test_zipped_axes_move_together():
    plan = load_sweep(sweep_doc(sweep={
        "zip": {"deployments[0].traffic.arrivals.rps": [6, 12, 24],
                "deployments[0].autoscaler.replicas": [1, 2, 4]},
        "deployments[0].max_queue": [8, 16],
    }))
    points = [o for _, o in plan.points]
    assert len(points) == 3 * 2
    assert {(o["deployments[0].traffic.arrivals.rps"], o["deployments[0].autoscaler.replicas"])
            for o in points} == {(6, 1), (12, 2), (24, 4)}


@pytest.mark.parametrize(("sweep", "where", "reason"), [
    ({"zip": {"deployments[0].max_queue": [1, 2], "deployments[0].autoscaler.replicas": [1]}},
     "sweep.zip", "one length"),
    ({"deployments[0].shape.precision": {"FP3": {"deployments[0].max_queue": [1]}}},
     "sweep.deployments[0].shape.precision", "value 'FP3'"),
    ({"deployments[0].shape.precision": {"FP8": {"deployments[0].autoscalr.replicas": [1]}}},
     "sweep.deployments[0].autoscalr.replicas", "unknown key"),
    ({"deployments[0].max_queue": [1, 2], "zip": {"deployments[0].max_queue": [3, 4]}},
     "sweep", "given twice"),
])
def test_bad_zipped_or_dependent_axes(sweep, where, reason):
    with pytest.raises(InputError) as info:
        load_sweep(sweep_doc(sweep=sweep))
    assert info.value.where == where and reason in info.value.reason


def test_seed_list_and_no_axes():
    plan = load_sweep(sweep_doc(seeds=[7, 3, 11]))
    assert plan.seeds == [7, 3, 11]
    assert [r.run_id for r in plan.runs] == ["base"] * 3
    assert [r.scenario["seed"] for r in plan.runs] == [7, 3, 11]


def test_run_id_is_stable_readable_and_order_independent():
    a = run_id({"deployments[0].autoscaler.replicas": 2, "deployments[0].shape": "minimal"})
    b = run_id({"deployments[0].shape": "minimal", "deployments[0].autoscaler.replicas": 2})
    assert a == b
    assert a.startswith("replicas=2,shape=minimal-")
    assert len(a.rsplit("-", 1)[1]) == 8
    # The same leaf name on two deployments still gives different ids.
    assert run_id({"deployments[0].max_queue": 1}) != run_id({"deployments[1].max_queue": 1})
    # A mapping value is named by the hash alone, and its key order does not matter.
    c = run_id({"deployments[0].shape": {"accelerator": "H100_80GB", "count": 2}})
    d = run_id({"deployments[0].shape": {"count": 2, "accelerator": "H100_80GB"}})
    assert c == d and c.startswith("shape-")
    assert run_id({}) == "base"


def test_overrides_apply_to_the_base_before_the_axes():
    plan = load_sweep(sweep_doc(sweep={"deployments[0].max_queue": [8, 16]}),
                      {"duration": "2m", "deployments[0].max_queue": 1})
    assert {r.scenario["duration"] for r in plan.runs} == {"2m"}
    assert [r.scenario["deployments"][0]["max_queue"] for r in plan.runs] == [8, 16]


@pytest.mark.parametrize(
    ("changes", "where", "reason"),
    [
        ({"sweep": {"deployments[0].autoscaler.replicas": [1, -1]}},
         "sweep.deployments[0].autoscaler.replicas", "value -1: deployments[0].autoscaler"),
        ({"sweep": {"deployments[0].autoscalr.replicas": [1]}},
         "sweep.deployments[0].autoscalr.replicas", "unknown key"),
        ({"sweep": {"deployments[3].max_queue": [1]}},
         "sweep.deployments[3].max_queue", "no list item 3"),
        ({"sweep": {"deployments[0].shape.accelerator": ["H100"]}},
         "sweep.deployments[0].shape.accelerator", "unknown accelerator 'H100'"),
        ({"sweep": {"deployments[0].max_queue": 4}},
         "sweep.deployments[0].max_queue", "non-empty list"),
        ({"sweep": {"deployments[0].max_queue": [4, 4]}},
         "sweep.deployments[0].max_queue", "duplicate value"),
        ({"sweep": {"seed": [1, 2]}}, "sweep.seed", "use the top-level 'seeds:'"),
        ({"sweep": [1, 2]}, "sweep", "mapping"),
        ({"seeds": 0}, "seeds", "at least 1"),
        ({"seeds": [1, -2]}, "seeds", "non-negative"),
        ({"seeds": "five"}, "seeds", "count"),
        ({"durationn": "1h", "seeds": 2}, "durationn", "unknown key"),
    ],
)
def test_bad_axes_name_the_file_and_the_axis(tmp_path, changes, where, reason):
    path = write_sweep(tmp_path / "sw.yaml", **changes)
    with pytest.raises(InputError) as info:
        load_sweep(path)
    err = info.value
    assert err.file == str(path)
    assert err.where == where
    assert reason in err.reason
    assert "\n" not in str(err)


def test_every_combination_is_validated(tmp_path):
    # Each value is valid alone (with the base's max_replicas 10 and min_replicas 0);
    # min_replicas 3 with max_replicas 2 is not.
    doc = sweep_doc()
    doc["deployments"][0]["max_replicas"] = 10
    path = write_sweep(tmp_path / "sw.yaml", deployments=doc["deployments"], sweep={
        "deployments[0].min_replicas": [0, 3],
        "deployments[0].max_replicas": [2, 4],
    })
    with pytest.raises(InputError) as info:
        load_sweep(path)
    assert info.value.where == "sweep"
    assert "combination deployments[0].min_replicas=3, deployments[0].max_replicas=2" in str(
        info.value)
    assert "below min_replicas" in str(info.value)


def test_a_trace_axis_checks_each_file(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:00:00.0,10,5\n2023-11-16 18:00:01.0,10,5\n")
    arrivals = "deployments[0].traffic.arrivals"
    path = write_sweep(tmp_path / "sw.yaml", sweep={
        arrivals: [{"kind": "trace", "path": "t.csv"}, {"kind": "trace", "path": "gone.csv"}],
    })
    with pytest.raises(InputError) as info:
        load_sweep(path)
    assert info.value.where == f"sweep.{arrivals}"
    assert "gone.csv" in str(info.value)


def test_a_plain_scenario_is_a_one_run_sweep(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep_doc()))
    plan = load_sweep(path)
    assert [(r.run_id, r.seed) for r in plan.runs] == [("base", 1)]


def test_a_mapping_is_checked_for_depth_like_a_file():
    """A sweep given as a mapping (a notebook) gets the same size and depth guard as a
    YAML file: one InputError naming the document, not a RecursionError."""
    doc: dict = {}
    node = doc
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InputError, match=r"<sweep>.*nested too deeply"):
        load_sweep(doc)
