"""The ``billing:`` section of a scenario."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim import limits as L
from sim.spec import Spec

# Fireworks pricing, as transcribed on 2026-10-07: "Region-restricted deployments
# priced at 1.5x premium" (https://fireworks.ai/pricing, transcribed in
# https://github.com/api-evangelist/fireworks-ai/blob/main/plans/fireworks-ai-plans-pricing.yml).
REGION_PREMIUM = 1.5


Price = Annotated[float, Field(ge=0, le=L.MAX_USD)]
"""USD per GPU-hour or per million tokens."""


class ServerlessPrice(Spec):
    """USD per 1M tokens."""

    input: Price
    cached_input: Price | None = Field(
        None, description="default: the catalog's, else 50% of input (provider rule)"
    )
    output: Price


class BillingSpec(Spec):
    gpu_hour_usd: dict[str, Price] = Field(
        default_factory=dict, description="overrides of the catalog's on-demand prices"
    )
    reserved: dict[str, Annotated[int, Field(ge=0, le=L.MAX_GPUS)]] = Field(
        default_factory=dict, description="GPUs per accelerator paid for the whole run"
    )
    reserved_gpu_hour_usd: dict[str, Price] = Field(
        default_factory=dict,
        description="price of reserved GPUs (default: the on-demand price; none is published)",
    )
    region_premium: Annotated[float, Field(ge=1.0, le=10.0)] = Field(
        REGION_PREMIUM, description="multiplier for deployments pinned to one datacenter"
    )
    bill_from: Literal["ready", "allocated"] = Field(
        "ready", description="ready: from accepting requests (provider rule); allocated: from GPUs"
    )
    serverless: dict[str, ServerlessPrice] = Field(
        default_factory=dict, description="USD per 1M tokens, overriding the catalog"
    )
    prefix_cache_hit_rate: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.0, description="fraction of input tokens billed at the cached-input price, for "
        "traffic without prefix information (otherwise the simulated hit rate)"
    )
