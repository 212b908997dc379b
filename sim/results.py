"""``Result``: what one run produced, as tables and a summary; no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Result:
    """The outcome of :func:`sim.run`.

    ``summary`` is documented in ``docs/metrics.md``; ``requests`` has one row per request,
    ``timeline`` one row per interval and deployment, ``billing`` one line per
    replica interval.  ``scenario`` is the fully resolved scenario;
    ``allocation`` holds GPUs per datacenter, accelerator and holder (a
    deployment, or ``background`` for other tenants) at each interval's end.
    ``requests_sample``: when the request table was streamed to a file
    (``sim.run(requests_sink=...)``, as ``capsim run`` does), ``requests`` is
    empty and this holds a uniform sample of its rows, for plots.
    """

    summary: dict[str, Any]
    requests: pd.DataFrame
    timeline: pd.DataFrame
    billing: pd.DataFrame
    scenario: dict[str, Any] = field(default_factory=dict)
    allocation: pd.DataFrame = field(default_factory=pd.DataFrame)
    requests_sample: pd.DataFrame | None = None

    @property
    def request_rows(self) -> pd.DataFrame:
        """``requests``, or, when the table was streamed to disk, a uniform sample of it."""
        if self.requests.empty and self.requests_sample is not None:
            return self.requests_sample
        return self.requests

    @property
    def total(self) -> dict[str, Any]:
        return dict(self.summary["total"])

    def deployment(self, name: str) -> dict[str, Any]:
        return dict(self.summary["deployments"][name])
