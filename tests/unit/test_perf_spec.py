"""ShapeSpec (scenario key ``shape``) and build_shape."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sim.errors import InputError
from sim.perf import ShapeSpec, build_shape

L70 = "llama-v3p1-70b-instruct"


def test_spec_defaults_and_validation():
    spec = ShapeSpec(accelerator="H100_80GB", count=4)
    assert spec.precision is None and spec.speculative is None and spec.curve is None
    with pytest.raises(ValidationError, match=r"unknown accelerator 'H100' \(known: A100_80GB"):
        ShapeSpec(accelerator="H100")
    with pytest.raises(ValidationError):
        ShapeSpec(accelerator="H100_80GB", count=0)
    with pytest.raises(ValidationError):
        ShapeSpec(accelerator="H100_80GB", precision="FP16")
    with pytest.raises(ValidationError):
        ShapeSpec(accelerator="H100_80GB", gpus=2)  # unknown key
    with pytest.raises(ValidationError):
        ShapeSpec.model_validate({"accelerator": "H100_80GB",
                                  "speculative": {"kind": "draft", "acceptance_rate": 1.5}})


def test_build_from_spec_mapping_and_preset():
    a = build_shape(L70, ShapeSpec(accelerator="H100_80GB", count=4, precision="FP8"))
    b = build_shape(L70, {"accelerator": "H100_80GB", "count": 4, "precision": "FP8"})
    assert a.decode_step_time(8, 8000) == b.decode_step_time(8, 8000)
    preset = build_shape("gpt-oss-120b", "throughput", max_concurrency=64)
    assert (preset.accelerator, preset.gpus, preset.precision) == ("H100_80GB", 4, "FP4")
    assert preset.max_concurrency == 64
    with pytest.raises(InputError, match="unknown shape preset 'turbo'"):
        build_shape(L70, "turbo")
    with pytest.raises(InputError, match="unknown accelerator") as err:
        build_shape(L70, {"accelerator": "H100", "count": 4})
    assert err.value.where == "accelerator"


def test_speculative_and_scaling_override():
    spec = {"accelerator": "H200_141GB", "count": 4, "precision": "FP8",
            "speculative": {"kind": "ngram", "acceptance_rate": 0.6},
            "scaling": {"sigma": 0.2, "kappa": 0.0}}
    s = build_shape(L70, spec)
    assert s.speculative is not None and s.speculative.tokens == 4  # Fireworks' typical value
    assert s.scaling.capacity(4) == pytest.approx(4 / 1.6)
    # the default vllm profile prices tensor parallelism by its all-reduces, not the USL
    plain = build_shape(L70, {"accelerator": "H200_141GB", "count": 4, "precision": "FP8"})
    assert plain.scaling.capacity(4) == 4.0 and plain._roofline.comm_time(1) > 0.0
    trt = build_shape(L70, {"accelerator": "H200_141GB", "count": 4, "precision": "FP8"},
                      serving_engine="trtllm")
    assert trt.scaling.capacity(4) < 4.0


def test_curve_path_relative_to_base_dir(tmp_path):
    (tmp_path / "lt.csv").write_text("concurrency,output_tokens_per_s\n1,40\n16,500\n")
    s = build_shape(L70, {"accelerator": "H100_80GB", "count": 4, "precision": "FP8",
                          "curve": "lt.csv"}, base_dir=tmp_path)
    assert s.curve is not None and s.decode_step_time(16, 0) == pytest.approx(16 / 500)
    with pytest.raises(InputError, match="cannot read curve"):
        build_shape(L70, {"accelerator": "H100_80GB", "count": 4, "curve": "lt.csv"})


def test_shape_that_does_not_fit_from_a_spec():
    with pytest.raises(InputError, match="short by"):
        build_shape(L70, {"accelerator": "A100_80GB", "count": 1, "precision": "BF16"})
