"""The parameter tables of ``docs/policies.md``, generated from the policies'
``Params`` so the doc cannot drift from the code.

    python -m sim.policies.docs --write    # update docs/policies.md
    python -m sim.policies.docs --check    # exit 1 if a table is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

from sim.policies.registry import get_policy, policy_names

# Repository tooling: relative to the current folder (a checkout); --doc for another.
DOC = Path("docs") / "policies.md"


def _begin(name: str) -> str:
    return f"<!-- BEGIN params {name}: python -m sim.policies.docs --write -->"


def _end(name: str) -> str:
    return f"<!-- END params {name} -->"


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return f"`{json.dumps(value, separators=(', ', ': '))}`".replace("|", "\\|")
    return f"`{value}`" if isinstance(value, str) else f"{value:g}" if isinstance(
        value, float) else str(value)


def params_table(model: type[BaseModel]) -> str:
    """key | default | meaning, one row per parameter (``policy`` left out)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, field in model.model_fields.items():
        if key == "policy":
            continue
        if field.default is PydanticUndefined and field.default_factory is None:
            default = "required"
        else:
            value = field.get_default(call_default_factory=True, validated_data={})
            if isinstance(value, BaseModel) and "policy" in type(value).model_fields:
                value = {"policy": value.model_dump()["policy"]}  # a nested policy: its name
            elif isinstance(value, BaseModel):
                value = value.model_dump(mode="json")
            elif value is not None:
                adapter: TypeAdapter[Any] = TypeAdapter(field.rebuild_annotation())
                value = adapter.dump_python(value, mode="json")
            default = _text(value)
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def tables() -> dict[str, str]:
    return {name: params_table(get_policy(name).Params) for name in policy_names()}


def splice(doc: str, name: str, body: str) -> str:
    begin, end = _begin(name), _end(name)
    if begin not in doc or end not in doc:
        raise ValueError(f"the doc has no table markers for policy {name!r}")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def render(doc: str) -> str:
    for name, body in tables().items():
        doc = splice(doc, name, body)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.policies.docs",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        for name, body in tables().items():
            sys.stdout.write(f"## {name}\n\n{body}\n")
        return 0
    doc = args.doc.read_text(encoding="utf-8")
    new = render(doc)
    if args.check:
        if new != doc:
            sys.stderr.write(f"{args.doc} is stale: run python -m sim.policies.docs --write\n")
            return 1
        return 0
    args.doc.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
