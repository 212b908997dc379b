"""Shape presets: gpt-oss-120b's are published; the others must satisfy capsim's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import catalog
from sim.errors import InputError
from sim.perf import build_shape
from sim.perf.presets import candidates, choose, doc_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"

RULED = ("llama-v3p1-8b-instruct", "llama-v3p1-70b-instruct", "deepseek-v3")


def test_every_model_has_the_three_presets():
    have = {(p.model, p.preset) for p in catalog.all_presets()}
    assert have == {(m, p) for m in catalog.model_names() for p in catalog.PRESET_NAMES}


def test_gpt_oss_presets_are_the_published_ones():
    got = {p.preset: (p.accelerator, p.count, p.precision)
           for p in catalog.all_presets() if p.model == "gpt-oss-120b"}
    assert got == {"minimal": ("H200_141GB", 1, "FP4"), "throughput": ("H100_80GB", 4, "FP4"),
                   "fast": ("H200_141GB", 4, "FP4")}


@pytest.mark.parametrize("model", RULED)
def test_presets_follow_the_rules(model):
    pool = candidates(model)
    for preset in catalog.PRESET_NAMES:
        p = catalog.get_preset(model, preset)
        chosen = choose(model, preset, pool)
        assert (p.accelerator, p.count, p.precision) == (
            chosen.accelerator, chosen.gpus, chosen.precision), (model, preset, chosen)


@pytest.mark.parametrize("model", RULED)
def test_rule_orderings(model):
    pool = candidates(model)
    minimal, fast = (build_shape(model, p) for p in ("minimal", "fast"))
    assert minimal.usd_per_hour == min(s.usd_per_hour for s in pool)
    fastest = min(s.decode_step_time(1, 1100) for s in pool)
    assert fast.decode_step_time(1, 1100) <= 1.1 * fastest
    assert fast.usd_per_hour == min(
        s.usd_per_hour for s in pool if s.decode_step_time(1, 1100) <= 1.1 * fastest)


def test_unknown_preset():
    with pytest.raises(InputError, match=r"unknown shape preset 'cheap' \(known: minimal, "):
        catalog.get_preset("gpt-oss-120b", "cheap")


def test_catalog_doc_table_is_current():
    """docs/catalog.md's preset table is the one ``python -m sim.perf.presets --table`` prints."""
    assert doc_table() in DOC.read_text()
