"""The scenario schema: validated, frozen specs with unit strings.

Each section's spec lives beside the code that uses it (``sim.perf.ShapeSpec``,
``sim.workload.TrafficSpec``, the policies' ``Params``); this module composes
them into a :class:`Scenario`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sim import limits as L
from sim.billing.spec import BillingSpec
from sim.fleet.spec import BackgroundSpec, ColdStartSpec, FaultSpec
from sim.perf import ShapeSpec
from sim.policies.registry import parse_params
from sim.spec import Spec
from sim.units import Duration
from sim.workload import TrafficSpec

PositiveDuration = Annotated[Duration, Field(gt=0, le=L.MAX_HORIZON_S)]
NonNegativeDuration = Annotated[Duration, Field(ge=0, le=L.MAX_HORIZON_S)]
Delay = Annotated[Duration, Field(gt=0, le=L.MAX_DELAY_S)]
Replicas = Annotated[int, Field(ge=0, le=L.MAX_REPLICAS)]


class ClientSpec(Spec):
    """How clients retry 429 and 503 (the provider's reliability guide: max_retries=5, base 1 s)."""

    max_retries: int = Field(
        5, ge=0, le=L.MAX_RETRIES, description="retries after the first attempt"
    )
    backoff_base: Delay = Field(
        1.0, validate_default=False, description="delay before the first retry"
    )
    backoff_max: Delay = Field(
        60.0, validate_default=False, description="cap on the exponential delay"
    )
    jitter: Literal["full", "none"] = Field("full", description="full: uniform in [0, delay]")


class SLOSpec(Spec):
    """Latency objectives a request must meet to count towards ``slo_attainment``."""

    ttft_p99: Delay | None = None
    tpot_p99: Delay | None = None
    e2e_p99: Delay | None = None


def _router_shorthand(value: Any) -> Any:
    return {"policy": value} if isinstance(value, str) else value


class RouterSpec(Spec):
    """Which ready replica takes a new request (``router: prefix_aware`` is short for
    ``router: {policy: prefix_aware}``)."""

    policy: Literal["least_loaded", "prefix_aware", "session", "round_robin", "random"] = (
        Field("least_loaded", description="least_loaded, prefix_aware, session, round_robin "
              "or random")
    )
    balance_abs: Annotated[int, Field(ge=0)] = Field(
        64, description="prefix_aware, session: a replica is overloaded when it has more than "
        "this many requests above the least loaded one ..."
    )
    balance_rel: Annotated[float, Field(ge=1.0, allow_inf_nan=False)] = Field(
        1.5, description="... and more than this many times as many"
    )


class DeploymentSpec(Spec):
    name: str = Field(min_length=1, max_length=L.MAX_NAME)
    model: str
    shape: ShapeSpec | str = Field(
        "throughput", description="a preset name (minimal, throughput, fast) or a shape"
    )
    region: str | None = Field(None, description="GLOBAL, a mega-region or a datacenter")
    min_replicas: Replicas = 0
    max_replicas: Replicas | None = Field(
        None, description="default: max(min_replicas, 1), as the provider's API"
    )
    autoscaler: Any = Field(default=None, description="a policy: {policy: static, replicas: N}")
    max_concurrency: Annotated[int, Field(ge=1, le=L.MAX_CONCURRENCY)] | None = Field(
        None, description="per replica"
    )
    serving_engine: str = Field(
        "vllm", min_length=1,
        description="the serving engine whose step-time profile prices iterations: vllm, "
        "sglang, trtllm, or a profile file written by capsim calibrate (*.json, relative to "
        "the scenario file)",
    )
    max_queue: int | None = Field(
        None, ge=0, le=L.MAX_QUEUE, description="router queue; beyond it: 429"
    )
    max_num_batched_tokens: Annotated[int, Field(ge=1, le=L.MAX_BATCHED_TOKENS)] | None = Field(
        None,
        description="tokens per iteration, decode tokens included (chunked prefill budget);"
        " default 2048 (vLLM's), at least max_concurrency",
    )
    kv_block_tokens: int = Field(16, ge=1, le=1024, description="KV cache block size (vLLM: 16)")
    kv_admission: Literal["reserve", "grow"] = Field(
        "reserve",
        description="reserve: prompt + output at admission; grow: blocks as tokens come,"
        " newest request preempted when out (exact engine; fast reserves)",
    )
    cold_start: ColdStartSpec = Field(default_factory=ColdStartSpec)
    cold_start_mode: Literal["503", "queue"] = Field(
        "503", description="503: refuse while no replica is ready; queue: buffer requests"
    )
    warm_start: bool = Field(
        True, description="replicas at t = 0 are already running (no cold start)"
    )
    router: Annotated[RouterSpec, BeforeValidator(_router_shorthand)] = Field(
        default_factory=RouterSpec, description="which ready replica takes a new request"
    )
    prefix_caching: bool = Field(
        True, description="replicas cache prompt blocks and skip their prefill on a hit "
        "(needs prefix information in the traffic)"
    )
    traffic: TrafficSpec

    @property
    def resolved_max_replicas(self) -> int:
        """``max_replicas``, else max(min_replicas, 1) as the provider's API — and never
        below the replicas the policy starts with."""
        if self.max_replicas is not None:
            return self.max_replicas
        start = getattr(self.autoscaler, "replicas", None) or getattr(
            self.autoscaler, "initial_replicas", None
        ) or 0
        return max(self.min_replicas, 1, int(start))

    @field_validator("autoscaler", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Spec | None:
        if value is None or isinstance(value, Spec):
            return value
        return parse_params(value)

    @model_validator(mode="after")
    def _bounds(self) -> DeploymentSpec:
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        budget, seqs = self.max_num_batched_tokens, self.max_concurrency
        if budget is not None and seqs is not None and budget < seqs:
            # vLLM refuses the same (SchedulerConfig: max_num_batched_tokens >= max_num_seqs)
            raise ValueError(
                f"max_num_batched_tokens ({budget}) must be at least max_concurrency ({seqs})"
            )
        if self.autoscaler is None:
            object.__setattr__(self, "autoscaler", parse_params({"policy": "fireworks"}))
        return self


class Scenario(Spec):
    name: str = Field(min_length=1, max_length=L.MAX_NAME)
    engine: Literal["fast", "exact"] = Field(
        "fast",
        description="fast: a few events per request; exact: every iteration, as vLLM v1"
        " schedules them",
    )
    seed: int = Field(0, ge=0, le=2**63 - 1)
    duration: PositiveDuration
    warmup: NonNegativeDuration = Field(
        0.0, validate_default=False, description="excluded from latency statistics"
    )
    timeline_interval: Annotated[
        Duration, Field(ge=L.MIN_TIMELINE_INTERVAL_S, le=L.MAX_HORIZON_S)
    ] = Field(
        60.0, validate_default=False, description="timeline row length"
    )
    regions: dict[str, dict[str, Annotated[int, Field(ge=0, le=L.MAX_GPUS)]]] | None = Field(
        None, description="GPUs per datacenter and accelerator (default: the catalog's)"
    )
    deployments: list[DeploymentSpec] = Field(min_length=1, max_length=L.MAX_DEPLOYMENTS)
    clients: ClientSpec = Field(default_factory=ClientSpec)
    slo: SLOSpec = Field(default_factory=SLOSpec)
    billing: BillingSpec = Field(default_factory=BillingSpec)
    background_demand: list[BackgroundSpec] = Field(
        default_factory=list, max_length=L.MAX_LIST,
        description="GPUs taken by other tenants over time",
    )
    faults: FaultSpec = Field(default_factory=FaultSpec)
    large_run_ok: bool = Field(
        False, description="run without the warnings of a large run's estimate (as --yes)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g}s) must be shorter than duration ({self.duration:g}s)"
            )
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique: {', '.join(dupes)}")
        return self
