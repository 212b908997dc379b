"""Trace files: reading the Azure traces, replay with time and rate scaling,
JSONL/CSV round trips, and one clear error (with its line) per defect."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.workload import (
    TraceArrivals,
    TrafficSpec,
    Workload,
    generate,
    read_trace,
    validate_traffic,
    write_trace,
)
from sim.workload.arrivals import trace_period

TRACES = Path(__file__).resolve().parents[2] / "scenarios" / "traces"
CONV = TRACES / "AzureLLMInferenceTrace_conv.csv"
CODE = TRACES / "AzureLLMInferenceTrace_code.csv"
N_CONV = 19_366
SEEDS = range(5)


@pytest.fixture(scope="module")
def conv() -> Workload:
    return read_trace(CONV)


def replay(duration_s: float, seed: int = 0, **arrivals: object) -> Workload:
    traffic = TrafficSpec.model_validate(
        {"arrivals": {"kind": "trace", "path": CONV.name, **arrivals}}
    )
    return generate(traffic, duration_s, np.random.SeedSequence(seed), base_dir=TRACES)


def test_azure_conversation_trace(conv: Workload) -> None:
    assert len(conv) == N_CONV
    assert conv.arrival_s[0] == 0.0
    span = conv.arrival_s[-1]
    # 2023-11-16 18:15:46.6805900 to 19:14:08.4025270
    assert span == pytest.approx(58 * 60 + 21.7219370, abs=1e-6)
    assert N_CONV / span == pytest.approx(5.53, abs=0.01)
    gaps = np.diff(conv.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.09, abs=0.02)  # data/README.md
    assert np.median(conv.input_tokens) == 1020
    assert np.median(conv.output_tokens) == 129
    assert read_trace(CODE).arrival_s.size == 8_819


def test_replay_reproduces_the_trace(conv: Workload) -> None:
    w = replay(3600.0)
    assert len(w) == N_CONV
    assert np.array_equal(w.arrival_s, conv.arrival_s)
    assert np.array_equal(w.input_tokens, conv.input_tokens)
    assert np.array_equal(w.output_tokens, conv.output_tokens)


def test_replay_is_cut_at_the_end_of_the_run(conv: Workload) -> None:
    w = replay(600.0)
    assert len(w) == int(np.sum(conv.arrival_s < 600.0))
    assert w.arrival_s[-1] < 600.0


def test_time_scale_stretches_the_time_axis(conv: Workload) -> None:
    slow = replay(2 * 3600.0, time_scale=2)
    assert len(slow) == N_CONV
    assert np.allclose(slow.arrival_s, 2 * conv.arrival_s)
    assert len(slow) / slow.arrival_s[-1] == pytest.approx(5.53 / 2, abs=0.01)
    fast = replay(1800.0, time_scale=0.5)
    assert len(fast) == N_CONV
    assert np.array_equal(fast.output_tokens, conv.output_tokens)


def test_rate_scale_below_one_thins(conv: Workload) -> None:
    for seed in SEEDS:
        w = replay(3600.0, seed, rate_scale=0.3)
        mean, sd = 0.3 * N_CONV, math.sqrt(N_CONV * 0.3 * 0.7)
        assert abs(len(w) - mean) <= 5 * sd
        # the kept requests are the trace's own, at their own times
        rows = np.searchsorted(conv.arrival_s, w.arrival_s)
        assert np.array_equal(conv.arrival_s[rows], w.arrival_s)
        assert np.array_equal(conv.input_tokens[rows], w.input_tokens)


def test_rate_scale_above_one_superposes_shifted_copies(conv: Workload) -> None:
    period = trace_period(conv)
    assert period < 3600.0
    three = replay(3600.0, rate_scale=3)
    assert len(three) == 3 * N_CONV  # every copy lies in [0, period)
    assert np.all(np.diff(three.arrival_s) >= 0)
    assert np.array_equal(np.sort(three.input_tokens), np.sort(np.tile(conv.input_tokens, 3)))
    for seed in SEEDS:
        w = replay(3600.0, seed, rate_scale=2.5)
        extra = len(w) - 2 * N_CONV
        assert abs(extra - 0.5 * N_CONV) <= 5 * math.sqrt(N_CONV * 0.25)
        # copies are independent: their superposition stays near-Poisson (CV ~ 1),
        # rather than the batches that duplicated timestamps would make
        assert np.mean(np.diff(w.arrival_s) == 0) < 0.001
        gaps = np.diff(w.arrival_s)
        assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.1)


def test_loop_repeats_the_trace(conv: Workload) -> None:
    period = trace_period(conv)
    assert period == pytest.approx(conv.arrival_s[-1] * N_CONV / (N_CONV - 1))
    w = replay(3 * period, loop=True)
    assert len(w) == 3 * N_CONV
    assert np.allclose(w.arrival_s[N_CONV : 2 * N_CONV], conv.arrival_s + period)
    assert np.array_equal(w.output_tokens, np.tile(conv.output_tokens, 3))
    # loop with time and rate scaling: one hour of trace as 10 h at half the rate
    half = replay(10 * 3600.0, time_scale=2, rate_scale=0.5, loop=True)
    expected = 10 * 3600.0 / (2 * period) * N_CONV * 0.5
    assert abs(len(half) - expected) <= 5 * math.sqrt(expected)


def test_token_lengths_can_replace_the_traces_own(conv: Workload) -> None:
    traffic = TrafficSpec.model_validate(
        {
            "arrivals": {"kind": "trace", "path": str(CONV)},
            "output_tokens": {"kind": "fixed", "value": 42},
        }
    )
    w = generate(traffic, 3600.0, np.random.SeedSequence(0))
    assert np.array_equal(w.input_tokens, conv.input_tokens)
    assert np.all(w.output_tokens == 42)


def test_jsonl_round_trip(tmp_path: Path, conv: Workload) -> None:
    path = tmp_path / "conv.jsonl"
    write_trace(conv, path)
    assert path.read_text().splitlines()[0].startswith('{"timestamp": 0.0, "input_length": 374')
    back = read_trace(path)
    np.testing.assert_allclose(back.arrival_s, conv.arrival_s, rtol=0, atol=1e-9)
    assert np.array_equal(back.input_tokens, conv.input_tokens)
    assert np.array_equal(back.output_tokens, conv.output_tokens)


def test_csv_round_trip(tmp_path: Path, conv: Workload) -> None:
    path = tmp_path / "conv.csv"
    write_trace(conv, path)
    assert path.read_text().splitlines()[0] == "TIMESTAMP,ContextTokens,GeneratedTokens"
    back = read_trace(path)
    np.testing.assert_allclose(back.arrival_s, conv.arrival_s, rtol=0, atol=1e-6)
    assert np.array_equal(back.output_tokens, conv.output_tokens)


def test_jsonl_extra_keys_and_blank_lines_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(
        '{"timestamp": 1000, "input_length": 5, "output_length": 2, "id": "a"}\n'
        "\n"
        '{"timestamp": 1500.5, "input_length": 7, "output_length": 3.0}\n'
    )
    w = read_trace(path)
    assert np.array_equal(w.arrival_s, [0.0, 0.5005])
    assert np.array_equal(w.output_tokens, [2, 3])


def test_csv_column_order_and_trailing_blank_lines_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "GeneratedTokens,TIMESTAMP,ContextTokens,Note\n"
        "3,2024-05-01 00:00:00,10,x\n"
        "4,2024-05-01 00:00:01.5,11,y\n"
        "\n\n"
    )
    w = read_trace(path)
    assert np.array_equal(w.arrival_s, [0.0, 1.5])
    assert np.array_equal(w.input_tokens, [10, 11])
    assert np.array_equal(w.output_tokens, [3, 4])


# --------------------------------------------------------------------------- bad traces

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD = "2023-11-16 18:17:03.9799600,4808,10\n"


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            HEADER + GOOD + "2023-11-16 18:17:05.0,10,3\n2023-11-16 18:17:04.0,10,3\n",
            "line 4",
            "goes back in time: earlier than the request on line 3",
        ),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,,3\n", "line 3", "empty ContextTokens field"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,10,NaN\n", "line 3", "'NaN' is not a number"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,ten,3\n", "line 3", "'ten' is not a number"),
        (HEADER + GOOD + GOOD + "2023-11-16 18:17:05.0,-3,3\n", "line 4", "'-3' is negative"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,12.5,3\n", "line 3", "not a whole number"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,12,0\n", "line 3", "GeneratedTokens is 0"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,inf,3\n", "line 3", "not finite"),
        (HEADER + GOOD + "yesterday,10,3\n", "line 3", "cannot read timestamp 'yesterday'"),
        (HEADER + GOOD + ",10,3\n", "line 3", "empty TIMESTAMP field"),
        (HEADER + GOOD + "\n" + GOOD, "line 3", "blank line"),
        (HEADER + GOOD + "2023-11-16 18:17:05.0,10,3,7\n", "line 3", "Expected 3 fields"),
        (
            "TIMESTAMP,ContextTokens\n" + "2023-11-16 18:17:05.0,10\n",
            "header",
            "missing column 'GeneratedTokens'",
        ),
        ("", "header", "file is empty"),
        (HEADER, None, "trace has no requests"),
        # the first defect in file order is reported, whatever its column
        (HEADER + "2023-11-16 18:17:05.0,10,x\nbad,10,3\n", "line 2", "'x' is not a number"),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, where: str | None, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_trace(path)
    err = info.value
    assert err.file == str(path)
    assert err.where == where
    assert reason in err.reason


JGOOD = '{"timestamp": 1000, "input_length": 5, "output_length": 2}\n'


@pytest.mark.parametrize(
    ("text", "where", "reason"),
    [
        (
            JGOOD + '{"timestamp": 900, "input_length": 5, "output_length": 2}\n',
            "line 2",
            "goes back in time: earlier than the request on line 1",
        ),
        (JGOOD + "\n" + '{"timestamp": 2000, "input_length": 5,\n', "line 3", "not valid JSON"),
        (
            JGOOD + '{"timestamp": 2000, "input_length": 5}\n',
            "line 2",
            "missing key 'output_length'",
        ),
        (
            JGOOD + '{"timestamp": "noon", "input_length": 5, "output_length": 2}\n',
            "line 2",
            "not a number of milliseconds",
        ),
        (
            JGOOD + '{"timestamp": NaN, "input_length": 5, "output_length": 2}\n',
            "line 2",
            "not finite",
        ),
        (
            JGOOD + '{"timestamp": 2000, "input_length": -5, "output_length": 2}\n',
            "line 2",
            "input_length -5 is negative",
        ),
        (
            JGOOD + '{"timestamp": 2000, "input_length": 5.5, "output_length": 2}\n',
            "line 2",
            "not a whole number",
        ),
        (
            JGOOD + '{"timestamp": 2000, "input_length": null, "output_length": 2}\n',
            "line 2",
            "input_length is null",
        ),
        (JGOOD + "[1, 2, 3]\n", "line 2", "expected a JSON object"),
        ("\n\n", None, "trace has no requests"),
    ],
)
def test_malformed_jsonl(tmp_path: Path, text: str, where: str | None, reason: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_trace(path)
    assert (info.value.file, info.value.where) == (str(path), where)
    assert reason in info.value.reason


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="trace file not found") as info:
        read_trace(tmp_path / "nope.csv")
    assert info.value.file == str(tmp_path / "nope.csv")
    (tmp_path / "t.txt").write_text(HEADER + GOOD)
    with pytest.raises(InputError, match=r"unknown trace format '\.txt'"):
        read_trace(tmp_path / "t.txt")


def test_trace_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text(JGOOD)
    traffic = TrafficSpec(arrivals=TraceArrivals(path="t.jsonl"))
    validate_traffic(traffic, tmp_path)
    w = generate(traffic, 10.0, np.random.SeedSequence(0), base_dir=tmp_path)
    assert len(w) == 1
    with pytest.raises(InputError, match="trace file not found") as info:
        validate_traffic(traffic, tmp_path / "elsewhere")
    assert info.value.file == str(tmp_path / "elsewhere" / "t.jsonl")


def test_validate_traffic_checks_empirical_traces_and_looping(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text(HEADER + GOOD + "x,1,1\n")
    bad_lengths = TrafficSpec.model_validate(
        {
            "arrivals": {"kind": "poisson", "rps": 1},
            "input_tokens": {"kind": "empirical", "path": "bad.csv"},
            "output_tokens": {"kind": "fixed", "value": 1},
        }
    )
    with pytest.raises(InputError) as info:
        validate_traffic(bad_lengths, tmp_path)
    assert info.value.where == "line 3"
    (tmp_path / "one.jsonl").write_text(JGOOD)
    looped = TrafficSpec(arrivals=TraceArrivals(path="one.jsonl", loop=True))
    with pytest.raises(InputError, match="two distinct timestamps"):
        validate_traffic(looped, tmp_path)


def test_csv_timestamps_with_utc_offsets_or_t_separator(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        HEADER + "2024-05-10 00:00:00.009930+00:00,5,1\n"
        "2024-05-10T02:00:01+02:00,5,1\n"
        "2024-05-10 00:00:02.1234567+00:00,5,1\n"
    )
    w = read_trace(path)
    np.testing.assert_allclose(w.arrival_s, [0.0, 0.99007, 2.1135267], rtol=0, atol=1e-9)
