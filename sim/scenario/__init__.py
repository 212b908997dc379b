"""Scenario files: schema, loading, overrides."""

from sim.scenario.loader import LoadedScenario, load_scenario
from sim.scenario.schema import DeploymentSpec, Scenario

__all__ = ["DeploymentSpec", "LoadedScenario", "Scenario", "load_scenario"]
