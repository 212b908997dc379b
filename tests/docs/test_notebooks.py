"""The notebooks in notebooks/: stored without outputs, and they run, stating conclusions
that follow from their own results."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _execute(path: Path, extra: str | None = None) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel from its own folder; ``extra`` is a last cell."""
    nb = nbformat.read(path, as_version=4)
    if extra is not None:
        nb.cells.append(nbformat.v4.new_code_cell(extra))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode, mime: str) -> list[str]:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if mime in o.get("data", {})]


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["autoscaler_tuning.ipynb", "compare_shapes.ipynb",
                                           "serverless_vs_ondemand.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing "
                "(jupyter nbconvert --clear-output --inplace notebooks/*.ipynb)"
            )


def test_compare_shapes_concludes_from_its_results():
    facts_cell = (
        "import json\n"
        "b = result.best\n"
        "print(json.dumps({'best': b and b.config.describe(),\n"
        "    'cost': b and b.mean('cost_per_hour'),\n"
        "    'serverless': b and b.mean('serverless_per_hour'),\n"
        "    'dropped': {f.shape_label: f.pruned for f in result.families if f.pruned},\n"
        "    'holds': b is not None and b.feasible}))"
    )
    nb = _execute(ROOT / "notebooks" / "compare_shapes.ipynb", extra=facts_cell)
    facts = json.loads(nb.cells[-1].outputs[-1]["text"])
    (conclusion,) = _outputs(nb, "text/markdown")
    if facts["best"] is None:
        assert conclusion.startswith("No shape holds the SLO")
        assert len(_outputs(nb, "image/png")) == 1  # the Pareto plot
    else:
        assert facts["holds"]
        assert len(_outputs(nb, "image/png")) == 2  # the Pareto plot, the timeline
        assert conclusion.startswith(
            "The cheapest configuration that holds the SLO (p99 TTFT ≤ 2 s and p99 TPOT ≤ "
            f"100 ms) on 2 fresh seeds is **{facts['best']}**: ${facts['cost']:,.2f} per hour")
        if facts["serverless"] is not None:
            side = "cheaper than" if facts["cost"] < facts["serverless"] else "dearer than"
            assert f"${facts['serverless']:,.2f} per hour — dedicated is {side}" in conclusion
    for shape, why in facts["dropped"].items():
        assert f"**{shape}** is ruled out before simulating: {why}" in conclusion


def test_serverless_vs_ondemand_concludes_from_its_results():
    facts_cell = (
        "import json\n"
        "print(json.dumps({name: {'intervals': b.cheaper_intervals, 'failed': failed(b)} "
        "for name, b in found.items()}))"
    )
    nb = _execute(ROOT / "notebooks" / "serverless_vs_ondemand.ipynb", extra=facts_cell)
    facts = json.loads(nb.cells[-1].outputs[-1]["text"])
    (conclusion,) = _outputs(nb, "text/markdown")
    assert len(_outputs(nb, "image/png")) == 1
    assert list(facts) == ["steady, scale to zero", "bursty, scale to zero", "bursty, always on"]
    for name, fact in facts.items():
        if not fact["intervals"]:
            assert (f"**{name}**: dedicated GPUs are cheaper than serverless at no rate"
                    in conclusion)
        else:
            shown = " and ".join(f"**{lo:.3g}–{hi:.3g} req/s**" for lo, hi in fact["intervals"])
            assert (f"**{name}**: dedicated GPUs cost less per served token than serverless "
                    f"at {shown}") in conclusion
        assert f"{fact['failed']:.1%} of requests failed" in conclusion
    steady, bursty = facts["steady, scale to zero"]["intervals"], \
        facts["bursty, scale to zero"]["intervals"]
    if steady and bursty:
        assert f"Bursts move the lowest rate where dedicated pays by " \
               f"{bursty[0][0] / steady[0][0]:.2g}×" in conclusion


def test_autoscaler_tuning_concludes_from_its_results():
    facts_cell = (
        "import json\n"
        "print(json.dumps({'policies': policies.to_dict('records'), "
        "'tuning': tuning.to_dict('records'), 'slo': TTFT_SLO}))"
    )
    nb = _execute(ROOT / "notebooks" / "autoscaler_tuning.ipynb", extra=facts_cell)
    facts = json.loads(nb.cells[-1].outputs[-1]["text"])
    (conclusion,) = _outputs(nb, "text/markdown")
    assert len(_outputs(nb, "image/png")) == 3  # frontier, TTFT CDFs, timeline
    policies = facts["policies"]
    assert {p["policy"] for p in policies} == {
        "fireworks", "hpa", "keda", "kpa", "predictive", "ray_serve", "scheduled", "static",
        "target_tracking"}
    meeting = [p for p in policies if p["p99 TTFT (s)"] <= facts["slo"]]
    if meeting:
        best = min(meeting, key=lambda p: p["cost (USD)"])
        assert (f"The cheapest policy that meets p99 TTFT ≤ {facts['slo']:g} s is "
                f"**{best['policy']}**: ${best['cost (USD)']:,.2f}") in conclusion
    else:
        assert conclusion.startswith("No policy meets")
    fits = [t for t in facts["tuning"] if t["p99 TTFT (s)"] <= facts["slo"]]
    if fits:
        pick = min(fits, key=lambda t: t["cost (USD)"])
        assert f"is **{pick['target']}** per replica (${pick['cost (USD)']:,.2f}" in conclusion
    else:
        assert "No `concurrent_requests` target" in conclusion
