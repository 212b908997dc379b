"""Base class for validated, immutable specs (scenario sections).

Every spec refuses unknown keys and is frozen: a spec is a description of what
to simulate, never runtime state.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
