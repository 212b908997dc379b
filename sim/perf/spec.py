"""Scenario-facing shape specification and :func:`build_shape`.

``shape: {accelerator: H100_80GB, count: 4, precision: FP8}`` or a preset
name (``shape: throughput``).  Optional keys: ``speculative`` ({kind, tokens,
acceptance_rate}), ``curve`` (a measured load-test CSV, relative to the
scenario file) and ``scaling`` ({sigma, kappa}, overriding the USL defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from sim.catalog.accelerators import accelerator_names
from sim.catalog.precision import Precision
from sim.catalog.presets import get_preset
from sim.errors import InputError
from sim.limits import MAX_GPUS_PER_REPLICA
from sim.perf.params import DEFAULT
from sim.perf.profiles import DEFAULT_ENGINE, get_profile
from sim.perf.scaling import ScalingModel
from sim.perf.shape import Shape
from sim.perf.speculative import SpeculativeSpec
from sim.spec import Spec


class ScalingSpec(Spec):
    """USL coefficients overriding the calibrated defaults."""

    sigma: float = Field(DEFAULT.sigma, ge=0.0, le=1.0)
    kappa: float = Field(DEFAULT.kappa, ge=0.0, le=1.0)


class ShapeSpec(Spec):
    accelerator: str
    count: int = Field(1, ge=1, le=MAX_GPUS_PER_REPLICA)
    precision: Precision | None = None  # None: the model's native precision
    speculative: SpeculativeSpec | None = None
    curve: str | None = None
    scaling: ScalingSpec | None = None

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, value: str) -> str:
        known = accelerator_names()
        if value not in known:
            raise ValueError(f"unknown accelerator {value!r} (known: {', '.join(known)})")
        return value


def build_shape(
    model: str,
    spec: ShapeSpec | str | Mapping[str, Any],
    *,
    max_concurrency: int | None = None,
    base_dir: Path | None = None,
    serving_engine: str = DEFAULT_ENGINE,
) -> Shape:
    """The :class:`Shape` of ``model`` for a spec, a mapping or a preset name.

    ``serving_engine`` names a built-in profile or a profile file (relative
    to ``base_dir``), see :mod:`sim.perf.profiles`.
    """
    if isinstance(spec, str):
        preset = get_preset(model, spec)
        spec = ShapeSpec(
            accelerator=preset.accelerator, count=preset.count, precision=preset.precision
        )
    elif not isinstance(spec, ShapeSpec):
        try:
            spec = ShapeSpec.model_validate(dict(spec))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or None
            raise InputError(str(err["msg"]).removeprefix("Value error, "), where=where) from None
    curve = None
    if spec.curve is not None:
        curve = Path(spec.curve)
        if base_dir is not None and not curve.is_absolute():
            curve = Path(base_dir) / curve
    scaling = None
    if spec.scaling is not None:
        scaling = ScalingModel(spec.scaling.sigma, spec.scaling.kappa)
    return Shape(
        model=model,
        accelerator=spec.accelerator,
        count=spec.count,
        precision=spec.precision,
        speculative=spec.speculative,
        max_concurrency=max_concurrency,
        curve=curve,
        scaling=scaling,
        serving_engine=get_profile(serving_engine, base_dir),
    )
