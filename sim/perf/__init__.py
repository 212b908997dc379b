"""Throughput of a replica: roofline + USL scaling, or measured curves.

Public: :class:`Shape`, :class:`ScalingModel`, :class:`ShapeSpec`,
:func:`build_shape`, :class:`MeasuredCurve`, :class:`SpeculativeSpec`,
:class:`PerfParams` and the calibrated :data:`DEFAULT_PARAMS`.
Formulas, sources and the calibration table: docs/throughput.md.
"""

from sim.perf.curve import MeasuredCurve
from sim.perf.params import DEFAULT as DEFAULT_PARAMS
from sim.perf.params import PerfParams
from sim.perf.scaling import ScalingModel
from sim.perf.shape import Shape
from sim.perf.spec import ScalingSpec, ShapeSpec, build_shape
from sim.perf.speculative import SpeculativeSpec

__all__ = [
    "DEFAULT_PARAMS",
    "MeasuredCurve",
    "PerfParams",
    "ScalingModel",
    "ScalingSpec",
    "Shape",
    "ShapeSpec",
    "SpeculativeSpec",
    "build_shape",
]
