"""GPU inventory by datacenter and accelerator type, and where a deployment lands.

Placement rules (SPEC §2, seed document): a deployment with a datacenter as
``region`` lives there; with no region it is pinned at creation to the
datacenter with the most GPUs of its type (ties by name); with a mega-region
(``US``, ``EUROPE``, ``APAC``) or ``GLOBAL`` it may use any datacenter of the
region — here the one with the most GPUs of its type, by the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from sim import catalog
from sim.errors import InputError


class Inventory:
    """GPUs per (datacenter, accelerator) — the scenario's, else the catalog's defaults."""

    def __init__(self, gpus: Mapping[tuple[str, str], int]):
        self.gpus = dict(gpus)

    @classmethod
    def from_scenario(cls, regions: Mapping[str, Mapping[str, int]] | None) -> Inventory:
        if regions is None:
            return cls(catalog.default_inventory())
        return cls({(dc, acc): n for dc, types in regions.items() for acc, n in types.items()})

    def datacenters_with(self, accelerator: str, candidates: list[str]) -> list[tuple[str, int]]:
        """``(datacenter, GPUs)`` of ``accelerator`` among ``candidates`` that have any."""
        return [
            (dc, self.gpus.get((dc, accelerator), 0))
            for dc in candidates
            if self.gpus.get((dc, accelerator), 0) > 0
        ]


def initial_datacenter(inventory: Inventory, accelerator: str, region: str | None) -> str:
    """The datacenter a deployment's replicas are placed in at creation."""
    candidates = catalog.placement_datacenters(region or "GLOBAL")
    offered = inventory.datacenters_with(accelerator, candidates)
    if not offered:
        where = region or "any datacenter"
        raise InputError(f"{where} has no {accelerator} GPUs in the inventory", where="region")
    # Most GPUs of the type first; ties by name.
    return min(offered, key=lambda item: (-item[1], item[0]))[0]
