"""Generated tables inside hand-written documents, between two marker comments."""

from __future__ import annotations

import re
from pathlib import Path


def replace_between(path: Path, begin: str, end: str, text: str) -> None:
    """Put ``text`` between the ``begin`` and ``end`` markers of ``path`` (both kept)."""
    if not path.is_file():
        raise SystemExit(f"{path}: not found (regenerate documents from a source checkout)")
    doc = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path}: no {begin} … {end} markers")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", doc), encoding="utf-8")
