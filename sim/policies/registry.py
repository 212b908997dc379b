"""The policy registry and the protocol every autoscaler implements.

A policy is a small class registered by name (:func:`register`) or named in a
scenario as ``module:Class``.  Its ``Params`` (a pydantic model) are validated
when the scenario loads; the control plane calls ``decide(observation)`` every
``sync_period_s`` seconds and clamps the answer to ``[min_replicas,
max_replicas]``.  The :class:`Observation` holds only what a real controller
sees: metrics averaged over the policy's own windows, replicas by stage, the
time — never future arrivals.  See ``docs/policies.md``.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.spec import NestedError, Spec, nested

#: stages of a live replica, in lifecycle order (``stopped`` ones are not counted)
LIVE_STAGES = ("pending", "scheduling", "downloading", "initializing", "ready", "draining")


@dataclass(frozen=True)
class WindowMetrics:
    """Deployment-wide averages over one window ending at the observation's time."""

    span_s: float = 0.0  # seconds covered: the window, or less at the start of a run
    requests_per_s: float = 0.0  # attempts reaching the router (retries included)
    concurrent_requests: float = 0.0  # mean requests queued or in service
    prompt_tokens_per_s: float = 0.0
    output_tokens_per_s: float = 0.0
    arrivals_per_s: float = 0.0  # first attempts (retries excluded): the users' demand


@dataclass(frozen=True)
class Observation:
    """What a controller sees at a decision: only the present and the past.

    The flat rates and means are averaged over the policy's own metrics window
    (``Policy.window_s``) ending now; ``windows`` holds the same averages over
    every window the policy asked for (``window_s`` and ``Policy.windows_s``).
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
    arrivals_per_s: float = 0.0  # first attempts (retries excluded)
    mean_output_tokens: float = 0.0  # per request served so far (0: none yet)
    #: output tokens/s one replica sustains at saturation, at the sizes served so far (0: unknown)
    saturation_tokens_per_s: float = 0.0
    idle_s: float = 0.0  # seconds since the last request reached the router
    stages: Mapping[str, int] = field(default_factory=dict)  # live replicas by stage
    windows: Mapping[float, WindowMetrics] = field(default_factory=dict)  # by length (s)

    def window(self, seconds: float) -> WindowMetrics:
        """The averages over the window of ``seconds`` (one the policy asked for)."""
        for length, metrics in self.windows.items():
            if abs(length - seconds) <= 1e-9:
                return metrics
        known = ", ".join(f"{w:g}s" for w in sorted(self.windows)) or "none"
        raise KeyError(f"no {seconds:g}s window in this observation (observed: {known}); "
                       "list it in the policy's windows_s")

    def stage(self, name: str) -> int:
        """Live replicas in lifecycle stage ``name`` (see ``LIVE_STAGES``)."""
        return int(self.stages.get(name, 0))


def capacity_load(obs: Observation, window_s: float | None = None) -> float:
    """The load in replicas at saturation: what share of one replica's capacity is asked for.

    The users' demand in output tokens per second — first attempts per second
    (retries excluded) × the mean output tokens of the requests served so far —
    over the output tokens per second one replica generates at saturation for
    the sizes served so far (``Shape.max_throughput``).  Before any request has
    been served the sizes are unknown, and the load is the mean number of
    requests queued or in service over what one replica holds at once.
    ``window_s`` picks one of the observation's windows (default: its own).
    """
    m: Observation | WindowMetrics = obs.window(window_s) if window_s is not None else obs
    if obs.saturation_tokens_per_s > 0 and obs.mean_output_tokens > 0:
        return m.arrivals_per_s * obs.mean_output_tokens / obs.saturation_tokens_per_s
    return m.concurrent_requests / max(obs.capacity_per_replica, 1e-12)


class PolicyParams(Spec):
    """Base of a policy's parameters: the ``policy`` key names it."""

    policy: str


class Policy:
    """Base class of autoscaler policies.

    Subclasses set ``Params`` (a :class:`~sim.spec.Spec`, validated when the
    scenario loads) and implement :meth:`decide`.  The control plane reads
    ``sync_period_s`` (how often to decide), ``window_s`` and ``windows_s``
    (which averages to observe) and ``scales_from_zero`` (whether the platform
    starts a replica when a request meets none).
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = PolicyParams
    sync_period_s: float = 15.0  # how often decide() runs
    scales_from_zero: bool = True  # the platform starts a replica when a request meets none
    window_s: float = 60.0  # the flat Observation metrics are averaged over this window
    windows_s: tuple[float, ...] = ()  # further windows averaged into Observation.windows

    def __init__(self, params: Any):
        self.params = params

    def initial_replicas(self) -> int:
        """Replicas the deployment starts with (the control plane clamps to [min, max])."""
        return 0

    def decide(self, obs: Observation) -> int:
        """Desired replicas now (the control plane clamps to [min, max])."""
        raise NotImplementedError

    def scaled_from_zero(self, t: float) -> None:
        """The platform started a replica at ``t`` because a request met none."""


def clamp(value: int, low: int, high: int) -> int:
    """``value`` within [low, high] (``high`` wins when they cross)."""
    return max(min(low, high), min(high, int(value)))


_REGISTRY: dict[str, type[Policy]] = {}
_USER: dict[str, type[Policy]] = {}

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
    """The class of a registered policy, or of a user policy named ``module:Class``."""
    if isinstance(name, str) and ":" in name:
        if name not in _USER:
            _USER[name] = _load_user_policy(name)
        return _USER[name]
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"unknown policy {name!r} (known: {', '.join(policy_names())}, "
            "or a class of your own as 'module:Class')"
        )
    return _REGISTRY[name]


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        cwd = os.getcwd()
        if exc.name == top and cwd not in sys.path:
            # `capsim run` is a console script: the current directory is not on
            # sys.path as it is for `python -m`; look there too
            sys.path.append(cwd)
            try:
                return importlib.import_module(module_name)
            except ModuleNotFoundError:
                pass
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ValueError(
            f"importing module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def _load_user_policy(ref: str) -> type[Policy]:
    """Import ``module:Class`` and check it implements the policy protocol."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ValueError(f"a policy of your own is named 'module:Class' (got {ref!r})")
    module = _import(module_name)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not inspect.isclass(obj):
        raise ValueError(f"{ref!r} is not a class")
    cls: type = obj
    if issubclass(cls, Policy):
        if cls.decide is Policy.decide:
            raise ValueError(f"{ref!r} subclasses Policy but does not implement decide()")
    elif not callable(getattr(cls, "decide", None)):
        raise ValueError(
            f"{ref!r} is not a policy: subclass sim.policies.Policy or implement "
            "decide(observation) -> int"
        )
    base = getattr(cls, "Params", PolicyParams)
    if not (inspect.isclass(base) and issubclass(base, BaseModel)):
        raise ValueError(f"{ref!r}: Params must be a pydantic model (subclass PolicyParams)")
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__annotations__": {"policy": str},
        "policy": ref,
        "model_config": ConfigDict(extra="forbid", frozen=True),
    }
    params = type(base.__name__, (base,), namespace)
    bases = (cls,) if issubclass(cls, Policy) else (cls, Policy)
    wrapped = type(cls.__name__, bases, {"Params": params, "name": ref,
                                         "__module__": cls.__module__})
    try:
        inspect.signature(wrapped).bind(object())
    except TypeError:
        raise ValueError(f"{ref!r}: its constructor must take one argument, the "
                         "validated params") from None
    except ValueError:  # no signature available (a builtin): let the call decide
        pass
    return wrapped


def parse_params(doc: Any) -> Any:
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
