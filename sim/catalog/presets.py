"""Deployment-shape presets ``minimal``, ``throughput``, ``fast`` per model.

From ``data/presets.csv``.  gpt-oss-120b's are Fireworks' published shapes;
the others are chosen by the rules in :mod:`sim.perf.presets` (documented in
docs/catalog.md), and a test checks that the file still matches the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sim.catalog._data import read_records, unknown
from sim.catalog.models import get_model
from sim.catalog.precision import Precision, check_precision

PRESET_NAMES = ("minimal", "throughput", "fast")


@dataclass(frozen=True)
class Preset:
    model: str
    preset: str
    accelerator: str
    count: int
    precision: Precision
    source: str


@cache
def _load() -> dict[tuple[str, str], Preset]:
    out = {}
    for row in read_records("presets.csv"):
        p = Preset(
            model=row["model"],
            preset=row["preset"],
            accelerator=row["accelerator"],
            count=int(row["count"]),
            precision=check_precision(row["precision"]),
            source=row["source"],
        )
        out[(p.model, p.preset)] = p
    return out


def all_presets() -> list[Preset]:
    """Every preset of every model."""
    return list(_load().values())


def get_preset(model: str, preset: str) -> Preset:
    """The preset ``preset`` of ``model``; unknown names raise InputError."""
    get_model(model)
    try:
        return _load()[(model, preset)]
    except KeyError:
        raise unknown("shape preset", preset, PRESET_NAMES) from None
