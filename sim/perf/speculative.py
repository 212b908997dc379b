"""Speculative decoding: a draft proposes k tokens, the target verifies k + 1.

With per-token acceptance rate α (independent), a verification pass yields
``(1 − α^(k+1)) / (1 − α)`` tokens on average (Leviathan et al., "Fast
Inference from Transformers via Speculative Decoding", ICML 2023, eq. 1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sim.spec import Spec


class SpeculativeSpec(Spec):
    """``{kind: draft|ngram, tokens: 4, acceptance_rate: 0.7}``."""

    kind: Literal["draft", "ngram"]
    # Fireworks: --draft-token-count "Typically set to 4" (deployments/speculative-decoding).
    tokens: int = Field(4, ge=1, le=64)
    acceptance_rate: float = Field(ge=0.0, le=1.0)
    # Cost of one draft token as a fraction of a target decode step; None = the
    # default (PerfParams.draft_cost_ratio for a draft model, 0 for n-gram lookup).
    draft_cost: float | None = Field(None, ge=0.0, le=10)

    @property
    def expected_tokens_per_step(self) -> float:
        a, k = self.acceptance_rate, self.tokens
        if a >= 1.0:
            return float(k + 1)
        return (1.0 - a ** (k + 1)) / (1.0 - a)

    def draft_cost_ratio(self, default: float) -> float:
        if self.draft_cost is not None:
            return self.draft_cost
        return default if self.kind == "draft" else 0.0
