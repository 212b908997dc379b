"""Sweep files: a scenario plus ``sweep:`` axes and ``seeds:``, expanded into runs.

A sweep file is a scenario YAML with two more top-level keys::

    sweep:                                   # axes: key path -> list of values
      deployments[0].autoscaler.replicas: [1, 2, 3]
      deployments[0].shape: [minimal, throughput]
    seeds: 5                                 # seeds seed, seed+1, …, seed+4 (or a list)

The cartesian product of the axes is the set of *points*; each point is run
once per seed.  Two more forms say what a planner means: ``zip:`` (a mapping
of axes whose lists have one length) moves its axes together, the i-th value
of each in the same point; and an axis given as a mapping, each value to axes
of its own, makes those axes depend on it (a shape preset with its own
replica range)::

    sweep:
      deployments[0].shape:
        minimal:
          deployments[0].autoscaler.replicas: [3, 4]
        fast:
          deployments[0].autoscaler.replicas: [1, 2]
      zip:
        deployments[0].traffic.arrivals.rps: [20, 40]
        deployments[0].max_replicas: [4, 8]
  A point is named by a *run id* derived from its overrides
alone (see :func:`run_id`), so the same point has the same id in every sweep
and on every machine.  Every axis value and every combination is validated
here, before anything runs; a bad one is one :class:`~sim.errors.InputError`
naming the file and the axis.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import InputError
from sim.estimate import estimate
from sim.scenario.loader import LoadedScenario, load_scenario, read_document, read_source

SWEEP_KEYS = ("sweep", "seeds")
MAX_SLUG = 60


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a point of the grid and a seed."""

    run_id: str
    seed: int
    overrides: dict[str, Any]  # axis key path -> value, as written in the sweep file
    scenario: dict[str, Any]  # the fully resolved scenario, seed included

    @property
    def key(self) -> tuple[str, int]:
        return (self.run_id, self.seed)


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: its axes, its seeds and every run, in grid order × seed."""

    name: str
    source: str
    base_dir: Path
    axes: dict[str, list[Any]]
    seeds: list[int]
    runs: list[RunSpec] = field(repr=False)

    @property
    def points(self) -> list[tuple[str, dict[str, Any]]]:
        """``(run_id, overrides)`` of each grid point, in grid order."""
        seen: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            seen.setdefault(run.run_id, run.overrides)
        return list(seen.items())

    def manifest(self) -> dict[str, Any]:
        """What ``sweep.json`` records: enough to know which runs belong to the sweep."""
        return {
            "name": self.name,
            "source": self.source,
            "axes": self.axes,
            "seeds": self.seeds,
            "runs": [
                {"run_id": run_id, "overrides": overrides} for run_id, overrides in self.points
            ],
        }


def is_sweep_document(doc: Any) -> bool:
    return isinstance(doc, dict) and any(key in doc for key in SWEEP_KEYS)


def is_sweep_file(path: str | Path) -> bool:
    """Whether a YAML file has ``sweep:`` or ``seeds:`` at its top level."""
    return is_sweep_document(read_document(path))


def _slug_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return str(value)
    return None  # a mapping or a list: named by the hash alone


def run_id(overrides: Mapping[str, Any]) -> str:
    """A stable, readable id of a grid point: ``replicas=2,shape=minimal-3f2a9c1b``.

    The readable part lists the last name of each key path with its value
    (mappings and lists are left out), sorted by key path; the 8 hex digits
    are the SHA-256 of the overrides as canonical JSON (keys sorted), which
    makes the id unique and independent of the order of the axes in the
    file.  A sweep with no axes has the single point ``base``.
    """
    if not overrides:
        return "base"
    canonical = json.dumps(overrides, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    parts = []
    for key in sorted(overrides):
        leaf = [p for p in re.split(r"[.\[\]]+", key) if p and not p.isdigit()]
        name = leaf[-1] if leaf else key
        shown = _slug_value(overrides[key])
        parts.append(name if shown is None else f"{name}={shown}")
    slug = re.sub(r"[^A-Za-z0-9._=+,-]+", "_", ",".join(parts))
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rstrip("_,")
    return f"{slug}-{digest}"


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


ZIP = "zip"


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InputError("an axis must be a key path such as deployments[0].shape",
                         where=where)
    key = key.strip()
    if key in ("seed", "seeds"):
        raise InputError("seeds are not an axis: use the top-level 'seeds:' key",
                         where=f"{where}.{key}")
    if key.split(".")[0].split("[")[0] in SWEEP_KEYS:
        raise InputError("an axis cannot set 'sweep' or 'seeds'", where=f"{where}.{key}")
    return key


def _check_values(values: Any, where: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise InputError("must be a non-empty list of values (or, for values with axes of "
                         "their own, a mapping of each value to its axes)", where=where)
    canon = [json.dumps(v, sort_keys=True, default=str) for v in values]
    dupes = sorted({c for c in canon if canon.count(c) > 1})
    if dupes:
        raise InputError(f"duplicate value {dupes[0]}", where=where)
    return values


# A factor is the list of partial points one entry of ``sweep:`` contributes; the
# points of the sweep are the product of its factors, each point merged left to right.
# Each leaf is (context, key, value): the overrides a value is checked with.
Factor = list[dict[str, Any]]
Leaf = tuple[dict[str, Any], str, Any]


def _factors(raw: Any, where: str, context: dict[str, Any],
             leaves: list[Leaf]) -> list[Factor]:
    """The factors of a ``sweep:`` mapping (or of a value's own axes), recursively."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise InputError("must be a mapping of key paths to lists of values", where=where)
    factors: list[Factor] = []
    for key, values in raw.items():
        if key == ZIP:
            groups = values if isinstance(values, list) else [values]
            for i, group in enumerate(groups):
                at = f"{where}.zip" if len(groups) == 1 else f"{where}.zip[{i}]"
                if not isinstance(group, dict) or not group:
                    raise InputError("must be a mapping of key paths to lists of equal "
                                     "length", where=at)
                cols = {_check_key(k, at): _check_values(v, f"{at}.{k}")
                        for k, v in group.items()}
                lengths = {k: len(v) for k, v in cols.items()}
                if len(set(lengths.values())) > 1:
                    shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
                    raise InputError(f"zipped axes need lists of one length ({shown})",
                                     where=at)
                n = next(iter(lengths.values()))
                rows = [{k: v[j] for k, v in cols.items()} for j in range(n)]
                for row in rows:
                    for k, v in row.items():
                        leaves.append((context, k, v))
                factors.append(rows)
            continue
        name = _check_key(key, where)
        at = f"{where}.{name}"
        if isinstance(values, dict):  # each value with axes of its own
            if not values:
                raise InputError("must map at least one value to its axes", where=at)
            rows = []
            for value, sub in values.items():
                leaves.append((context, name, value))
                inner = {**context, name: value}
                sub_factors = _factors(sub, f"{at}.{value}", inner, leaves)
                for combo in itertools.product(*sub_factors):
                    merged: dict[str, Any] = {name: value}
                    for part in combo:
                        merged.update(part)
                    rows.append(merged)
            factors.append(rows)
            continue
        for v in _check_values(values, at):
            leaves.append((context, name, v))
        factors.append([{name: v} for v in values])
    return factors


def _points(doc: dict[str, Any]) -> tuple[dict[str, list[Any]], list[dict[str, Any]],
                                          list[Leaf]]:
    """The axes (every key path with the values it takes), the points, and each value with
    the overrides it must be checked under."""
    leaves: list[Leaf] = []
    factors = _factors(doc.get("sweep", {}), "sweep", {}, leaves)
    points = []
    for combo in itertools.product(*factors):
        point: dict[str, Any] = {}
        for part in combo:
            overlap = sorted(set(point) & set(part))
            if overlap:
                raise InputError(f"axis {overlap[0]} is given twice", where="sweep")
            point.update(part)
        points.append(point)
    axes: dict[str, list[Any]] = {}
    for point in points:
        for key, value in point.items():
            seen = axes.setdefault(key, [])
            if all(json.dumps(value, sort_keys=True, default=str)
                   != json.dumps(s, sort_keys=True, default=str) for s in seen):
                seen.append(value)
    return axes, points, leaves


def _seeds(doc: dict[str, Any], base_seed: int) -> list[int]:
    raw = doc.get("seeds")
    if raw is None:
        return [base_seed]
    if isinstance(raw, bool):
        raise InputError("must be a count (e.g. 5) or a list of seeds", where="seeds")
    if isinstance(raw, int):
        if raw < 1:
            raise InputError(f"must be at least 1 (got {raw})", where="seeds")
        return [base_seed + i for i in range(raw)]
    if isinstance(raw, list) and raw:
        for s in raw:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise InputError(f"seeds must be non-negative integers (got {s!r})",
                                 where="seeds")
        if len(set(raw)) != len(raw):
            raise InputError("duplicate seed", where="seeds")
        return list(raw)
    raise InputError("must be a count (e.g. 5) or a non-empty list of seeds", where="seeds")


def _touches_files(key: str) -> bool:
    """Axes that may change which trace files a scenario reads."""
    return "traffic" in key or re.fullmatch(r"deployments(\[\d+\])?", key) is not None


def _load(
    base: dict[str, Any],
    overrides: Mapping[str, Any],
    base_dir: Path,
    check_files: bool,
) -> LoadedScenario:
    return load_scenario(base, overrides, base_dir=base_dir, check_files=check_files)


def _reason(err: InputError) -> str:
    return f"{err.where}: {err.reason}" if err.where else err.reason


def load_sweep(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    *,
    base_dir: str | Path | None = None,
) -> SweepPlan:
    """Read a sweep file (or a plain scenario: one point), validate every run, expand the grid.

    ``overrides`` (``--set``) apply to the base scenario before the axes.
    """
    doc, label, folder = read_source(source, base_dir, "<sweep>")
    folder = folder.resolve()
    if not isinstance(doc, dict):
        raise InputError("a sweep must be a mapping of keys to values", file=label,
                         where="scenario")
    try:
        axes, grid, leaves = _points(doc)
        base = {k: v for k, v in doc.items() if k not in SWEEP_KEYS}
        fixed = dict(overrides or {})
        base_loaded = load_scenario(base, fixed, base_dir=folder)
        seeds = _seeds(doc, base_loaded.spec.seed)
        check_all = any(_touches_files(key) for key in axes)
        # Each value alone first (with the values it depends on), so that a bad value is
        # named with its axis.
        for context, key, value in leaves:
            try:
                _load(base, {**fixed, **context, key: value}, folder,
                      check_files=_touches_files(key))
            except InputError as err:
                raise InputError(f"value {_show(value)}: {_reason(err)}",
                                 where=f"sweep.{key}") from None
        runs: list[RunSpec] = []
        for point in grid:
            try:
                loaded = _load(base, {**fixed, **point}, folder, check_files=check_all)
            except InputError as err:
                shown = ", ".join(f"{k}={_show(v)}" for k, v in point.items())
                raise InputError(f"combination {shown}: {_reason(err)}",
                                 where="sweep") from None
            refusals = estimate(loaded, keep_requests=False).refusals()
            if refusals:
                shown = ", ".join(f"{k}={_show(v)}" for k, v in point.items()) or "the scenario"
                raise InputError(f"{shown}: run refused before it starts: {'; '.join(refusals)}",
                                 where="sweep" if point else None)
            resolved = loaded.resolved()
            rid = run_id(point)
            for seed in seeds:
                scenario = copy.deepcopy(resolved)
                scenario["seed"] = seed
                runs.append(RunSpec(rid, seed, point, scenario))
    except InputError as err:
        err.file = label
        raise
    return SweepPlan(
        name=base_loaded.spec.name,
        source=label,
        base_dir=folder,
        axes=axes,
        seeds=seeds,
        runs=runs,
    )
