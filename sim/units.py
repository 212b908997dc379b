"""Unit strings used in scenario files: durations, sizes, bandwidths.

``"30s"``, ``"10m"`` (minutes), ``"1h"``, ``"7d"``, ``"100ms"``; ``"80GiB"``,
``"80GB"``; ``"2GB/s"``.  Values come back in SI base units: seconds, bytes,
bytes per second.  A bare number is refused: the unit is part of the value.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from sim.errors import quoted

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_PATTERN = re.compile(rf"^\s*{_NUMBER}\s*([A-Za-z/]+)\s*$")

DURATION_UNITS = {
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
SIZE_UNITS = {
    "B": 1.0,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "KiB": 2.0**10,
    "MiB": 2.0**20,
    "GiB": 2.0**30,
    "TiB": 2.0**40,
}


def _split(text: object, kind: str, example: str) -> tuple[float, str]:
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"{kind} needs a unit, e.g. '{example}' (got {quoted(text)})")
    m = _PATTERN.match(text)
    if not m:
        raise ValueError(f"cannot read {quoted(text)} as a {kind}, e.g. '{example}'")
    return float(m.group(1)), m.group(2)


def _lookup(value: float, unit: str, table: dict[str, float], kind: str, text: str) -> float:
    if unit not in table:
        known = ", ".join(table)
        raise ValueError(f"unknown {kind} unit {quoted(unit)} in {quoted(text)} (known: {known})")
    result = value * table[unit]
    if not math.isfinite(result):
        raise ValueError(f"{kind} {quoted(text)} is not finite")
    return result


def parse_duration(text: object) -> float:
    """Seconds in a duration string such as ``"30s"``, ``"10m"``, ``"1.5h"``."""
    value, unit = _split(text, "duration", "30s")
    return _lookup(value, unit, DURATION_UNITS, "duration", str(text))


def parse_size(text: object) -> float:
    """Bytes in a size string such as ``"80GiB"`` or ``"140GB"``."""
    value, unit = _split(text, "size", "80GiB")
    return _lookup(value, unit, SIZE_UNITS, "size", str(text))


def parse_bandwidth(text: object) -> float:
    """Bytes per second in a bandwidth string such as ``"2GB/s"``."""
    value, unit = _split(text, "bandwidth", "2GB/s")
    if not unit.endswith("/s"):
        raise ValueError(f"bandwidth {quoted(text)} needs a per-second unit, e.g. '2GB/s'")
    return _lookup(value, unit[:-2], SIZE_UNITS, "bandwidth", str(text))


def format_duration(seconds: float) -> str:
    """The shortest exact unit string for ``seconds`` (inverse of :func:`parse_duration`)."""
    for unit in ("d", "h", "m", "s"):
        scale = DURATION_UNITS[unit]
        if seconds >= scale and float(seconds / scale).is_integer():
            return f"{int(seconds / scale)}{unit}"
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


def duration_text(seconds: float) -> str:
    """A unit string that reads back as exactly ``seconds`` (``"24h"``, ``"0.1234s"``)."""
    text = format_duration(seconds)
    return text if parse_duration(text) == seconds else f"{seconds!r}s"


def size_text(size: float) -> str:
    return f"{size:g}B" if parse_size(f"{size:g}B") == size else f"{size!r}B"


def bandwidth_text(rate: float) -> str:
    return f"{size_text(rate)}/s"


# Pydantic field types: the value is stored in base units (float) and dumps to
# JSON as a unit string, so a resolved scenario reads back to the same spec.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(duration_text, return_type=str, when_used="json"),
]
Size = Annotated[
    float,
    BeforeValidator(parse_size),
    PlainSerializer(size_text, return_type=str, when_used="json"),
]
Bandwidth = Annotated[
    float,
    BeforeValidator(parse_bandwidth),
    PlainSerializer(bandwidth_text, return_type=str, when_used="json"),
]
