"""Autoscaler policies behind one registry.

A policy is a small class registered by name with :func:`register` (or named
in a scenario as ``module:Class``).  It declares its parameters as a pydantic
model ``Params`` (validated when the scenario loads) and decides
``decide(observation) -> desired replicas``.  See ``docs/policies.md``.
"""

from sim.policies.fireworks import Fireworks
from sim.policies.hpa import Hpa
from sim.policies.keda import Keda
from sim.policies.kpa import Kpa
from sim.policies.predictive import Predictive
from sim.policies.ray_serve import RayServe
from sim.policies.registry import (
    Observation,
    Policy,
    PolicyParams,
    WindowMetrics,
    get_policy,
    policy_names,
    register,
)
from sim.policies.scheduled import Scheduled
from sim.policies.static import Static
from sim.policies.target_tracking import TargetTracking

__all__ = [
    "Fireworks",
    "Hpa",
    "Keda",
    "Kpa",
    "Observation",
    "Policy",
    "PolicyParams",
    "Predictive",
    "RayServe",
    "Scheduled",
    "Static",
    "TargetTracking",
    "WindowMetrics",
    "get_policy",
    "policy_names",
    "register",
]
