"""The same traffic priced per token (serverless), for comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.billing.spec import BillingSpec


def serverless_cost(
    input_tokens: float,
    output_tokens: float,
    *,
    input_usd: float,
    cached_input_usd: float,
    output_usd: float,
    cache_hit_rate: float = 0.0,
) -> float:
    """USD for the tokens at per-1M-token prices; ``cache_hit_rate`` of input is cached."""
    cached = input_tokens * cache_hit_rate
    fresh = input_tokens - cached
    return (fresh * input_usd + cached * cached_input_usd + output_tokens * output_usd) / 1e6


def price_tokens(billing: BillingSpec, model: str, input_tokens: float, output_tokens: float,
                 cache_hit_rate: float | None = None) -> float | None:
    """``input_tokens`` and ``output_tokens`` of ``model`` at its serverless price: the
    scenario's ``billing.serverless`` entry, else the catalog's; None when neither lists one.
    Cached input is billed at 50 % of input unless a cached price is given (the provider's
    rule), on ``cache_hit_rate`` of the input tokens (default: the fixed
    ``billing.prefix_cache_hit_rate``; a run passes the rate it simulated when the traffic
    carries prefix information)."""
    from sim import catalog

    price = billing.serverless.get(model)
    listed = catalog.get_model(model).serverless
    if price is not None:
        input_usd, output_usd, cached = price.input, price.output, price.cached_input
    elif listed is not None:
        input_usd, output_usd, cached = listed.input, listed.output, listed.cached_input
    else:
        return None
    if cached is None:
        cached = 0.5 * input_usd
    return serverless_cost(
        input_tokens, output_tokens, input_usd=input_usd, cached_input_usd=cached,
        output_usd=output_usd,
        cache_hit_rate=billing.prefix_cache_hit_rate if cache_hit_rate is None
        else cache_hit_rate,
    )
