"""``capsim compare`` on corrupted result directories: every case is bad input — one line,
exit 2 — never a traceback, never "regression" (1), never a pass (0)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim.cli import main

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "regression" / "baseline"
SOURCE = BASELINE / "chat-steady"


def _copy(dst: Path) -> Path:
    shutil.copytree(SOURCE, dst, ignore=shutil.ignore_patterns("*.parquet", "*.csv"))
    return dst


def _summaries(root: Path) -> list[Path]:
    return sorted(root.glob("*/seed=*/summary.json"))


def _edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    data = json.loads(path.read_text())
    new = change(data)
    path.write_text(json.dumps(data if new is None else new))


def _manifest(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    return lambda root: _edit_json(root / "sweep.json", change)


def _every_summary(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        for path in _summaries(root):
            _edit_json(path, change)
    return apply


def _first_summary(change: Callable[[dict], Any]) -> Callable[[Path], None]:
    return lambda root: _edit_json(_summaries(root)[0], change)


def _write(name: str, data: bytes, first_summary: bool = False) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        (_summaries(root)[0] if first_summary else root / name).write_bytes(data)
    return apply


def _pop(key: str) -> Callable[[dict], None]:
    def apply(d: dict) -> None:
        del d[key]
    return apply


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _total(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d["total"].__setitem__(key, value)


def _nan_text(root: Path) -> None:
    for path in _summaries(root):
        text = path.read_text()
        path.write_text(text.replace('"ttft_p99_s": ', '"ttft_p99_s": NaN, "x": ', 1))


CASES: dict[str, Callable[[Path], None]] = {
    # sweep.json
    "manifest-no-seeds": _manifest(_pop("seeds")),
    "manifest-empty-seeds": _manifest(_set("seeds", [])),
    "manifest-seeds-strings": _manifest(_set("seeds", ["1", "2"])),
    "manifest-seeds-bools": _manifest(_set("seeds", [True])),
    "manifest-negative-seed": _manifest(_set("seeds", [-1])),
    "manifest-duplicate-seed": _manifest(lambda d: d["seeds"].append(d["seeds"][0])),
    "manifest-runs-integers": _manifest(_set("runs", [1, 2])),
    "manifest-empty-runs": _manifest(_set("runs", [])),
    "manifest-no-runs": _manifest(_pop("runs")),
    "manifest-run-without-id": _manifest(lambda d: _pop("run_id")(d["runs"][0])),
    "manifest-run-twice": _manifest(lambda d: d["runs"].append(d["runs"][0])),
    "manifest-no-name": _manifest(_pop("name")),
    "manifest-a-list": _manifest(lambda d: [d]),
    "manifest-not-json": _write("sweep.json", b'{"name": "chat-steady", "seeds": [1'),
    "manifest-empty-file": _write("sweep.json", b""),
    "manifest-latin1": _write("sweep.json", b'{"name": "caf\xe9"}'),
    "manifest-nan": _manifest(_set("seeds", float("nan"))),
    "manifest-deep": _write("sweep.json", b"[" * 100_000 + b"]" * 100_000),
    "missing-run-folder": lambda root: shutil.rmtree(next(root.glob("base"))),
    "missing-seed-summary": lambda root: _summaries(root)[0].unlink(),
    # summary.json
    "summary-no-total": _first_summary(_pop("total")),
    "summary-no-scenario": _first_summary(_pop("scenario")),
    "summary-no-deployments": _every_summary(_pop("deployments")),
    "summary-empty-deployments": _every_summary(_set("deployments", {})),
    "summary-total-a-string": _first_summary(_set("total", "fast")),
    "summary-kpi-a-string": _first_summary(_total("ttft_p99_s", "0.4")),
    "summary-kpi-nan-everywhere": _nan_text,
    "summary-kpi-infinite": _every_summary(_total("cost_usd", float("inf"))),
    "summary-kpi-a-bool": _first_summary(_total("slo_attainment", True)),
    "summary-kpi-a-list": _first_summary(_total("e2e_p99_s", [1.0])),
    "summary-no-requests": _first_summary(lambda d: _pop("requests")(d["total"])),
    "summary-negative-requests": _first_summary(_total("requests", -3)),
    "summary-latin1": _write("", b'{"total": "caf\xe9"}', first_summary=True),
    "summary-truncated": _write("", b'{"total": {"requests": 1', first_summary=True),
    "summary-a-list": _first_summary(lambda d: [d]),
    "summary-wrong-seed": _first_summary(lambda d: d.__setitem__("seed", d["seed"] + 100)),
    "summary-seed-a-string": _first_summary(lambda d: d.__setitem__("seed", str(d["seed"]))),
    "summary-scenario-deployments-not-a-list": _first_summary(
        lambda d: d["scenario"].__setitem__("deployments", "chat")),
}


def test_the_issue_counts_38_cases():
    assert len(CASES) == 38


def test_an_intact_copy_compares_clean(tmp_path, capsys):
    assert main(["compare", str(SOURCE), str(_copy(tmp_path / "new"))]) == 0


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("side", ["new", "base"])
def test_a_corrupted_directory_is_bad_input(name, side, tmp_path, capsys):
    broken = _copy(tmp_path / "broken")
    CASES[name](broken)
    args = [str(SOURCE), str(broken)] if side == "new" else [str(broken), str(SOURCE)]
    code = main(["compare", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("capsim: error: "), err[:2000]
    assert len(lines[0]) <= 500
    assert any(k in lines[0] for k in ("sweep.json", "summary.json", "has no results"))


def test_empty_sides_are_bad_input(tmp_path, capsys):
    base, new = _copy(tmp_path / "base"), _copy(tmp_path / "new")
    for side in (base, new):
        CASES["manifest-empty-runs"](side)
    assert main(["compare", str(base), str(new)]) == 2
    assert "runs" in capsys.readouterr().err


def test_a_single_run_summary_is_checked_too(tmp_path, capsys):
    base, new = tmp_path / "base", tmp_path / "new"
    for side in (base, new):
        side.mkdir()
        shutil.copy(_summaries(SOURCE)[0], side / "summary.json")
    assert main(["compare", str(base), str(new)]) == 0
    _edit_json(new / "summary.json", _total("ttft_p99_s", "slow"))
    assert main(["compare", str(base), str(new)]) == 2
    err = capsys.readouterr().err
    assert "total.ttft_p99_s" in err
