"""capsim calibrate: reading load tests, refusing bad ones before writing anything."""

from __future__ import annotations

import json

import pytest

from sim.cli import main
from sim.errors import InputError
from sim.perf.loadtest import read_levels

CSV = ("rate_rps,input_tokens,output_tokens,ttft_mean_ms,itl_mean_ms,e2e_mean_ms,duration_s,"
       "arrivals\n8,547,237,25.23,7.90,1892.70,600,constant\n")


def test_csv_levels(tmp_path):
    path = tmp_path / "lt.csv"
    path.write_text("# a comment\n" + CSV)
    (level,) = read_levels(path)
    assert level["rate_rps"] == 8 and level["arrivals"] == "constant"
    assert level["measured"]["tpot_mean"] == pytest.approx(0.0079)


def test_benchmark_serving_json(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({
        "request_rate": 4.0, "completed": 100, "duration": 26.0, "total_input_tokens": 100_000,
        "total_output_tokens": 20_000, "mean_ttft_ms": 40.0, "mean_tpot_ms": 9.0,
        "mean_e2el_ms": 1830.0}))
    (level,) = read_levels(path)
    assert level["input_tokens"] == 1000 and level["output_tokens"] == 200
    assert level["arrivals"] == "poisson" and level["measured"]["e2e_mean"] == 1.83


@pytest.mark.parametrize("text, reason", [
    ("rate_rps,input_tokens\n", "no load level"),
    (CSV.replace("25.23", "fast"), "non-numeric 'ttft_mean_ms'"),
    (CSV.replace("constant", "bursty"), "arrivals must be"),
    (CSV.replace("8,547", "-8,547"), "must be a number > 0"),
])
def test_bad_csv(tmp_path, text, reason):
    path = tmp_path / "lt.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=reason) as err:
        read_levels(path)
    assert err.value.file == str(path)


def test_infinite_rate_refused(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"request_rate": "inf", "completed": 1}))
    with pytest.raises(InputError, match="request_rate must be finite"):
        read_levels(path)


def test_command_bad_input_writes_nothing(tmp_path, capsys):
    path = tmp_path / "lt.csv"
    path.write_text(CSV.replace("25.23", "fast"))
    out = tmp_path / "profile.json"
    code = main(["calibrate", str(path), "--model", "llama-v3p1-8b-instruct",
                 "--accelerator", "H100_80GB", "--out", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"capsim: error: {path}: line 2: ")
