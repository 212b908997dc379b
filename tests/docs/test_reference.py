"""docs/reference/scenario.md is generated from the schema: it is current, complete and
every link in it lands."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import sim
from sim.scenario import docgen

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / docgen.DOC


def test_reference_is_current():
    committed = DOC.read_text(encoding="utf-8")
    assert committed == docgen.render(), (
        f"{docgen.DOC} is out of date: run `{docgen.COMMAND}` and commit it"
    )


def test_every_key_is_described():
    missing = sorted({f"{row.model.__module__}.{row.model.__qualname__}.{row.key}"
                      for row in docgen.all_rows() if not row.description})
    assert not missing, (
        "keys without a description (add description= to the Field, or an entry to "
        f"sim.scenario.docgen.DESCRIPTIONS): {', '.join(missing)}"
    )


def test_every_key_of_a_resolved_scenario_is_in_the_reference():
    text = docgen.render()
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, re.M))

    def keys(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                yield from keys(value)
        elif isinstance(node, list):
            for value in node:
                yield from keys(value)

    for name in ("quickstart", "outage", "pending", "scale_from_zero"):
        scenario = sim.load_scenario(ROOT / "scenarios" / f"{name}.yaml").resolved()
        # mappings keyed by data (regions, prices) are not schema keys
        for data_keyed in ("regions",):
            scenario.pop(data_keyed, None)
        scenario.get("billing", {}).pop("gpu_hour_usd", None)
        undocumented = set(keys(scenario)) - documented
        assert not undocumented, f"{name}: {sorted(undocumented)}"


def test_every_link_has_its_anchor_and_every_section_is_linked():
    text = docgen.render()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links - anchors == set()
    assert anchors - links == {"scenario"}  # the top level is the page itself


def test_every_policy_and_kind_has_a_section():
    text = docgen.render()
    for name in docgen.policy_names():
        assert f"## `deployments[].autoscaler` — `policy: {name}`" in text
    for kind in ("poisson", "diurnal", "ramp", "burst", "spikes", "trace"):
        assert f"## `deployments[].traffic.arrivals` — `kind: {kind}`" in text
    for kind in ("fixed", "exponential", "lognormal", "empirical"):
        assert f"## `deployments[].traffic.input_tokens` — `kind: {kind}`" in text


def test_defaults_read_back_as_the_schema_resolves_them():
    text = docgen.render()
    row = re.search(r"^\| `timeline_interval` \| duration [^|]* \| `([^`]+)` \|", text, re.M)
    resolved = sim.load_scenario(ROOT / "scenarios" / "quickstart.yaml").resolved()
    assert row and row.group(1) == resolved["timeline_interval"]
    rate = re.search(r"^\| `weight_download_rate` \| .*? \| `([^`]+)` \|", text, re.M)
    assert rate and sim.units.parse_bandwidth(rate.group(1)) == (
        sim.load_scenario(ROOT / "scenarios" / "quickstart.yaml").spec.deployments[0]
        .cold_start.weight_download_rate)
    assert yaml.safe_load("x: " + re.search(r"^\| `metrics` \| .*? \| `([^`]+)` \|", text,
                                            re.M).group(1))["x"] == {"utilization": 0.8}


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "scenario.md"
    stale.write_text("# old\n")
    assert docgen.main([str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert docgen.main([str(stale)]) == 0
    assert docgen.main([str(stale), "--check"]) == 0
