"""Loading scenarios: YAML or a dict → a validated :class:`Scenario`, or one clear error.

Every failure becomes an :class:`~sim.errors.InputError` naming the file, the key
path (``deployments[0].shape.accelerator``) and the reason.  The checks that
need the catalog and the disk — known names, shapes that fit in memory, trace
files that exist and parse — run here too, so a scenario that loads will run.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim import catalog
from sim.errors import InputError
from sim.fleet.inventory import Inventory
from sim.perf import build_shape
from sim.scenario.schema import Scenario
from sim.spec import format_validation_error
from sim.workload import validate_traffic


class LoadedScenario:
    """A validated scenario with the folder its relative paths are resolved from."""

    def __init__(self, spec: Scenario, base_dir: Path, source: str):
        self.spec = spec
        self.base_dir = base_dir
        self.source = source

    def resolved(self) -> dict[str, Any]:
        """The fully resolved scenario (defaults included), as plain data."""
        return self.spec.model_dump(mode="json")


def _set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Apply ``--set deployments[0].max_queue=10`` (or ``deployments.0.max_queue``)."""
    parts = [p for p in re.split(r"\.|\[(\d+)\]", dotted) if p]
    if not parts:
        raise InputError("empty key in --set", where=dotted)
    node: Any = doc
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise InputError(f"no list item {part}", where=dotted)
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise InputError("cannot set a key inside a scalar value", where=dotted)


def apply_overrides(doc: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Set each dotted key path of ``overrides`` in ``doc`` (in place), as ``--set`` does."""
    for key, value in overrides.items():
        _set_path(doc, key, value)


def parse_override(text: str) -> tuple[str, Any]:
    """``"seed=3"`` → ``("seed", 3)``; the value is read as YAML."""
    if "=" not in text:
        raise InputError(f"--set needs key=value (got {text!r})")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # a scenario or sweep file; traces are read elsewhere
MAX_DEPTH = 32  # levels of nesting in a scenario document
MAX_NODES = 200_000  # values in a document, aliases counted as often as they are used


def read_document(path: str | Path) -> Any:
    """A YAML file as plain data, or an InputError: missing, unreadable, not UTF-8,
    too large, not YAML, nested too deeply or too many values."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InputError(f"file too large for a scenario ({size:,} bytes; at most "
                             f"{MAX_DOCUMENT_BYTES:,})", file=str(path))
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not a UTF-8 text file (byte 0x{data[exc.start]:02x} cannot be "
                         "decoded)", file=str(path), where=f"line {line}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(f"not valid YAML: {problem}", file=str(path), where=where) from None
    except RecursionError:
        raise InputError(f"nested too deeply (at most {MAX_DEPTH} levels)",
                         file=str(path)) from None
    try:
        check_document_shape(doc)
    except InputError as err:
        raise err.with_file(str(path)) from None
    return doc


def check_document_shape(doc: Any) -> None:
    """Refuse a document nested deeper than :data:`MAX_DEPTH` or holding more than
    :data:`MAX_NODES` values (YAML aliases counted at each use), without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InputError(f"too many values ({MAX_NODES:,} at most, YAML aliases "
                             "counted at each use)")
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                raise InputError(f"nested too deeply (at most {MAX_DEPTH} levels)")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)


def read_source(source: str | Path | Mapping[str, Any], base_dir: str | Path | None = None,
                mapping_label: str = "<scenario>") -> tuple[Any, str, Path]:
    """(the document — a YAML file read, or a deep copy of a mapping —, its label for
    error lines, the folder its relative paths resolve against: ``base_dir``, else the
    file's folder or the current one).  Either is checked for size and depth first."""
    if isinstance(source, Mapping):
        try:
            check_document_shape(source)
        except InputError as err:
            raise err.with_file(mapping_label) from None
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
        return copy.deepcopy(dict(source)), mapping_label, folder
    path = Path(source)
    return read_document(path), str(path), Path(base_dir) if base_dir is not None else path.parent


def load_scenario(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    base_dir: str | Path | None = None,
    check_files: bool = True,
) -> LoadedScenario:
    """Load and validate a scenario from a YAML path or a mapping.

    ``overrides`` maps dotted key paths to values (``{"seed": 3}``).  Relative
    trace paths are resolved against the YAML file's folder (or ``base_dir``).
    """
    doc, label, folder = read_source(source, base_dir)
    try:
        if not isinstance(doc, dict):
            raise InputError("a scenario must be a mapping of keys to values", where="scenario")
        apply_overrides(doc, overrides or {})
        try:
            spec = Scenario.model_validate(doc)
        except ValidationError as exc:
            raise format_validation_error(exc, doc) from None
        _check_references(spec, folder, check_files)
    except InputError as err:
        raise err.with_file(label) from None
    return LoadedScenario(spec, folder, label)


def _check_references(spec: Scenario, folder: Path, check_files: bool) -> None:
    """Names that need the catalog, shapes that must fit, traces that must parse."""
    if spec.regions is not None:
        for dc, types in spec.regions.items():
            where = f"regions.{dc}"
            try:
                catalog.datacenter(dc)
                for acc in types:
                    catalog.accelerator(acc)
            except InputError as err:
                err.where = err.where or where
                raise
    for i, bg in enumerate(spec.background_demand):
        _at(f"background_demand[{i}].datacenter", catalog.datacenter, bg.datacenter)
        _at(f"background_demand[{i}].accelerator", catalog.accelerator, bg.accelerator)
    for i, outage in enumerate(spec.faults.outages):
        _at(f"faults.outages[{i}].datacenter", catalog.datacenter, outage.datacenter)
    inventory = Inventory.from_scenario(spec.regions)
    for key in spec.billing.gpu_hour_usd:
        _at(f"billing.gpu_hour_usd.{key}", catalog.accelerator, key)
    for key in spec.billing.reserved:
        _at(f"billing.reserved.{key}", catalog.accelerator, key)
    for key in spec.billing.serverless:
        _at(f"billing.serverless.{key}", catalog.model, key)
    for i, dep in enumerate(spec.deployments):
        prefix = f"deployments[{i}]"
        _at(f"{prefix}.model", catalog.model, dep.model)
        if dep.region is not None:
            _at(f"{prefix}.region", catalog.placement_datacenters, dep.region)
        shape = _at(
            f"{prefix}.shape",
            lambda d=dep: build_shape(
                d.model, d.shape, max_concurrency=d.max_concurrency, base_dir=folder,
                serving_engine=d.serving_engine,
            ),
        )
        _at(f"{prefix}.region", inventory.candidates, dep.region, shape.accelerator)
        if check_files:
            _at(f"{prefix}.traffic", lambda d=dep: validate_traffic(d.traffic, folder))


def _at(where: str, check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except InputError as err:
        if err.file is None and err.where is None:
            err.where = where
        elif err.file is None and err.where is not None and not err.where.startswith(where):
            err.where = f"{where}.{err.where}"
        raise
