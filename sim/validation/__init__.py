"""Validation: the engines against each other, the calibration through the engine.

``python -m sim.validation.engines`` (fast against exact, docs/validation.md)
and ``python -m sim.validation.calibration`` (TensorRT-LLM's rows through the
exact engine, docs/throughput.md) regenerate their tables in place.
"""
