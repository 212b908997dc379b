"""Prefix information in workloads: trace hash_ids and sessions, the session model."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from sim.errors import InputError
from sim.workload import TrafficSpec, generate, read_trace, write_trace
from sim.workload.base import Workload
from sim.workload.generate import WorkloadStream
from sim.workload.prefixes import zipf_weights

BLOCK = 512


def chat(**extra: object) -> TrafficSpec:
    doc = {
        "arrivals": {"kind": "poisson", "rps": 0.2},
        "input_tokens": {"kind": "lognormal", "median": 300, "p90": 900},
        "output_tokens": {"kind": "exponential", "mean": 250},
        "sessions": {"turns": {"kind": "exponential", "mean": 5}, "think_time": "30s"},
        "system_prompts": {"count": 3, "tokens": 1200, "zipf": 1.0},
        **extra,
    }
    return TrafficSpec.model_validate(doc)


def chains(w: Workload) -> list[list[int]]:
    off = w.block_offsets
    assert w.block_ids is not None
    return [w.block_ids[off[i] : off[i + 1]].tolist() for i in range(len(w))]


def test_jsonl_hash_ids_and_sessions_round_trip(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [
        {"timestamp": 0, "input_length": 1000, "output_length": 5, "hash_ids": [1, 2],
         "session_id": "a"},
        {"timestamp": 500, "input_length": 1500, "output_length": 7, "hash_ids": [1, 2, 3],
         "session_id": "b"},
        {"timestamp": 900, "input_length": 20, "output_length": 1, "hash_ids": [9],
         "session_id": "a"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    w = read_trace(path)
    assert w.n_blocks.tolist() == [2, 3, 1]
    assert chains(w) == [[1, 2], [1, 2, 3], [9]]
    assert w.session.tolist() == [0, 1, 0]
    out = tmp_path / "back.jsonl"
    write_trace(w, out)
    again = read_trace(out)
    assert chains(again) == chains(w) and again.session.tolist() == [0, 1, 0]


def test_hash_ids_only_when_every_line_has_them(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n'
                    '{"timestamp": 1, "input_length": 10, "output_length": 5}\n')
    w = read_trace(path)
    assert not w.has_prefixes and w.session is None


@pytest.mark.parametrize(("value", "reason"), [
    ('"x"', "hash_ids must be a list of integers >= 0"),
    ("[1, -2]", "hash_ids must be a list of integers >= 0"),
    ("[1.5]", "hash_ids must be a list of integers >= 0"),
])
def test_bad_hash_ids_name_the_line(tmp_path, value, reason):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5}\n'
                    f'{{"timestamp": 1, "input_length": 10, "output_length": 5, '
                    f'"hash_ids": {value}}}\n')
    with pytest.raises(InputError) as e:
        read_trace(path)
    assert e.value.where == "line 2" and reason in str(e.value)


def test_each_turn_extends_the_previous_prompt():
    """Turn t+1's prompt = turn t's prompt + its answer + new user text, and its chain
    repeats turn t's full blocks."""
    w = generate(chat(), 3600.0, np.random.SeedSequence(4))
    assert w.has_prefixes and w.session is not None
    ch = chains(w)
    by_session: dict[int, list[int]] = {}
    for i, s in enumerate(w.session.tolist()):
        by_session.setdefault(s, []).append(i)
    multi = [rows for rows in by_session.values() if len(rows) > 1]
    assert len(multi) > 20
    for rows in multi:
        for a, b in itertools.pairwise(rows):
            assert w.input_tokens[b] > w.input_tokens[a] + w.output_tokens[a]
            full = w.input_tokens[a] // BLOCK
            assert ch[b][:full] == ch[a][:full]
            assert len(ch[a]) == math.ceil(w.input_tokens[a] / BLOCK)
            if full < len(ch[a]):  # a partial last block is never shared
                assert ch[a][full] not in ch[b]
    # first turns: the system prompt's two full blocks (1200 tokens), shared by sessions
    firsts = [ch[rows[0]][:2] for rows in by_session.values()]
    distinct = {tuple(f) for f in firsts}
    assert 1 < len(distinct) <= 3
    assert all(w.input_tokens[rows[0]] > 1200 for rows in by_session.values())


def test_system_prompt_popularity_is_zipf():
    spec = chat(sessions=None, system_prompts={"count": 4, "tokens": 1024, "zipf": 1.0},
                arrivals={"kind": "poisson", "rps": 5})
    w = generate(spec, 3600.0, np.random.SeedSequence(2))
    assert w.session is None  # one-turn requests
    first = np.array([c[0] for c in chains(w)])
    _, counts = np.unique(first, return_counts=True)
    share = np.sort(counts)[::-1] / counts.sum()
    expected = zipf_weights(4, 1.0)
    n = len(first)
    assert np.all(np.abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / n))


def test_windows_do_not_change_the_workload():
    """Sessions that start in one hour continue in the next: taking the stream in
    pieces gives the same requests, ids and sessions as all at once."""
    spec = chat(arrivals={"kind": "poisson", "rps": 0.5})
    whole = generate(spec, 7200.0, np.random.SeedSequence(9))
    stream = WorkloadStream(spec, 7200.0, np.random.SeedSequence(9))
    parts = [stream.take(float(a), float(a) + 900.0) for a in range(0, 7200, 900)]
    parts.append(stream.take(7200.0, math.inf))
    joined = Workload.concat(parts)
    assert np.all(np.diff(joined.arrival_s) >= 0)
    for name in ("arrival_s", "input_tokens", "output_tokens", "n_blocks", "block_ids",
                 "session"):
        assert np.array_equal(getattr(joined, name), getattr(whole, name)), name
    assert whole.arrival_s.max() < 7200.0


def test_trace_copies_get_distinct_ids(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"timestamp": 1000 * i, "input_length": 600, "output_length": 3,
             "hash_ids": [7, 8 + i], "session_id": i % 2} for i in range(10)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = TrafficSpec.model_validate({"arrivals": {"kind": "trace", "path": str(path),
                                                    "rate_scale": 2.0}})
    w = generate(spec, 10.0, np.random.SeedSequence(1))
    firsts = {c[0] for c in chains(w)}
    assert len(w) == 20 and len(firsts) == 2  # copy 0 and copy 1 each share their own
    assert len(set(w.session.tolist())) == 4


def test_sessions_need_synthetic_arrivals(tmp_path):
    with pytest.raises(ValueError, match="a trace brings its own hash_ids"):
        TrafficSpec.model_validate({
            "arrivals": {"kind": "trace", "path": "x.jsonl"},
            "sessions": {"turns": {"kind": "fixed", "value": 2}, "think_time": "5s"},
        })
