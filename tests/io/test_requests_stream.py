"""The request table streamed to Parquet a window at a time: the same rows and the same
(exact) summary as an in-memory run, a uniform sample for plots, and flat memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.io import RequestsFile, write_run


def _scenario(seed: int) -> dict:
    return {
        "name": "stream", "seed": seed, "duration": "3h", "warmup": "5m",
        "deployments": [
            {"name": name, "model": "llama-v3p1-8b-instruct",
             "shape": {"accelerator": "H100_80GB", "count": 1, "precision": "FP8"},
             "autoscaler": {"policy": "static", "replicas": 1},
             "region": region,
             "traffic": {"arrivals": {"kind": "poisson", "rps": rps},
                         "input_tokens": {"kind": "lognormal", "median": 500, "p90": 2000},
                         "output_tokens": {"kind": "lognormal", "median": 100, "p90": 300}}}
            for name, region, rps in (("a", "US", 1.5), ("b", "EUROPE", 0.7))
        ],
        "slo": {"ttft_p99": "1s"},
    }


def _by_arrival(df: pd.DataFrame) -> pd.DataFrame:
    df = df.sort_values(["arrival_s", "deployment"], kind="stable").reset_index(drop=True)
    for col in ("deployment", "status", "datacenter"):
        df[col] = df[col].astype(str)
    return df


@pytest.mark.parametrize("seed", [1, 2])
def test_streamed_run_equals_the_in_memory_run(tmp_path, seed):
    memory = sim.run(_scenario(seed), chunk_s=1800.0)
    sink = RequestsFile(tmp_path / "requests.parquet", sample_size=500)
    streamed = sim.run(_scenario(seed), chunk_s=1800.0, requests_sink=sink)
    assert streamed.requests.empty
    drop = ("wall_s",)
    assert ({k: v for k, v in streamed.summary.items() if k not in drop}
            == {k: v for k, v in memory.summary.items() if k not in drop})
    assert streamed.summary["latency_percentiles"] == "exact"
    on_disk = pd.read_parquet(tmp_path / "requests.parquet")
    assert len(on_disk) == len(memory.requests) == sink.rows > 2000
    pd.testing.assert_frame_equal(_by_arrival(on_disk), _by_arrival(memory.requests))
    # several row groups: written as the run went, not at the end
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "requests.parquet").num_row_groups >= 6
    sample = streamed.requests_sample
    assert sample is not None and len(sample) == 500
    assert sample["arrival_s"].is_monotonic_increasing
    # uniform over the run: the sample's arrival times spread like all requests'
    assert abs(sample["arrival_s"].median() - memory.requests["arrival_s"].median()) < 900
    assert set(sample["deployment"].astype(str)) == {"a", "b"}


def test_the_sample_does_not_depend_on_the_windows(tmp_path):
    samples = []
    for chunk in (900.0, 3600.0):
        sink = RequestsFile(tmp_path / f"r{chunk}.parquet", sample_size=300)
        sim.run(_scenario(3), chunk_s=chunk, requests_sink=sink)
        samples.append(_by_arrival(sink.sample()))
    pd.testing.assert_frame_equal(samples[0], samples[1])


def test_write_run_keeps_the_streamed_table_and_plots_from_the_sample(tmp_path):
    sink = RequestsFile(tmp_path / "requests.parquet", sample_size=400)
    result = sim.run(_scenario(4), requests_sink=sink)
    before = (tmp_path / "requests.parquet").stat().st_size
    names = write_run(result, tmp_path)
    assert (tmp_path / "requests.parquet").stat().st_size == before
    assert "ttft_cdf.png" in names and "report.html" in names


def test_an_empty_run_still_writes_a_table(tmp_path):
    doc = _scenario(1)
    for dep in doc["deployments"]:
        dep["traffic"]["arrivals"]["rps"] = 1e-9
    sink = RequestsFile(tmp_path / "requests.parquet")
    result = sim.run(doc, requests_sink=sink)
    assert result.summary["total"]["requests"] == 0
    assert (tmp_path / "requests.parquet").is_file()
    assert np.isnan(result.summary["total"]["ttft_p99_s"] or np.nan)
