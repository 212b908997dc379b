"""Fuzzing scenarios built from the schema: every document is either refused in one
line (exit 2) or runs, and a run does what its estimate said (requests, timeline rows)
— never a traceback, an internal error (exit 3) or a run far beyond its estimate.

Numeric settings are drawn from the ranges the schema declares (its ``ge``/``gt``/
``le`` bounds, read from the pydantic fields): at the edges, just outside them, and
log-uniformly inside.  A second strategy mutates the bytes of a valid YAML file.
The default suite keeps the horizons short; ``-m slow`` runs many more cases.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import sim
from sim.cli import main
from sim.errors import InputError
from sim.estimate import estimate
from sim.fleet.spec import FaultSpec
from sim.policies.fireworks import Fireworks
from sim.policies.static import Static
from sim.scenario import load_scenario
from sim.scenario.schema import ClientSpec, DeploymentSpec, Scenario
from sim.workload.spec import FixedLength, PoissonArrivals

BASE: dict[str, Any] = {
    "name": "fuzz",
    "seed": 1,
    "duration": "2m",
    "timeline_interval": "30s",
    "deployments": [{
        "name": "d",
        "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "autoscaler": {"policy": "static", "replicas": 1},
        "traffic": {
            "arrivals": {"kind": "poisson", "rps": 2.0},
            "input_tokens": {"kind": "fixed", "value": 100},
            "output_tokens": {"kind": "fixed", "value": 20},
        },
    }],
}


def _bounds(model: type[BaseModel], name: str) -> tuple[float, float, bool]:
    """(low, high, integer) of a numeric field, from its pydantic metadata."""
    info = model.model_fields[name]
    low, high = -math.inf, math.inf
    metadata = list(info.metadata)
    annotation = info.annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        metadata += list(getattr(arg, "__metadata__", ()) or ())
    for item in metadata:
        for sub in [item, *getattr(item, "metadata", [])]:
            if isinstance(sub, Ge):
                low = max(low, float(sub.ge))
            elif isinstance(sub, Gt):
                low = max(low, float(sub.gt))
            elif isinstance(sub, Le):
                high = min(high, float(sub.le))
            elif isinstance(sub, Lt):
                high = min(high, float(sub.lt))
    integer = "int" in str(annotation)
    return low, high, integer


# (path into BASE, model, field, unit suffix or "", cap on the value for runnable cases)
KNOBS: list[tuple[tuple[Any, ...], type[BaseModel], str, str, float]] = [
    (("duration",), Scenario, "duration", "s", 600.0),
    (("warmup",), Scenario, "warmup", "s", 60.0),
    (("timeline_interval",), Scenario, "timeline_interval", "s", math.inf),
    (("deployments", 0, "min_replicas"), DeploymentSpec, "min_replicas", "", 4),
    (("deployments", 0, "max_replicas"), DeploymentSpec, "max_replicas", "", 8),
    (("deployments", 0, "max_concurrency"), DeploymentSpec, "max_concurrency", "", math.inf),
    (("deployments", 0, "max_queue"), DeploymentSpec, "max_queue", "", math.inf),
    (("deployments", 0, "autoscaler", "replicas"), Static.Params, "replicas", "", 8),
    (("deployments", 0, "traffic", "arrivals", "rps"), PoissonArrivals, "rps", "", 40.0),
    (("deployments", 0, "traffic", "input_tokens", "value"), FixedLength, "value", "", 4000),
    (("deployments", 0, "traffic", "output_tokens", "value"), FixedLength, "value", "", 500),
    (("clients", "max_retries"), ClientSpec, "max_retries", "", math.inf),
    (("clients", "backoff_base"), ClientSpec, "backoff_base", "s", math.inf),
    (("faults", "replica_mtbf"), FaultSpec, "replica_mtbf", "s", math.inf),
]
FIREWORKS_SYNC = _bounds(Fireworks.Params, "sync_period")


def _values(low: float, high: float, integer: bool) -> st.SearchStrategy[float]:
    lo = low if math.isfinite(low) else -1e6
    hi = high if math.isfinite(high) else 1e9
    edges = [lo, hi, lo - (1 if integer else abs(lo) * 1e-3 + 1e-9), hi * 1.01 + 1]
    inside = (st.floats(math.log10(max(lo, 1e-3)), math.log10(max(hi, 1e-3)))
              .map(lambda e: 10 ** e) if hi > 0 else st.floats(lo, hi))
    value = st.one_of(st.sampled_from(edges), inside, inside)
    return value.map(lambda v: round(v) if integer and math.isfinite(v) else v)


def _set(doc: dict, path: tuple[Any, ...], value: Any) -> None:
    node: Any = doc
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    node[path[-1]] = value


@st.composite
def odd_scenarios(draw: st.DrawFn, runnable: bool) -> dict:
    """A scenario with a few numeric settings drawn from their schema ranges."""
    doc = copy.deepcopy(BASE)
    chosen = draw(st.lists(st.sampled_from(range(len(KNOBS))), min_size=1, max_size=4,
                           unique=True))
    for i in chosen:
        path, model, name, unit, cap = KNOBS[i]
        low, high, integer = _bounds(model, name)
        value = draw(_values(low, min(high, cap) if runnable else high, integer))
        _set(doc, path, f"{value!r}{unit}" if unit else value)
    if draw(st.booleans()):
        low, high, _ = FIREWORKS_SYNC
        sync = draw(st.sampled_from([low, low * 0.5, 1.0, 10.0, high, high * 2]))
        doc["deployments"][0]["autoscaler"] = {"policy": "fireworks", "sync_period": f"{sync}s"}
    return doc


def _check(doc: dict, run_limit_s: float) -> str:
    """Load, estimate and (when small) run ``doc``; return what happened."""
    try:
        loaded = load_scenario(doc)
    except InputError as err:
        text = str(err)
        assert text and "\n" not in text and len(text) <= 400
        return "refused"
    size = estimate(loaded, keep_requests=False)
    if size.refusals():
        with pytest.raises(InputError, match="refused"):
            sim.run(loaded, keep_requests=False)
        return "refused by the estimate"
    if size.wall_s > run_limit_s:
        return "accepted, too long to run here"
    result = sim.run(loaded, keep_requests=False)
    requests = result.summary["total"]["requests"]
    assert requests <= 2 * size.requests + 50, (requests, size.requests)
    assert len(result.timeline) <= size.max_timeline_rows
    return "ran"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=odd_scenarios(runnable=True))
def test_odd_scenarios_are_refused_in_one_line_or_run_within_their_estimate(doc):
    event(_check(doc, run_limit_s=4.0))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=odd_scenarios(runnable=False))
def test_settings_anywhere_in_their_range_are_refused_or_estimated(doc):
    """Unrestricted ranges: the run is not attempted, but load and estimate never fail
    in any other way than one InputError, and the estimate is finite."""
    try:
        loaded = load_scenario(doc)
    except InputError as err:
        assert "\n" not in str(err) and len(str(err)) <= 400
        return
    size = estimate(loaded)
    for value in (size.requests, size.wall_s, size.memory_bytes, size.output_bytes):
        assert math.isfinite(value) and value >= 0


VALID_YAML = yaml.safe_dump(BASE, sort_keys=False).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID_YAML) - 1), st.integers(0, 255)),
                      min_size=1, max_size=4))
def test_mutated_bytes_through_the_cli_are_exit_0_or_2(edits, tmp_path_factory):
    data = bytearray(VALID_YAML)
    for pos, byte in edits:
        data[pos] = byte
    path: Path = tmp_path_factory.mktemp("m") / "s.yaml"
    path.write_bytes(bytes(data))
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["validate", str(path)])
    assert code in (0, 2), err.getvalue()
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("capsim: error: ")


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=odd_scenarios(runnable=True))
def test_many_odd_scenarios_slow(doc):
    event(_check(doc, run_limit_s=20.0))


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=odd_scenarios(runnable=False))
def test_many_settings_anywhere_in_their_range_slow(doc):
    test_settings_anywhere_in_their_range_are_refused_or_estimated.hypothesis.inner_test(doc)
