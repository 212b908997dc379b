"""The policy registry: name -> class, refusing duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError

from sim.spec import NestedError, Spec, nested


@dataclass(frozen=True)
class Observation:
    """What a controller sees at a decision: only the present and the past.

    Rates and means are averaged over the policy's own metrics window
    (``Policy.window_s``) ending now.
    """

    t: float
    ready: int  # replicas serving
    starting: int  # replicas pending or in a cold start
    desired: int  # the current target
    min_replicas: int
    max_replicas: int
    requests_per_s: float = 0.0  # attempts reaching the router (retries included)
    concurrent_requests: float = 0.0  # mean requests queued or in service
    prompt_tokens_per_s: float = 0.0
    output_tokens_per_s: float = 0.0
    capacity_per_replica: float = 1.0  # concurrent requests one replica holds
    idle_s: float = 0.0  # seconds since the last request reached the router


class Policy:
    """Base class: ``Params`` is the policy's validated parameter model."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[Spec]]
    sync_period_s: float = 15.0  # how often decide() runs
    scales_from_zero: bool = True  # the platform starts a replica when a request meets none
    window_s: float = 60.0  # metrics averaged over this window

    def __init__(self, params: Spec):
        self.params = params

    def initial_replicas(self) -> int:
        """Replicas the deployment starts with (before clamping to [min, max])."""
        raise NotImplementedError

    def decide(self, obs: Observation) -> int:
        """Desired replicas now (the control plane clamps to [min, max])."""
        raise NotImplementedError

    def scaled_from_zero(self, t: float) -> None:
        """The platform started a replica at ``t`` because a request met none (SPEC §2)."""


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
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r} (known: {', '.join(policy_names())})")
    return _REGISTRY[name]


def parse_params(doc: Any) -> Spec:
    """Validate an ``autoscaler:`` mapping against its policy's ``Params``."""
    if not isinstance(doc, dict):
        raise ValueError("autoscaler must be a mapping with a 'policy' key")
    if "policy" not in doc:
        raise ValueError(f"autoscaler needs a 'policy' key (known: {', '.join(policy_names())})")
    try:
        cls = get_policy(doc["policy"])
    except ValueError as exc:
        raise NestedError(["policy"], str(exc)) from None
    try:
        return cls.Params.model_validate(doc)
    except ValidationError as exc:
        raise nested(exc, doc) from None
