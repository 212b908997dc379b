"""The pricing rules of a run: which price applies, and the billing lines of its replicas.

* a GPU-hour costs the scenario's ``billing.gpu_hour_usd`` for its type, else the
  catalog's on-demand price;
* a deployment pinned to one datacenter pays ``region_premium`` × that price;
* reserved GPUs cost ``reserved_gpu_hour_usd``, else the on-demand price;
* serverless tokens: :func:`sim.billing.serverless.price_tokens`.

See ``docs/billing.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from sim import catalog
from sim.billing.ondemand import USAGE_COLUMNS, bill
from sim.billing.spec import BillingSpec


class Life(Protocol):
    """What billing reads of one replica's life."""

    id: int
    deployment: int
    datacenter: str
    gpus: int
    allocated_s: float
    ready_s: float
    stopped_s: float


class Billed(Protocol):
    """What billing reads of a deployment (a ``DeploymentSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def region(self) -> str | None: ...


def gpu_hour_price(billing: BillingSpec, accelerator: str) -> float:
    """USD per on-demand GPU-hour of ``accelerator``: the scenario's, else the catalog's."""
    override = billing.gpu_hour_usd.get(accelerator)
    if override is not None:
        return override
    return catalog.get_accelerator(accelerator).usd_per_gpu_hour


def reserved_price(billing: BillingSpec, accelerator: str) -> float:
    """USD per reserved GPU-hour (no reserved price is published: default on-demand)."""
    return billing.reserved_gpu_hour_usd.get(accelerator, gpu_hour_price(billing, accelerator))


def pinned_to_datacenter(region: str | None) -> bool:
    """Whether the region premium applies: the deployment names one datacenter."""
    return region is not None and catalog.is_datacenter(region)


def billing_table(
    billing: BillingSpec,
    lives: Sequence[Life],
    deployments: Sequence[Billed],
    accelerators: Sequence[str],
    end_s: float,
) -> pd.DataFrame:
    """Billing lines: one per replica that was billed, one per reservation.

    ``accelerators[d]`` is the GPU type of deployment ``d``.  A replica is billed
    from ready (``bill_from: ready``) or from allocation, to its stop or ``end_s``;
    one that never got there is not billed.
    """
    rows = []
    for life in lives:
        start = life.ready_s if billing.bill_from == "ready" else life.allocated_s
        if math.isnan(start):
            continue  # never accepted a request (or never got GPUs): not billed
        dep = deployments[life.deployment]
        acc = accelerators[life.deployment]
        premium = billing.region_premium if pinned_to_datacenter(dep.region) else 1.0
        rows.append({
            "deployment": dep.name, "replica": life.id, "datacenter": life.datacenter,
            "accelerator": acc, "gpus": life.gpus, "start_s": start,
            "end_s": life.stopped_s if not math.isnan(life.stopped_s) else end_s,
            "usd_per_gpu_hour": gpu_hour_price(billing, acc) * premium,
        })
    usage = pd.DataFrame(rows, columns=USAGE_COLUMNS)
    rates = {acc: reserved_price(billing, acc) for acc in billing.reserved}
    return bill(usage, reserved=dict(billing.reserved), reserved_usd_per_gpu_hour=rates,
                end_s=end_s)


def reserved_share(billing: BillingSpec, lines: pd.DataFrame) -> float:
    """What the GPU-seconds a reservation covered for these lines cost at its price."""
    share = 0.0
    for acc, seconds in lines.groupby("accelerator")["reserved_gpu_seconds"].sum().items():
        share += float(seconds) * reserved_price(billing, str(acc)) / 3600.0
    return share


def cost_of(lines: pd.DataFrame, kind: str) -> float:
    """USD of the lines of one ``kind`` (``on_demand`` or ``reserved``)."""
    return float(lines.loc[lines["kind"] == kind, "cost_usd"].sum())
