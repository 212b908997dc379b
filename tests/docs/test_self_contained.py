"""The repository speaks of itself: no machine path, no document it does not ship.

Every text file of the project (code, docs, scenarios, packaged data, tests) is
read; a user who clones or installs capsim must be able to follow every
reference in it, so facts are cited by public URL and nothing names a folder of
the machine it was written on or a document outside the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXT = {".py", ".md", ".yaml", ".yml", ".csv", ".toml", ".txt", ".cfg", ".ipynb", ".json"}
SKIP_DIRS = {".git", ".venv", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache",
             "__pycache__", "results", "build", "dist"}

FORBIDDEN = {
    "absolute machine path": re.compile(r"(?<![\w.])/(work|home|Users|root|mnt)/\w"),
    "a section of an unshipped spec": re.compile(r"SPEC\s*§"),
    "an unshipped reference document": re.compile(
        r"reference/(?!scenario\.md)[\w-]+\.md|\b(fireworks|autoscalers|peers)\.md\b"),
    "an unshipped seed document": re.compile(r"seed document", re.IGNORECASE),
    "an issue number": re.compile(r"\bissue\s*#?\d+", re.IGNORECASE),
}


def _files() -> list[Path]:
    out = []
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path == Path(__file__).resolve():
            continue  # the patterns and their samples
        if path.is_file() and (path.suffix in TEXT or rel.parts[0] == ".ci"):
            out.append(path)
    return out


def test_the_walk_sees_the_project() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _files()}
    assert "sim/catalog/data/models.csv" in names
    assert "docs/ci.md" in names and "README.md" in names


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_no_reference_outside_the_repository(what: str) -> None:
    pattern = FORBIDDEN[what]
    hits = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:120]}")
    assert not hits, f"{what}:\n" + "\n".join(hits)


def test_the_patterns_catch_what_they_mean() -> None:
    samples = {
        "absolute machine path": "via " + "/".join(["", "work", "shared", "reference"]),
        "a section of an unshipped spec": "(SPEC §2)",
        "an unshipped reference document": "see reference/fireworks.md",
        "an unshipped seed document": "(the seed document)",
        "an issue number": "for issue 8",
    }
    for what, sample in samples.items():
        assert FORBIDDEN[what].search(sample), what
    assert not FORBIDDEN["an unshipped reference document"].search("docs/reference/scenario.md")
    assert not FORBIDDEN["absolute machine path"].search("capsim run s.yaml --out /tmp/w")
