"""Datacenters, mega-regions and default inventory (``data/datacenters.csv``).

A region name is ``GLOBAL``, a mega-region (``US``, ``EUROPE``, ``APAC``) or
a datacenter (``US_IOWA_1``).  The default inventory per datacenter and type
is an assumption (no provider publishes one): see docs/catalog.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import MappingProxyType

from sim.catalog._data import read_records, unknown

GLOBAL = "GLOBAL"
MEGA_REGIONS = ("US", "EUROPE", "APAC")


@dataclass(frozen=True)
class Datacenter:
    name: str
    mega_region: str
    inventory: MappingProxyType[str, int]  # default GPUs per accelerator type
    quota_by_default: MappingProxyType[str, bool]


@cache
def _load() -> dict[str, Datacenter]:
    rows: dict[str, list[dict[str, str]]] = {}
    for row in read_records("datacenters.csv"):
        rows.setdefault(row["datacenter"], []).append(row)
    out = {}
    for name, group in sorted(rows.items()):
        mega = {r["mega_region"] for r in group}
        if len(mega) != 1 or next(iter(mega)) not in MEGA_REGIONS:
            raise ValueError(f"datacenters.csv: {name} has mega-region {mega}")
        out[name] = Datacenter(
            name=name,
            mega_region=next(iter(mega)),
            inventory=MappingProxyType({r["accelerator"]: int(r["default_gpus"]) for r in group}),
            quota_by_default=MappingProxyType(
                {r["accelerator"]: r["quota_by_default"] == "yes" for r in group}
            ),
        )
    return out


def datacenters() -> dict[str, Datacenter]:
    """Every datacenter, by name (sorted)."""
    return dict(_load())


def get_datacenter(name: str) -> Datacenter:
    """The datacenter called ``name``, or an InputError listing the known ones."""
    try:
        return _load()[name]
    except KeyError:
        raise unknown("datacenter", name, tuple(_load())) from None


datacenter = get_datacenter


def is_datacenter(name: str) -> bool:
    """Whether ``name`` is a datacenter (not GLOBAL or a mega-region)."""
    return name in _load()


def mega_regions() -> dict[str, tuple[str, ...]]:
    """Datacenter names of each mega-region, and of ``GLOBAL``."""
    out = {m: tuple(d.name for d in _load().values() if d.mega_region == m) for m in MEGA_REGIONS}
    out[GLOBAL] = tuple(_load())
    return out


def region_names() -> tuple[str, ...]:
    return (GLOBAL, *MEGA_REGIONS, *_load())


def placement_datacenters(region: str) -> list[str]:
    """Datacenters a region name covers (sorted): all, a mega-region's, or just one."""
    groups = mega_regions()
    if region in groups:
        return list(groups[region])
    if region in _load():
        return [region]
    raise unknown("region", region, region_names())


def default_inventory() -> dict[tuple[str, str], int]:
    """``{(datacenter, accelerator): GPUs}`` used when a scenario gives no regions."""
    return {(name, acc): n for name, d in _load().items() for acc, n in d.inventory.items()}
