"""Writing a result directory atomically: all files or none.

Files are written into a temporary sibling directory, which then replaces
``out`` in one rename; an error on the way leaves ``out`` as it was.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sim.results import Result


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@contextmanager
def atomic_dir(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to fill; it replaces ``out`` only if all went well."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_files(out: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (name → bytes) as the whole content of ``out``, atomically."""
    with atomic_dir(out) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)


def write_results(result: Result, out: Path) -> None:
    """Write ``summary.json``, ``requests.parquet``, ``timeline.parquet``, ``billing.csv``,
    ``allocation.parquet`` and the report into ``out``."""
    from sim.report.html import write_report

    with atomic_dir(out) as tmp:
        (tmp / "summary.json").write_text(json.dumps(_json_safe(result.summary), indent=2) + "\n")
        result.requests.to_parquet(tmp / "requests.parquet", index=False)
        result.timeline.to_parquet(tmp / "timeline.parquet", index=False)
        result.billing.to_csv(tmp / "billing.csv", index=False)
        result.allocation.to_parquet(tmp / "allocation.parquet", index=False)
        write_report(result, tmp)
