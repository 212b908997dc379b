"""The vllm profile against measured vLLM 0.15.1 runs, through sim.run (docs/validation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.catalog._data import read_records
from sim.perf import validate as V

DOC = Path(__file__).parents[2] / "docs" / "validation.md"


@pytest.fixture(scope="module")
def table():
    return V.error_table(V.measured_runs())


@pytest.fixture(scope="module")
def exact():
    return V.error_table(V.measured_runs(), engine="exact")


def test_the_data_names_its_source_date_and_licence():
    text = (Path(V.__file__).parents[1] / "catalog" / "data" / V.DATA).read_text()
    head = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "https://github.com/inference-sim/sim-to-real-accuracy-validation" in head
    assert "Licence" in head and "Retrieved 2026-12-01" in head
    assert len(read_records(V.DATA)) == 22


def test_replayable_runs_and_split():
    runs = V.measured_runs()
    # general-lite runs have no published rates and are not replayed
    assert sorted(r.run for r in runs) == sorted(
        ["16", "18", "19", "22", "23", "24", "25", "26", "46", "61"])
    assert {r.run for r in runs if r.fit} == set(V.FIT_RUNS)
    held = {(r.workload, r.gpus, r.model) for r in runs if not r.fit}
    assert ("reasoning", 1, "llama-v3p1-8b-instruct") in held
    assert ("codegen", 4, "llama-v3p1-70b-instruct") in held


def test_implied_output_length():
    # run 16, stage 0: 1 + (1892.70 - 25.23) / 7.90
    assert V.implied_output_tokens(1.8927, 0.02523, 0.0079) == 237


def test_never_saturates_where_the_server_sustained_the_load(table):
    assert table["sustained"].all()


def test_held_out_errors(table):
    """Median |error| over the held-out stages within the targets (reached: TTFT 6.4 %,
    TPOT 7.6 %, E2E 7.3 %; targets 20 %, 10 %, 10 %)."""
    s = V.summary(table[table["set"] == "held out"])
    assert s["ttft_mean"] <= 20.0
    assert s["tpot_mean"] <= 10.0
    assert s["e2e_mean"] <= 10.0
    # no held-out stage is off by more than the worst documented case
    held = table[table["set"] == "held out"]
    assert held["e2e_mean"].abs().max() < 80.0


def test_docs_show_the_current_table(table, exact):
    assert V.section(table, exact) in DOC.read_text(encoding="utf-8")


def test_the_exact_engine_agrees(table, exact):
    """Both engines price iterations with the same iteration_time: their errors are close."""
    assert exact["sustained"].all()
    for m in ("ttft_mean", "tpot_mean", "e2e_mean"):
        assert abs(V.summary(exact)[m] - V.summary(table)[m]) < 3.0


def test_h200_over_h100_against_published_ratios():
    """H200 extrapolated by datasheet from H100 constants, against TensorRT-LLM's ratios.

    The vllm profile, fitted on vLLM runs on H100 only, is held to the ±15 %
    docs/throughput.md states for H200 predictions (reached: 12 %); the trtllm
    profile, fitted on this table's rows of both GPUs (so in-sample), to 6 %
    (reached: 3.9 %).
    """
    trt = V.generation_ratios("trtllm")
    assert (trt["model"] / trt["published"] - 1.0).abs().median() < 0.06
    ratios = V.generation_ratios()
    assert len(ratios) >= 30
    err = (ratios["model"] / ratios["published"] - 1.0).abs()
    assert err.median() < 0.15
    # the H200 is never modelled slower than the H100 (more bandwidth, same FLOP/s)
    assert (ratios["model"] >= 0.99).all()
