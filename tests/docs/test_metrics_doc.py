"""docs/metrics.md's KPI table is generated from the registry, and every summary key is in it."""

from __future__ import annotations

import re

import sim
from sim.metrics import docgen, kpis


def test_kpi_table_is_current():
    committed = docgen.DOC.read_text(encoding="utf-8")
    assert committed == docgen.render(committed), (
        f"docs/metrics.md is out of date: run `{docgen.COMMAND}` and commit it")


def test_every_summary_key_is_declared_once_and_documented(tiny_summary):
    documented = re.findall(r"^\| `(\w+)`", docgen.markdown_table(), flags=re.M)
    assert len(documented) == len(set(documented)) == len(kpis.KPIS)
    for block in (*tiny_summary["deployments"].values(), tiny_summary["total"]):
        numeric = {k for k, v in block.items() if not isinstance(v, str | dict)}
        assert numeric <= set(documented), numeric - set(documented)
    assert set(kpis.KPI_KEYS) <= set(tiny_summary["total"])
    assert set(kpis.TOTAL_ONLY_KEYS) <= set(tiny_summary["total"])


def test_every_kpi_has_a_formula_unit_and_a_known_display():
    for k in kpis.KPIS:
        assert k.formula and k.unit and k.label
        assert k.tolerance is None or k.better is not None, k.key  # gated needs a direction


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tiny_summary():
    scenario = {
        "name": "tiny", "seed": 1, "duration": "2m",
        "deployments": [{
            "name": "d", "model": "llama-v3p1-8b-instruct",
            "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
            "autoscaler": {"policy": "static", "replicas": 1},
            "traffic": {"arrivals": {"kind": "poisson", "rps": 2},
                        "input_tokens": {"kind": "fixed", "value": 200},
                        "output_tokens": {"kind": "fixed", "value": 50}},
        }],
    }
    return sim.run(scenario).summary
