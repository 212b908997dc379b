"""The same traffic priced per token (serverless), for comparison."""

from __future__ import annotations


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
