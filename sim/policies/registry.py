"""The policy registry: name -> class, refusing duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from sim.spec import Spec


@dataclass(frozen=True)
class Observation:
    """What a controller sees at a decision: only the present and the past."""

    t: float
    ready: int
    starting: int
    desired: int


class Policy:
    """Base class: ``Params`` is the policy's validated parameter model."""

    name: ClassVar[str] = ""

    class Params(Spec):
        policy: str

    def __init__(self, params: Params):
        self.params = params

    def initial_replicas(self) -> int:
        raise NotImplementedError

    def decide(self, obs: Observation) -> int:
        raise NotImplementedError


_REGISTRY: dict[str, type[Policy]] = {}

P = TypeVar("P", bound=type[Policy])


def register(name: str) -> Callable[[P], P]:
    """Class decorator: make a policy available to scenarios as ``policy: name``."""

    def deco(cls: P) -> P:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def policy_names() -> list[str]:
    return sorted(_REGISTRY)


def get_policy(name: str) -> type[Policy]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown policy {name!r} (known: {', '.join(policy_names())})"
        ) from None


def parse_params(doc: Any) -> Policy.Params:
    """Validate an ``autoscaler:`` mapping against its policy's ``Params``."""
    if not isinstance(doc, dict):
        raise ValueError("autoscaler must be a mapping with a 'policy' key")
    if "policy" not in doc:
        raise ValueError(f"autoscaler needs a 'policy' key (known: {', '.join(policy_names())})")
    cls = get_policy(doc["policy"])
    return cls.Params.model_validate(doc)
