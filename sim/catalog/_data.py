"""Reading the catalog's CSV files (package data under ``sim/catalog/data``).

Every file starts with ``#`` lines naming its source; they are skipped here.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import pandas as pd

from sim.errors import InputError, quoted


def _body(name: str) -> str:
    path = resources.files("sim.catalog").joinpath("data").joinpath(name)
    text = path.read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def read_records(name: str) -> list[dict[str, str]]:
    """Rows of ``sim/catalog/data/<name>`` as dicts of strings (blank = "")."""
    return list(csv.DictReader(io.StringIO(_body(name))))


def read_csv(name: str) -> pd.DataFrame:
    """The table in ``sim/catalog/data/<name>``, source comment lines removed."""
    return pd.read_csv(io.StringIO(_body(name)))


def unknown(kind: str, value: object, known: list[str] | tuple[str, ...]) -> InputError:
    """The error for a name the catalog does not know, listing the names it does."""
    return InputError(f"unknown {kind} {quoted(value)} (known: {', '.join(known)})")
