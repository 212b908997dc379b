"""Autoscaler policies behind one registry.

A policy is a small class registered by name with :func:`register`.  It
declares its parameters as a pydantic model ``Params`` (validated when the
scenario loads) and decides ``decide(observation) -> desired replicas``.
"""

from sim.policies.fireworks import Fireworks
from sim.policies.registry import Observation, Policy, get_policy, policy_names, register
from sim.policies.static import Static

__all__ = ["Fireworks", "Observation", "Policy", "Static", "get_policy", "policy_names", "register"]
