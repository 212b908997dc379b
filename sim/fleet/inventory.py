"""GPU inventory: GPUs per (datacenter, accelerator), shared by every deployment.

Capacity comes from the scenario's ``regions`` (else the catalog's default
inventory).  Other tenants take GPUs too (``background_demand``): their claim
is a step function of time, served from free GPUs only — a tenant never evicts
a replica, it takes GPUs as they free up.  A datacenter in an outage offers
nothing.  Allocation never exceeds capacity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from sim import catalog
from sim.errors import InputError

Key = tuple[str, str]  # (datacenter, accelerator)


class Inventory:
    def __init__(self, capacity: Mapping[Key, int]):
        self.capacity = dict(capacity)
        self.held: dict[Key, int] = defaultdict(int)  # by replicas
        self.held_by: dict[tuple[str, str, int], int] = defaultdict(int)  # (dc, acc, deployment)
        self.background_claim: dict[Key, int] = defaultdict(int)
        self.background: dict[Key, int] = defaultdict(int)  # GPUs the claim currently holds
        self.down: set[str] = set()

    @classmethod
    def from_scenario(cls, regions: Mapping[str, Mapping[str, int]] | None) -> Inventory:
        """The scenario's ``regions`` (GPUs per datacenter and type), else the catalog's."""
        if regions is None:
            return cls(catalog.default_inventory())
        return cls({(dc, acc): n for dc, types in regions.items() for acc, n in types.items()})

    def candidates(self, region: str | None, acc: str) -> list[str]:
        """Datacenters of ``region`` (GLOBAL when None) that have any ``acc`` GPUs."""
        dcs = catalog.placement_datacenters(region or "GLOBAL")
        found = [dc for dc in dcs if self.capacity.get((dc, acc), 0) > 0]
        if not found:
            raise InputError(f"{region or 'no datacenter'} has no {acc} GPUs in the inventory")
        return sorted(found)

    def free(self, dc: str, acc: str) -> int:
        if dc in self.down:
            return 0
        key = (dc, acc)
        return self.capacity.get(key, 0) - self.held[key] - self.background[key]

    def datacenters(self) -> list[str]:
        return sorted({dc for dc, _ in self.capacity})

    def choose(self, candidates: Iterable[str], acc: str, gpus: int) -> str | None:
        """The candidate with the most free GPUs of ``acc`` that fits ``gpus``; ties by name."""
        best: tuple[int, str] | None = None
        for dc in candidates:
            free = self.free(dc, acc)
            if free >= gpus and (best is None or (-free, dc) < (-best[0], best[1])):
                best = (free, dc)
        return None if best is None else best[1]

    def allocate(self, dc: str, acc: str, gpus: int, deployment: int) -> None:
        if self.free(dc, acc) < gpus:
            raise RuntimeError(f"over-allocation of {acc} in {dc}")  # a bug, never input
        self.held[(dc, acc)] += gpus
        self.held_by[(dc, acc, deployment)] += gpus

    def release(self, dc: str, acc: str, gpus: int, deployment: int) -> None:
        self.held[(dc, acc)] -= gpus
        self.held_by[(dc, acc, deployment)] -= gpus
        self.settle_background()

    def set_background(self, dc: str, acc: str, gpus: int) -> None:
        """Other tenants now want ``gpus`` GPUs of ``acc`` in ``dc``."""
        self.background_claim[(dc, acc)] = gpus
        self.settle_background()

    def settle_background(self) -> None:
        """Background holds min(claim, what it holds + what is free)."""
        for key, claim in self.background_claim.items():
            if key[0] in self.down:
                continue
            room = self.capacity.get(key, 0) - self.held[key]
            self.background[key] = max(0, min(claim, room))

    def set_down(self, dc: str, down: bool) -> None:
        if down:
            self.down.add(dc)
        else:
            self.down.discard(dc)
            self.settle_background()
