"""A policy of one's own, named in a scenario as ``module:Class``."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest

import sim
from sim.errors import InputError
from tests.policies.spike import spike_scenario

_names = itertools.count()

MODULE = '''
from typing import Literal
from pydantic import Field
from sim.policies import Observation, Policy, PolicyParams


class StepUp(Policy):
    """``low`` replicas, ``high`` from ``at`` seconds on."""

    class Params(PolicyParams):
        low: int = Field(1, ge=0)
        high: int = Field(3, ge=0)
        at: float = 600.0

    sync_period_s = 30.0

    def __init__(self, params):
        super().__init__(params)
        self.p = params

    def initial_replicas(self):
        return self.p.low

    def decide(self, obs: Observation) -> int:
        return self.p.high if obs.t >= self.p.at else self.p.low


class Doubler:
    """Not a Policy subclass: the protocol alone."""

    window_s = 30.0

    def __init__(self, params):
        self.seen = 0

    def decide(self, obs):
        self.seen += 1
        return 2 * max(obs.ready, 1) if obs.concurrent_requests > 8 * obs.ready else obs.ready


def not_a_class(obs):
    return 1


class NoDecide:
    pass


class BadInit:
    def __init__(self, a, b):
        pass

    def decide(self, obs):
        return 1


class Abstract(Policy):
    pass


class WrongParams:
    Params = dict

    def decide(self, obs):
        return 1
'''


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"capsim_user_policies_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_policy_subclass_with_its_own_params_runs(module: str):
    doc = spike_scenario({"policy": f"{module}:StepUp", "high": 4, "at": 900}, duration="30m")
    res = sim.run(doc)
    tl = res.timeline
    assert set(tl.loc[tl["t_end"] <= 900, "desired_replicas"]) == {1}
    assert set(tl.loc[tl["t_end"] > 930, "desired_replicas"]) == {4}
    autoscaler = res.summary["scenario"]["deployments"][0]["autoscaler"]
    assert autoscaler == {"policy": f"{module}:StepUp", "low": 1, "high": 4, "at": 900.0}
    # the resolved scenario loads again as it is
    assert sim.load_scenario(res.summary["scenario"]).spec.deployments[0].autoscaler.high == 4


def test_a_class_implementing_the_protocol_runs(module: str):
    res = sim.run(spike_scenario({"policy": f"{module}:Doubler"}, duration="40m"))
    assert res.timeline["ready_replicas"].max() >= 2


def test_unknown_keys_of_a_user_policy_are_refused(module: str):
    with pytest.raises(InputError, match=r"deployments\[0\]\.autoscaler\.hgih: unknown key"):
        sim.load_scenario(spike_scenario({"policy": f"{module}:StepUp", "hgih": 4}))
    with pytest.raises(InputError, match=r"autoscaler\.low: .*greater than or equal to 0"):
        sim.load_scenario(spike_scenario({"policy": f"{module}:StepUp", "low": -1}))
    with pytest.raises(InputError, match=r"autoscaler\.factor: unknown key"):
        sim.load_scenario(spike_scenario({"policy": f"{module}:Doubler", "factor": 2}))


@pytest.mark.parametrize(("ref", "reason"), [
    ("capsim_no_such_module:X", "cannot import module 'capsim_no_such_module'"),
    ("{m}:Missing", "has no 'Missing'"),
    ("{m}:not_a_class", "is not a class"),
    ("{m}:NoDecide", "is not a policy"),
    ("{m}:BadInit", "constructor must take one argument"),
    ("{m}:Abstract", "does not implement decide"),
    ("{m}:WrongParams", "Params must be a pydantic model"),
    ("{m}:", "is named 'module:Class'"),
])
def test_a_bad_reference_is_a_clear_input_error(module: str, ref: str, reason: str):
    doc = spike_scenario({"policy": ref.format(m=module)})
    with pytest.raises(InputError, match=reason) as err:
        sim.load_scenario(doc)
    assert err.value.where == "deployments[0].autoscaler.policy"


def test_a_module_that_fails_to_import_is_reported(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    name = f"capsim_broken_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        raise RuntimeError("no GPUs in this module")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="RuntimeError: no GPUs in this module"):
        sim.load_scenario(spike_scenario({"policy": f"{name}:X"}))


def test_a_module_in_the_current_directory_is_found(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    # `capsim run` is a console script: the current directory is not on sys.path
    name = f"capsim_cwd_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path
                                     if p not in ("", ".", str(tmp_path))])
    spec = sim.load_scenario(spike_scenario({"policy": f"{name}:StepUp"})).spec
    assert spec.deployments[0].autoscaler.high == 3
