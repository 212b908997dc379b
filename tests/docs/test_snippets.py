"""The code in the README and in docs/ runs.

Conventions for fenced blocks (the first word is the language, as GitHub reads it):

* ```` ```python ```` — runs. A document's blocks run in order in one namespace, from
  a fresh folder in which ``scenarios/`` is the repository's.
* ```` ```console ```` — each line starting with ``$ `` is run by the shell in that
  folder, with the virtual environment's ``bin/`` on ``PATH``, and must exit 0; the
  other lines are example output and are not compared.
* ```` ```python no-run ```` / ```` ```console no-run ```` — shown, not run.
* ```` ```yaml file=NAME ```` (any language) — written to ``NAME`` in that folder
  before the blocks after it run, so a document can show a file and then use it.
* Other languages (``sh``, ``yaml`` …) are shown only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)

# Documents whose blocks cannot run on their own yet, and why.
NOT_RUNNABLE = {
    "docs/sweeps.md": "its Python block reads a sweep's output folder that no block makes "
                      "(mark it `python no-run`, or run the sweep in a `console` block first)",
}


@dataclass
class Block:
    lang: str
    flags: set[str]
    attrs: dict[str, str]
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return self.lang in ("python", "console") and "no-run" not in self.flags


@dataclass
class Doc:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def parse(path: Path) -> Doc:
    text = path.read_text(encoding="utf-8")
    doc = Doc(path)
    for m in FENCE.finditer(text):
        words = m.group(1).split()
        lang = words[0] if words else ""
        attrs = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        flags = {w for w in words[1:] if "=" not in w}
        doc.blocks.append(Block(lang, flags, attrs, m.group(2), text.count("\n", 0, m.start()) + 1))
    return doc


DOCS = [parse(p) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
RUNNABLE = [d for d in DOCS if d.name not in NOT_RUNNABLE and
            any(b.runs or "file" in b.attrs for b in d.blocks)]


def test_conventions_are_found():
    names = {d.name for d in RUNNABLE}
    assert {"README.md", "docs/tutorial.md", "docs/howto/calibrate-shape.md",
            "docs/howto/replay-trace.md", "docs/howto/write-policy.md"} <= names
    tutorial = next(d for d in DOCS if d.name == "docs/tutorial.md")
    assert any(b.lang == "console" and b.runs for b in tutorial.blocks)
    assert any("file" in b.attrs for b in tutorial.blocks)
    for name in NOT_RUNNABLE:
        assert (ROOT / name).exists(), f"{name} is gone: drop it from NOT_RUNNABLE"


def _run_console(block: Block, doc: Doc, cwd: Path, env: dict[str, str]) -> None:
    for offset, line in enumerate(block.code.splitlines(), start=1):
        if not line.startswith("$ "):
            continue
        done = subprocess.run(line[2:], shell=True, cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, (
            f"{doc.name}:{block.line + offset}: `{line[2:]}` exited {done.returncode}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


@pytest.mark.parametrize("doc", RUNNABLE, ids=lambda d: d.name)
def test_doc_code_runs(doc: Doc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    namespace: dict[str, object] = {"__name__": "__doc__"}
    for block in doc.blocks:
        if "file" in block.attrs:
            target = tmp_path / block.attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
        if not block.runs:
            continue
        if block.lang == "python":
            code = compile(block.code, f"{doc.name}:{block.line}", "exec")
            exec(code, namespace)
        else:
            _run_console(block, doc, tmp_path, env)
