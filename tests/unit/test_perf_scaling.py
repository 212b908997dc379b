"""USL fitting: synthetic data is recovered; TensorRT-LLM 70B rows are fitted sensibly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.perf import ScalingModel


@settings(max_examples=50, deadline=None)
@given(sigma=st.floats(0.0, 0.5), kappa=st.floats(0.0, 0.05), lam=st.floats(10, 1e5))
def test_recovers_synthetic_usl(sigma, kappa, lam):
    truth = ScalingModel(sigma, kappa, lam)
    n = [1, 2, 4, 8, 16]
    fit = ScalingModel.fit(n, truth.predict(n))
    # exact up to round-off (a κ of 1e-7 may be dropped in favour of the simpler law)
    assert fit.predict(n) == pytest.approx(truth.predict(n), rel=1e-5)
    assert fit.sigma == pytest.approx(sigma, abs=1e-4)
    assert fit.kappa == pytest.approx(kappa, abs=1e-5)
    assert fit.lam == pytest.approx(lam, rel=1e-9)


@settings(max_examples=50, deadline=None)
@given(sigma=st.floats(0.0, 0.5), kappa=st.floats(0.0, 0.05), lam=st.floats(10, 1e5))
def test_recovers_lambda_without_a_one_gpu_point(sigma, kappa, lam):
    truth = ScalingModel(sigma, kappa, lam)
    n = [2, 4, 8, 16]
    fit = ScalingModel.fit(n, truth.predict(n))
    assert fit.predict(n) == pytest.approx(truth.predict(n), rel=1e-5)
    assert fit.predict(1) == pytest.approx(lam, rel=1e-4)
    assert fit.sigma == pytest.approx(sigma, abs=1e-4)
    assert fit.kappa == pytest.approx(kappa, abs=1e-5)


def test_noisy_points_give_a_close_fit():
    rng = np.random.default_rng(7)
    truth = ScalingModel(0.08, 0.004, 1000.0)
    n = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    x = truth.predict(n) * (1 + 0.01 * rng.standard_normal(len(n)))
    fit = ScalingModel.fit(n, x)
    assert fit.predict(64) == pytest.approx(truth.predict(64), rel=0.1)


def test_spec_example_trtllm_70b_h200():
    # TensorRT-LLM v0.17, Llama 3.1 70B FP8 on H200, 1000/1000: TP 1, 2, 4 (data/benchmarks)
    fit = ScalingModel.fit([1, 2, 4], [2823.45, 5164.76, 8911.29])
    assert fit.lam == pytest.approx(2823.45)
    assert 0 < fit.sigma < 0.2 and fit.kappa >= 0
    assert fit.predict([1, 2, 4]) == pytest.approx([2823.45, 5164.76, 8911.29], rel=0.03)
    assert fit.predict(8) == pytest.approx(13181.24, rel=0.10)  # published TP 8: a hold-out


def test_two_points_fit_contention_only():
    fit = ScalingModel.fit([1, 2], [100.0, 180.0])
    assert fit.kappa == 0 and fit.sigma == pytest.approx(2 * 100 / 180 - 1)


def test_superlinear_data_clamps_to_linear():
    fit = ScalingModel.fit([1, 2, 4], [100.0, 210.0, 430.0])
    assert fit.sigma == 0 and fit.kappa == 0


def test_capacity_and_peak():
    m = ScalingModel(0.05, 0.002)
    assert m.capacity(1) == 1.0
    assert m.capacity(8) == pytest.approx(8 / (1 + 0.05 * 7 + 0.002 * 56))
    assert m.peak_gpus() == pytest.approx(np.sqrt(0.95 / 0.002))
    assert ScalingModel(0.1, 0.0).peak_gpus() == float("inf")


@pytest.mark.parametrize(
    ("gpus", "tps"),
    [([1], [100.0]), ([2, 2], [1.0, 2.0]), ([1, 2], [100.0, -1.0]), ([0, 2], [1.0, 2.0]),
     ([1, 2, 3], [1.0, 2.0])],
)
def test_bad_fit_input(gpus, tps):
    with pytest.raises(InputError):
        ScalingModel.fit(gpus, tps)


def test_negative_coefficients_refused():
    with pytest.raises(InputError):
        ScalingModel(-0.1, 0.0)
