"""What ``capsim compare`` accepts as a result: schemas of ``summary.json`` and
``sweep.json``, checked when a file is read.

A result directory that does not match — a file that is not UTF-8 or not JSON,
a KPI given as a string or NaN, a sweep without seeds or runs, a summary
without its ``total``, ``deployments`` or ``scenario`` — is bad input (exit 2),
never a regression (exit 1) and never a pass (exit 0).  Keys the schema does
not name are allowed, so newer summaries with more fields still compare.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    create_model,
)

from sim.errors import InputError
from sim.metrics.summary import KPI_KEYS
from sim.spec import format_validation_error

MAX_RESULT_BYTES = 64 * 1024 * 1024  # one summary.json or sweep.json


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def _kpi(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"a KPI must be a number or null (got {type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError("a KPI must be finite")
    return value


Kpi = Annotated[float | None, BeforeValidator(_kpi)]

# The KPIs of the total or of one deployment: ``requests`` at least, every other KPI
# optional (an older summary may lack a newer one) but a finite number or null.
KpiBlock = create_model(  # type: ignore[call-overload]
    "KpiBlock",
    __base__=_Open,
    requests=(StrictInt, Field(ge=0)),
    **{key: (Kpi, None) for key in KPI_KEYS if key != "requests"},
)


class ScenarioDoc(_Open):
    """The resolved scenario a run was made from (what defines the question)."""

    duration: float | str
    deployments: list[dict[str, Any]] = Field(min_length=1)


class RunSummary(_Open):
    """A run's ``summary.json``."""

    name: str
    seed: StrictInt = Field(ge=0)
    run_id: str = "base"
    total: KpiBlock
    deployments: dict[str, KpiBlock] = Field(min_length=1)
    scenario: ScenarioDoc


class ManifestRun(_Open):
    run_id: Annotated[str, Field(min_length=1)]
    overrides: dict[str, Any] = {}


class SweepManifest(_Open):
    """A sweep's ``sweep.json``."""

    name: str
    seeds: list[Annotated[StrictInt, Field(ge=0)]] = Field(min_length=1)
    runs: list[ManifestRun] = Field(min_length=1)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path) -> Any:
    """The JSON document in ``path``, or an InputError (unreadable, too large, not
    UTF-8, not JSON, NaN or Infinity, nested too deeply)."""
    where = str(path.parent)
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise InputError(f"{path.name} is too large for a capsim result ({size:,} bytes)",
                             file=where)
        text = path.read_bytes().decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name} is not a UTF-8 text file ({exc.reason})",
                         file=where) from None
    except FileNotFoundError:
        raise InputError(f"no {path.name}", file=where) from None
    except OSError as exc:
        raise InputError(f"cannot read {path.name}: {exc.strerror}", file=where) from None
    except RecursionError:
        raise InputError(f"{path.name} is nested too deeply", file=where) from None
    except ValueError as exc:
        raise InputError(f"{path.name} is not valid JSON: {exc}", file=where) from None


def _validated(model: type[BaseModel], data: Any, path: Path, what: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{path.name} is not {what} (not a JSON object)", file=str(path.parent))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = format_validation_error(exc, data)
        raise InputError(f"{path.name} is not {what}: {err.where}: {err.reason}",
                         file=str(path.parent)) from None


def read_summary(path: Path) -> dict[str, Any]:
    """A run's ``summary.json``, checked against :class:`RunSummary`."""
    data = read_json(path)
    _validated(RunSummary, data, path, "a capsim run summary")
    return dict(data)


def read_sweep_manifest(path: Path) -> dict[str, Any]:
    """A sweep's ``sweep.json``, checked against :class:`SweepManifest`."""
    data = read_json(path)
    _validated(SweepManifest, data, path, "a capsim sweep manifest")
    ids = [str(run["run_id"]) for run in data["runs"]]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path.name} lists a run twice", file=str(path.parent))
    if len(set(data["seeds"])) != len(data["seeds"]):
        raise InputError(f"{path.name} lists a seed twice", file=str(path.parent))
    return dict(data)
