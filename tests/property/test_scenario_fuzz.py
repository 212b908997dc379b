"""Malformed scenario documents: accepted, or refused with one InputError — never a crash."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.scenario import load_scenario

BASE: dict[str, Any] = {
    "name": "fuzz",
    "seed": 1,
    "duration": "10m",
    "deployments": [
        {
            "name": "d",
            "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1},
            "max_queue": 10,
            "traffic": {
                "arrivals": {"kind": "poisson", "rps": 2.0},
                "input_tokens": {"kind": "lognormal", "median": 100, "p90": 300},
                "output_tokens": {"kind": "fixed", "value": 50},
            },
        }
    ],
    "clients": {"max_retries": 3, "backoff_base": "1s"},
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1h", "-5s", "10 m", "2GB/s", "H100", "poisson", "static", "FP8", "0"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


def _mutate(doc: dict, path: tuple, value: Any, delete: bool) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(PATHS), values, st.booleans()), min_size=1, max_size=3
    ),
    extra_key=st.one_of(st.none(), st.text(min_size=1, max_size=8)),
)
def test_malformed_documents_fail_with_one_clear_line(mutations, extra_key):
    doc = BASE
    for path, value, delete in mutations:
        try:
            doc = _mutate(doc, path, value, delete)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    if extra_key is not None:
        doc = {**doc, extra_key: 1}
    try:
        load_scenario(doc)
    except InputError as err:
        text = str(err)
        assert text and "\n" not in text
        assert err.file == "<scenario>"
        assert err.where


def test_the_base_document_is_valid():
    load_scenario(BASE)
