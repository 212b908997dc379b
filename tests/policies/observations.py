"""Observations built by hand, as the control plane would build them."""

from __future__ import annotations

from typing import Any

from sim.policies import Observation, Policy, WindowMetrics


def observe(
    policy: Policy | None = None,
    *,
    t: float = 0.0,
    ready: int = 1,
    desired: int | None = None,
    starting: int = 0,
    min_replicas: int = 0,
    max_replicas: int = 100,
    concurrent: float = 0.0,
    rps: float = 0.0,
    prompt: float = 0.0,
    output: float = 0.0,
    capacity: float = 10.0,
    idle: float = 0.0,
    stages: dict[str, int] | None = None,
    windows: dict[float, dict[str, float]] | None = None,
) -> Observation:
    """An observation at ``t``; every window ``policy`` asks for holds the same
    averages unless ``windows`` gives some by length (``{6.0: {"concurrent": 300}}``)."""
    stages = dict(stages or {})
    stages.setdefault("ready", ready)
    if starting and not any(k in stages for k in ("pending", "scheduling", "downloading",
                                                   "initializing")):
        stages["initializing"] = starting
    starting = sum(stages.get(k, 0) for k in ("pending", "scheduling", "downloading",
                                              "initializing"))
    base: dict[str, Any] = {"concurrent": concurrent, "rps": rps, "prompt": prompt,
                            "output": output}
    lengths = set() if policy is None else {policy.window_s, *policy.windows_s}
    lengths |= set(windows or {})
    averaged = {}
    for length in lengths:
        m = {**base, **(windows or {}).get(length, {})}
        averaged[length] = WindowMetrics(
            span_s=length, requests_per_s=m["rps"], concurrent_requests=m["concurrent"],
            prompt_tokens_per_s=m["prompt"], output_tokens_per_s=m["output"])
    main = averaged.get(policy.window_s) if policy is not None else None
    return Observation(
        t=t, ready=stages["ready"], starting=starting,
        desired=stages["ready"] + starting if desired is None else desired,
        min_replicas=min_replicas, max_replicas=max_replicas,
        requests_per_s=main.requests_per_s if main else rps,
        concurrent_requests=main.concurrent_requests if main else concurrent,
        prompt_tokens_per_s=main.prompt_tokens_per_s if main else prompt,
        output_tokens_per_s=main.output_tokens_per_s if main else output,
        capacity_per_replica=capacity, idle_s=idle, stages=stages, windows=averaged,
    )


def make(name: str, **params: Any) -> Policy:
    """A fresh policy of the registry, its params validated as a scenario's would be."""
    from sim.policies.registry import get_policy, parse_params

    spec = parse_params({"policy": name, **params})
    return get_policy(name)(spec)
