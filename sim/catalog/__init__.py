"""What capsim knows: accelerators, models, shape presets, regions, prices.

Data files live in ``sim/catalog/data`` with their sources in header lines;
docs/catalog.md explains the choices.  Lookups (``accelerator``, ``model``,
``datacenter``, ``get_preset``, ``placement_datacenters``) raise
:class:`InputError` naming the unknown value and listing the known ones.
"""

from sim.catalog.accelerators import (
    Accelerator,
    accelerator,
    accelerator_names,
    all_accelerators,
    get_accelerator,
)
from sim.catalog.models import Model, ServerlessPrice, all_models, get_model, model, model_names
from sim.catalog.precision import PRECISIONS, Precision
from sim.catalog.presets import PRESET_NAMES, Preset, all_presets, get_preset
from sim.catalog.regions import (
    GLOBAL,
    MEGA_REGIONS,
    Datacenter,
    datacenter,
    datacenters,
    default_inventory,
    get_datacenter,
    is_datacenter,
    mega_regions,
    placement_datacenters,
    region_names,
)
from sim.catalog.tables import accelerators_table, prices_table, regions_table, shapes_table

__all__ = [
    "GLOBAL",
    "MEGA_REGIONS",
    "PRECISIONS",
    "PRESET_NAMES",
    "Accelerator",
    "Datacenter",
    "Model",
    "Precision",
    "Preset",
    "ServerlessPrice",
    "accelerator",
    "accelerator_names",
    "accelerators_table",
    "all_accelerators",
    "all_models",
    "all_presets",
    "datacenter",
    "datacenters",
    "default_inventory",
    "get_accelerator",
    "get_datacenter",
    "get_model",
    "get_preset",
    "is_datacenter",
    "mega_regions",
    "model",
    "model_names",
    "placement_datacenters",
    "prices_table",
    "region_names",
    "regions_table",
    "shapes_table",
]
