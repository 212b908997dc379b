"""docs/policies.md: its tables are what the code produces (its snippets run in
tests/docs/test_snippets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sim.policies import compare, docs

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "policies.md"
TEXT = DOC.read_text(encoding="utf-8")


def test_parameter_tables_are_current():
    # regenerate with: python -m sim.policies.docs --write
    assert docs.render(TEXT) == TEXT


def doc_rows() -> list[list[str]]:
    body = TEXT.split(compare.BEGIN, 1)[1].split(compare.END, 1)[0]
    lines = [ln for ln in body.strip().splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_comparison_table_has_a_row_per_scenario():
    rows = doc_rows()
    assert tuple(rows[0]) == compare.COLUMNS
    policies = [r[0].strip("`") for r in rows[2:]]
    files = compare.scenario_files(ROOT / compare.SCENARIOS)
    assert policies == [yaml.safe_load(p.read_text())["deployments"][0]["autoscaler"]["policy"]
                        for p in files]
    assert policies == list(compare.ORDER)


def test_comparison_scenarios_differ_only_in_the_autoscaler():
    files = compare.scenario_files(ROOT / compare.SCENARIOS)
    docs_ = [yaml.safe_load(p.read_text()) for p in files]
    for d in docs_:
        d.pop("name")
        d["deployments"][0].pop("autoscaler")
    assert all(d == docs_[0] for d in docs_)


@pytest.mark.slow
def test_comparison_table_is_current():
    # regenerate with: python -m sim.policies.compare --write (about 20 s)
    assert compare.table(compare.scenario_files(ROOT / compare.SCENARIOS)) in TEXT


def tiny(folder: Path, policy: str, **params) -> Path:
    doc = {"name": f"tiny-{policy}", "seed": 1, "duration": "3m", "deployments": [{
        "name": "d", "model": "llama-v3p1-8b-instruct",
        "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
        "region": "US", "min_replicas": 1, "max_replicas": 3,
        "autoscaler": {"policy": policy, **params},
        "traffic": {"arrivals": {"kind": "poisson", "rps": 2},
                    "input_tokens": {"kind": "fixed", "value": 100},
                    "output_tokens": {"kind": "fixed", "value": 20}}}]}
    path = folder / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_generator_on_a_tiny_case(tmp_path: Path):
    tiny(tmp_path, "static", replicas=2)
    tiny(tmp_path, "kpa")
    tiny(tmp_path, "hpa")
    files = compare.scenario_files(tmp_path)
    assert [p.stem for p in files] == ["static", "hpa", "kpa"]  # the table's order
    table = compare.table(files, seeds=(1, 2))
    lines = table.splitlines()
    assert len(lines) == 2 + 3
    static = [c.strip() for c in lines[2].strip("|").split("|")]
    assert static[0] == "`static`"
    assert static[6] == f"{2 * 180 / 3600:.2f}"  # two replicas for 3 minutes, in GPU-hours
    assert static[9] == "2"
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{compare.BEGIN}\nOLD-TABLE\n{compare.END}\noutro\n")
    assert compare.main(["--check", "--doc", str(doc), "--scenarios", str(tmp_path)]) == 1
    assert compare.main(["--write", "--doc", str(doc), "--scenarios", str(tmp_path)]) == 0
    assert compare.main(["--check", "--doc", str(doc), "--scenarios", str(tmp_path)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "OLD-TABLE" not in text
    with pytest.raises(ValueError, match="markers"):
        compare.splice("no markers", "x")
