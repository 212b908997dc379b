"""Serving-engine profiles and the one price of an iteration (Shape.iteration_time)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.errors import InputError
from sim.perf import Shape, build_shape
from sim.perf.params import TRTLLM, VLLM_BF16
from sim.perf.profiles import BUILTIN, ENGINES, get_profile, load_profile, profile_document

SHAPES = [
    ("llama-v3p1-8b-instruct", "H100_80GB", 1, "BF16"),
    ("llama-v3p1-8b-instruct", "A100_80GB", 2, "FP8"),
    ("llama-v3p1-70b-instruct", "H100_80GB", 4, "BF16"),
    ("gpt-oss-120b", "H200_141GB", 1, None),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("spec", SHAPES)
def test_decode_step_is_an_iteration_without_prefill(engine, spec):
    shape = Shape(*spec, serving_engine=engine)
    for batch in (1, 7, 64, 200):
        kv = batch * 1500.0
        assert shape.iteration_time(batch, kv, 0) == pytest.approx(
            shape.decode_step_time(batch, kv), rel=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("spec", SHAPES)
def test_full_chunk_prefill_matches_prefill_seconds(engine, spec):
    """A prompt of exactly one chunk, alone: prefill_seconds + the per-iteration overhead."""
    shape = Shape(*spec, serving_engine=engine)
    chunk = shape.prefill_chunk
    alone = shape.iteration_time(0, 0.0, chunk)
    assert alone == pytest.approx(
        float(shape.prefill_seconds(chunk)) + shape.params.step_overhead_s, rel=1e-9)


@pytest.mark.parametrize("spec", SHAPES)
def test_mixed_iteration_is_one_pass(spec):
    """Riding a prefill chunk along decodes costs more than the decodes, and less
    than the decodes and the chunk in two passes (the weights are read once)."""
    shape = Shape(*spec)
    for batch, chunk in ((8, 256), (40, 547), (120, 2048)):
        kv = batch * 1000.0
        decode = shape.decode_step_time(batch, kv)
        mixed = shape.iteration_time(batch, kv, chunk)
        apart = decode + shape.iteration_time(0, 0.0, chunk)
        assert decode < mixed < apart


def test_iteration_time_grows_with_every_argument():
    shape = Shape("llama-v3p1-8b-instruct", "H100_80GB")
    base = shape.iteration_time(32, 32 * 800.0, 512, 0.0)
    assert shape.iteration_time(33, 32 * 800.0, 512) >= base
    assert shape.iteration_time(32, 32 * 900.0, 512) > base
    assert shape.iteration_time(32, 32 * 800.0, 600) > base
    assert shape.iteration_time(32, 32 * 800.0, 512, 512 * 1000.0) > base


def test_throughput_uses_the_decode_step():
    """Closed-loop throughput is built from decode_step_time and prefill_seconds."""
    shape = Shape("llama-v3p1-8b-instruct", "H100_80GB")
    c, i, o = 16, 1000, 200
    cycle = c * float(shape.prefill_seconds(i)) + (o - 1) * shape.iteration_time(
        c, c * (i + o / 2), 0)
    assert shape.throughput(c, i, o) == pytest.approx(c * o / cycle, rel=1e-12)
    assert shape.max_throughput(i, o) >= shape.throughput(c, i, o)


def test_default_engine_is_vllm_and_engines_differ():
    vllm = Shape("llama-v3p1-8b-instruct", "H100_80GB")
    trt = Shape("llama-v3p1-8b-instruct", "H100_80GB", serving_engine="trtllm")
    assert vllm.serving_engine == "vllm" and vllm.params == VLLM_BF16
    assert trt.params == TRTLLM
    assert vllm.decode_step_time(32, 32e3) != trt.decode_step_time(32, 32e3)
    # vLLM keeps a tenth of HBM unused (gpu_memory_utilization 0.9)
    assert vllm.kv_capacity_tokens < trt.kv_capacity_tokens


def test_tensor_parallel_pays_all_reduces():
    one = Shape("llama-v3p1-8b-instruct", "H100_80GB", 1)
    two = Shape("llama-v3p1-8b-instruct", "H100_80GB", 2)
    assert two._roofline.comm_time(64) > 0.0 == one._roofline.comm_time(64)
    # twice the bandwidth, but not twice as fast: the all-reduces do not shrink
    assert one.decode_step_time(32, 32e3) / 2 < two.decode_step_time(32, 32e3)


def test_unknown_engine_is_an_input_error():
    with pytest.raises(InputError, match="unknown serving_engine 'tgi'"):
        Shape("llama-v3p1-8b-instruct", "H100_80GB", serving_engine="tgi")


def test_profile_file_round_trip(tmp_path):
    fitted = VLLM_BF16.with_(step_overhead_s=0.003, bandwidth_efficiency=0.7)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(profile_document("vllm", {"BF16": fitted}, {"note": "x"})))
    profile = load_profile(path)
    assert profile.params("BF16") == fitted
    assert profile.params("FP8") == BUILTIN["vllm"].params("FP8")
    shape = build_shape("llama-v3p1-8b-instruct", {"accelerator": "H100_80GB"},
                        serving_engine="mine.json", base_dir=tmp_path)
    assert shape.params == fitted
    assert get_profile(str(path)).params("BF16") == fitted


@pytest.mark.parametrize("text, reason", [
    ("{", "not JSON"),
    ('{"format": "other"}', "not a capsim profile"),
    ('{"format": "capsim-profile/1", "base": "tgi", "paths": {}}', "unknown base profile"),
    ('{"format": "capsim-profile/1", "paths": {"BF16": {"warp": 1}}}', "unknown constant"),
    ('{"format": "capsim-profile/1", "paths": {"BF16": {"overlap": -1}}}', "must be a number"),
    ('{"format": "capsim-profile/1", "paths": {"FP16": {}}}', "unknown precision 'FP16'"),
    ('{"format": "capsim-profile/1", "paths": {}}', "no precision path"),
    ('{"format": "capsim-profile/1", "paths": {"BF16": {"prefill_chunk": 0.5}}}',
     "prefill_chunk must be an integer"),
])
def test_bad_profile_file(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as err:
        load_profile(path)
    assert err.value.file == str(path)


def test_gemm_efficiency_rises_with_tokens():
    roof = Shape("llama-v3p1-8b-instruct", "H100_80GB")._roofline
    rates = [roof.gemm_flops(t) for t in (1, 8, 64, 2048)]
    assert np.all(np.diff(rates) >= 0) and rates[-1] <= roof.flops
