"""Roofline shapes: memory, rates, the closed-loop throughput formula, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.catalog.accelerators import GiB
from sim.errors import InputError
from sim.perf import DEFAULT_PARAMS, Shape

L70, L8, OSS, DS = ("llama-v3p1-70b-instruct", "llama-v3p1-8b-instruct", "gpt-oss-120b",
                    "deepseek-v3")


def test_spec_example():
    shape = Shape(model=L70, accelerator="H100_80GB", count=4, precision="FP8")
    x = shape.throughput(concurrency=32, input_tokens=1000, output_tokens=200)
    best = shape.max_throughput(input_tokens=1000, output_tokens=200)
    assert 0 < x <= best
    assert (shape.model, shape.accelerator, shape.gpus, shape.precision) == (
        L70, "H100_80GB", 4, "FP8")
    assert shape.max_concurrency == DEFAULT_PARAMS.max_concurrency == 256
    assert shape.prefill_chunk == 2048


def test_precision_halves_weight_bytes():
    bf16, fp8 = (Shape(L8, "H100_80GB", 1, p) for p in ("BF16", "FP8"))
    assert bf16.weight_bytes == pytest.approx(8.03e9 * 2)
    assert fp8.weight_bytes == bf16.weight_bytes / 2
    assert bf16.kv_bytes_per_token == 2 * fp8.kv_bytes_per_token  # FP8 shapes cache FP8
    assert bf16.kv_bytes_per_token == 2048 * 32 * 2
    assert Shape(L8, "B200_180GB", 1, "FP4").weight_bytes == pytest.approx(8.03e9 * 4.25 / 8)


def test_default_precision_is_native():
    assert Shape(L8, "H100_80GB").precision == "BF16"
    assert Shape(OSS, "H100_80GB").precision == "FP4"
    assert Shape(DS, "B200_180GB", 8).precision == "FP8"


def test_gpt_oss_keeps_non_expert_weights_bf16():
    s = Shape(OSS, "H200_141GB", 1)
    assert s.weight_bytes / GiB == pytest.approx(60.8, rel=0.03)  # published checkpoint size


def test_moe_reads_active_params_at_batch_one_and_all_experts_at_large_batch():
    s = Shape(DS, "B200_180GB", 8)
    rl = s._roofline
    assert rl.weights_read(1) == pytest.approx(37e9, rel=0.01)  # FP8: 1 byte per active param
    assert rl.weights_read(4096) == pytest.approx(s.weight_bytes, rel=1e-6)
    assert rl.weights_read(1) < rl.weights_read(8) < rl.weights_read(64)
    dense = Shape(L70, "H200_141GB", 1, "FP8")._roofline
    assert dense.weights_read(1) == dense.weights_read(512) == dense.weight_bytes


def test_mla_cache_is_replicated_across_tensor_parallel_gpus():
    four, eight = Shape(DS, "B200_180GB", 4), Shape(DS, "B200_180GB", 8)
    assert eight.kv_bytes_per_token == 2 * four.kv_bytes_per_token == 2 * 4 * 576 * 61
    assert Shape(L70, "H100_80GB", 8, "FP8").kv_bytes_per_token == 2048 * 80  # 8 KV heads: split


def test_kv_capacity_after_weights_and_reserve():
    s = Shape(L70, "H100_80GB", 2, "FP8")
    free = 2 * 80 * GiB * (1 - DEFAULT_PARAMS.memory_reserve) - 70.6e9
    assert s.kv_capacity_tokens == math.floor(free / (2048 * 80))


def test_sliding_window_cache_is_reserved_per_sequence():
    few, many = (Shape(OSS, "H200_141GB", 1, max_concurrency=n) for n in (1, 256))
    window = 1024 * 18 * 128  # bytes per sequence at FP8 KV
    assert few.kv_capacity_tokens - many.kv_capacity_tokens == pytest.approx(
        255 * window / few.kv_bytes_per_token, abs=1)


def test_kv_capacity_limits_concurrency():
    s = Shape(L70, "H100_80GB", 1, "FP8")  # weights nearly fill the GPU
    limit = s.concurrency_limit(1000, 1000)
    assert 1 <= limit < s.max_concurrency
    assert limit == s.kv_capacity_tokens // 2000
    assert s.throughput(limit, 1000, 1000) == s.throughput(10 * limit, 1000, 1000)
    assert s.throughput(limit - 1, 1000, 1000) < s.throughput(limit, 1000, 1000)
    assert s.max_throughput(1000, 1000) == pytest.approx(s.throughput(limit, 1000, 1000))


def test_throughput_formula():
    s = Shape(L70, "H200_141GB", 2, "FP8")
    c, i, o = 48, 700, 300
    cycle = c * i / s.prefill_rate(i) + (o - 1) * s.decode_step_time(c, c * (i + o / 2))
    assert s.throughput(c, i, o) == pytest.approx(c * o / cycle)
    assert s.throughput(0, i, o) == 0.0


def test_request_larger_than_cache_gets_zero_throughput():
    s = Shape(L70, "H100_80GB", 1, "FP8")
    assert s.throughput(1, s.kv_capacity_tokens, 10) == 0.0
    assert s.max_throughput(s.kv_capacity_tokens, 10) == 0.0


def test_step_table_is_the_engine_form_of_decode_step_time():
    s = Shape(L70, "H100_80GB", 4, "FP8")
    big_m, m1, big_c, c1 = s.step_table(64)
    assert len(big_m) == len(big_c) == 65 and big_m[0] == big_c[0] == 0.0
    for b, kv in ((1, 500.0), (17, 30_000.0), (64, 250_000.0)):
        assert max(big_m[b] + kv * m1, big_c[b] + kv * c1) == pytest.approx(
            s.decode_step_time(b, kv))


def test_prefill_seconds_matches_prefill_rate():
    s = Shape(L8, "H100_80GB", 1, "FP8")
    tokens = np.array([10, 1000, 20_000])
    secs = s.prefill_seconds(tokens)
    assert secs.shape == (3,)
    assert secs == pytest.approx(tokens / np.array([s.prefill_rate(t) for t in tokens]))
    assert s.prefill_rate(20_000) < s.prefill_rate(1000) < s.prefill_rate()  # attention grows


def test_prefill_is_compute_bound():
    s = Shape(L70, "H100_80GB", 4, "FP8")
    chunk = s.prefill_chunk
    # a chunk's time less its tensor-parallel all-reduces is its math
    math_s = chunk / s.prefill_rate() - s._roofline.comm_time(chunk)
    flops_rate = chunk / math_s * 2 * 70.6e9
    effective = 4 * 1979e12 * DEFAULT_PARAMS.efficiency("H100_80GB") * s.scaling.capacity(4) / 4
    effective *= chunk / (chunk + DEFAULT_PARAMS.gemm_half_tokens)
    assert flops_rate == pytest.approx(effective, rel=0.05)  # the rest: attention


def test_more_gpus_scale_sublinearly():
    one, two, four = (Shape(L8, "H100_80GB", n, "FP8") for n in (1, 2, 4))
    t = [s.decode_step_time(1, 1000) for s in (one, two, four)]
    assert t[0] > t[1] > t[2] > t[0] / 4


def test_speculative_decoding():
    plain = Shape(L70, "H200_141GB", 2, "FP8")
    good = Shape(L70, "H200_141GB", 2, "FP8",
                 speculative={"kind": "draft", "tokens": 4, "acceptance_rate": 0.8})
    useless = Shape(L70, "H200_141GB", 2, "FP8",
                    speculative={"kind": "draft", "tokens": 4, "acceptance_rate": 0.0})
    ngram = Shape(L70, "H200_141GB", 2, "FP8",
                  speculative={"kind": "ngram", "tokens": 4, "acceptance_rate": 0.8})
    assert good.speculative is not None
    assert good.speculative.expected_tokens_per_step == pytest.approx((1 - 0.8**5) / 0.2)
    assert good.decode_step_time(1, 1000) < plain.decode_step_time(1, 1000)
    assert useless.decode_step_time(1, 1000) > plain.decode_step_time(1, 1000)
    assert ngram.decode_step_time(1, 1000) < good.decode_step_time(1, 1000)  # no draft model
    # at a large, compute-bound batch verifying 5 tokens per request costs more than it gains
    assert good.decode_step_time(256, 256 * 1100) > plain.decode_step_time(256, 256 * 1100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "llama-70b", "accelerator": "H100_80GB"}, "unknown model 'llama-70b'"),
        ({"model": L70, "accelerator": "H100"}, "unknown accelerator 'H100' (known: A100_80GB"),
        ({"model": L70, "accelerator": "H100_80GB", "count": 0}, "count must be an integer ≥ 1"),
        ({"model": L70, "accelerator": "H100_80GB", "count": 2, "precision": "FP16"},
         "unknown precision 'FP16' (known: BF16, FP8, FP4)"),
        ({"model": L70, "accelerator": "H100_80GB", "count": 2, "max_concurrency": 0},
         "max_concurrency must be an integer ≥ 1"),
    ],
)
def test_bad_shapes(kwargs, message):
    with pytest.raises(InputError) as err:
        Shape(**kwargs)
    assert message in str(err.value)


def test_shape_that_does_not_fit_says_by_how_much():
    with pytest.raises(InputError) as err:
        Shape(L70, "H100_80GB", 1, "BF16")
    text = str(err.value)
    assert text.startswith("llama-v3p1-70b-instruct BF16 needs 131.5 GiB of weights + ")
    assert "on 1 × H100_80GB (80 GiB each" in text
    short = float(text.rsplit("short by ", 1)[1].split()[0])
    usable = 80 * (1 - DEFAULT_PARAMS.memory_reserve)
    kv = DEFAULT_PARAMS.min_kv_tokens * 2048 * 80 * 2 / GiB
    assert short == pytest.approx(70.6e9 * 2 / GiB + kv - usable, abs=0.06)
    with pytest.raises(InputError, match="short by"):
        Shape(DS, "H100_80GB", 8)


# --- properties ---------------------------------------------------------------

SHAPES = [
    (L8, "A100_80GB", 1, "BF16"), (L8, "H100_80GB", 2, "FP8"), (L70, "H100_80GB", 1, "FP8"),
    (L70, "H200_141GB", 4, "FP8"), (L70, "A100_80GB", 2, "BF16"), (OSS, "H100_80GB", 1, "FP4"),
    (OSS, "B200_180GB", 2, "FP4"), (DS, "B200_180GB", 4, "FP8"), (DS, "H200_141GB", 8, "FP8"),
]
_BUILT: dict[tuple[str, str, int, str], Shape] = {}


def _shape(key: tuple[str, str, int, str]) -> Shape:
    if key not in _BUILT:
        _BUILT[key] = Shape(*key)
    return _BUILT[key]


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(SHAPES), i=st.integers(1, 8000), o=st.integers(1, 4000))
def test_throughput_non_decreasing_in_concurrency_up_to_the_cap(key, i, o):
    s = _shape(key)
    limit = s.concurrency_limit(i, o)
    points = sorted({1, 2, 3, max(1, limit // 3), max(1, limit // 2), max(1, limit), limit + 5})
    xs = [s.throughput(c, i, o) for c in points]
    assert all(b >= a * (1 - 1e-12) for a, b in itertools.pairwise(xs))
    assert s.max_throughput(i, o) == pytest.approx(max(xs), rel=1e-9) or limit == 0


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(SHAPES), b=st.integers(1, 255), kv=st.floats(0, 2e6))
def test_step_time_increases_with_batch_and_cache(key, b, kv):
    s = _shape(key)
    assert s.decode_step_time(b + 1, kv) >= s.decode_step_time(b, kv) > 0
    assert s.decode_step_time(b, kv + 1000) > s.decode_step_time(b, kv)


def test_iteration_time_contract() -> None:
    """iteration_time: 0 for an empty pass, the weight-read floor, monotone in every argument."""
    from sim.perf import Shape

    s = Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1, precision="FP8")
    floor = s.weight_bytes / s._roofline.bandwidth
    assert s.iteration_time(0, 0, 0) == 0.0
    assert s.iteration_time(0, 0, 2) >= floor
    assert s.iteration_time(1, 10, 0) >= floor
    assert s.iteration_time(4, 4000, 0) == s.decode_step_time(4, 4000)
    base = (8, 8000.0, 512, 0.0)
    for i in range(4):
        bigger = list(base)
        bigger[i] = bigger[i] * 2 + 100
        assert s.iteration_time(*bigger) > s.iteration_time(*base)
