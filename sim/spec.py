"""Validated, immutable specs (scenario sections), and their errors as one line.

Every spec refuses unknown keys and is frozen: a spec is a description of what
to simulate, never runtime state.  :func:`format_validation_error` turns
pydantic's report into one :class:`~sim.errors.InputError` whose ``where`` is a
key path into the user's document, such as ``deployments[0].shape.accelerator``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sim.errors import InputError, quoted


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class NestedError(ValueError):
    """A section validated on its own inside a validator: keeps its key path."""

    def __init__(self, loc: Sequence[int | str], reason: str):
        super().__init__(reason)
        self.loc = tuple(loc)
        self.reason = reason


def nested(exc: ValidationError, doc: Any) -> NestedError:
    """Re-raise a sub-document's validation error so the outer one keeps its path."""
    err = _deepest(exc)
    loc = err.get("loc", ())
    where = _key_path(loc, doc)
    parts = [p for p in re.split(r"\.|\[(\d+)\]", where) if p] if where != "scenario" else []
    return NestedError([int(p) if p.isdigit() else p for p in parts], _reason(err))


_TYPE_NAMES = {"str", "int", "float", "bool", "dict", "list", "none"}


def _key_path(loc: Sequence[int | str], doc: Any) -> str:
    """``('deployments', 0, 'traffic', 'arrivals', 'poisson', 'rps')`` → ``deployments[0]...``.

    Pydantic puts a discriminated union's tag (``poisson``) and the member
    types of other unions (``str``, ``ShapeSpec``) in the location.  They are
    not keys of the document, so the path is built by walking the document
    alongside and keeping only real keys — plus a last key that is missing.
    """
    out = ""
    node = doc
    for i, part in enumerate(loc):
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out += f"[{part}]"
            node = node[part]
        elif isinstance(node, Mapping) and part in node:
            out += _key_text(part, first=not out)
            node = node[part]
        elif (
            i == len(loc) - 1
            and isinstance(part, str)
            and re.fullmatch(r"[a-z_][a-z0-9_]*", part)
            and part not in _TYPE_NAMES
        ):
            out += f".{part}" if out else part
    return out or "scenario"


def _key_text(key: object, first: bool) -> str:
    """``.name`` for a plain key; ``['odd key']`` for one with spaces or control characters."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        return key if first else f".{key}"
    return f"[{key!r}]"


def _reason(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    value = err.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(value, Mapping | list):
        msg = f"{msg} (got {quoted(value)})"
    return msg


def _deepest(exc: ValidationError) -> Any:
    """The error pydantic found deepest: the most specific one."""
    return max(exc.errors(), key=lambda e: len(e.get("loc", ())))


def format_validation_error(exc: ValidationError, doc: Any) -> InputError:
    """``exc`` as one InputError with a key path into ``doc``."""
    err = _deepest(exc)
    loc = tuple(err.get("loc", ()))
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, NestedError):
        where = _key_path(loc, doc)
        inner = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in cause.loc)
        return InputError(cause.reason, where=(where + inner) if where != "scenario" else inner[1:])
    return InputError(_reason(err), where=_key_path(loc, doc))
