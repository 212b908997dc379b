"""Invariants of generated workloads over random rates, durations and seeds:
arrivals sorted and inside ``[0, duration)``, token counts >= 1 and within
their clip bounds, determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.workload import TrafficSpec, generate

# Keep the expected number of requests small (rate x duration <= 20 x 500).
rates = st.floats(0.01, 20.0)
zero_or_rates = st.one_of(st.just(0.0), rates)
seconds = st.floats(0.5, 500.0)


def _duration(x: float) -> str:
    return f"{x!r}s"


@st.composite
def arrival_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["poisson", "sinusoid", "hourly", "ramp", "burst", "spikes"]))
    if kind == "poisson":
        return {"kind": "poisson", "rps": draw(rates)}
    if kind == "sinusoid":
        spec = {
            "kind": "diurnal",
            "mean_rps": draw(rates),
            "peak_to_mean": draw(st.floats(1.0, 8.0)),
            "period": _duration(draw(st.floats(1.0, 1000.0))),
            "peak_at": _duration(draw(st.floats(0.0, 2000.0))),
        }
        if draw(st.booleans()):
            spec["weekly_weights"] = draw(st.lists(st.floats(0.1, 5), min_size=7, max_size=7))
        return spec
    if kind == "hourly":
        weights = draw(st.lists(st.floats(0.0, 10.0), min_size=24, max_size=24))
        weights[draw(st.integers(0, 23))] = 1.0  # not all zero
        return {"kind": "diurnal", "mean_rps": draw(rates), "hourly_weights": weights}
    if kind == "ramp":
        start, end = draw(zero_or_rates), draw(rates)
        if draw(st.booleans()):
            start, end = end, start
        spec = {"kind": "ramp", "start_rps": start, "end_rps": end}
        if draw(st.booleans()):
            spec["ramp_duration"] = _duration(draw(seconds))
        return spec
    if kind == "burst":
        base = draw(st.floats(0.0, 5.0))
        return {
            "kind": "burst",
            "base_rps": base,
            "burst_rps": base + draw(rates),
            "mean_burst": _duration(draw(st.floats(0.01, 100.0))),
            "mean_gap": _duration(draw(st.floats(0.01, 100.0))),
        }
    starts = sorted(draw(st.lists(st.floats(0.0, 600.0), max_size=5, unique=True)))
    spikes = []
    for a, b in zip(starts, [*starts[1:], 1e9][: len(starts)], strict=True):
        length = min(draw(st.floats(0.01, 100.0)), b - a)
        if length > 0:
            spikes.append({"at": _duration(a), "duration": _duration(length), "rps": draw(rates)})
    return {"kind": "spikes", "base_rps": draw(rates), "spikes": spikes}


lengths = st.one_of(
    st.builds(lambda v: {"kind": "fixed", "value": v}, st.integers(1, 10_000)),
    st.builds(lambda m: {"kind": "exponential", "mean": m}, st.floats(1.0, 5000.0)),
    st.builds(
        lambda med, f: {"kind": "lognormal", "median": med, "p90": med * f},
        st.floats(0.1, 5000.0),
        st.floats(1.01, 50.0),
    ),
    st.builds(
        lambda m, lo, width: {"kind": "exponential", "mean": m, "min": lo, "max": lo + width},
        st.floats(1.0, 500.0),
        st.integers(1, 100),
        st.integers(0, 100),
    ),
)


@settings(max_examples=60, deadline=None)
@given(
    arrivals=arrival_specs(),
    input_tokens=lengths,
    output_tokens=lengths,
    duration=st.floats(0.0, 500.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_generated_workloads_are_well_formed(
    arrivals: dict[str, Any],
    input_tokens: dict[str, Any],
    output_tokens: dict[str, Any],
    duration: float,
    seed: int,
) -> None:
    traffic = TrafficSpec.model_validate(
        {"arrivals": arrivals, "input_tokens": input_tokens, "output_tokens": output_tokens}
    )
    w = generate(traffic, duration, np.random.SeedSequence(seed))
    t = w.arrival_s
    assert t.dtype == np.float64 and t.ndim == 1
    assert len(w) == t.size == w.input_tokens.size == w.output_tokens.size
    assert np.all(np.diff(t) >= 0)
    if t.size:
        assert t[0] >= 0.0 and t[-1] < duration
        assert np.all(np.isfinite(t))
    for tokens, spec in ((w.input_tokens, input_tokens), (w.output_tokens, output_tokens)):
        assert tokens.dtype == np.int64
        assert np.all(tokens >= spec.get("min", 1))
        if "max" in spec:
            assert np.all(tokens <= spec["max"])
    again = generate(traffic, duration, np.random.SeedSequence(seed))
    assert np.array_equal(t, again.arrival_s)
    assert np.array_equal(w.input_tokens, again.input_tokens)
    assert np.array_equal(w.output_tokens, again.output_tokens)


@settings(max_examples=30, deadline=None)
@given(
    time_scale=st.floats(0.05, 20.0),
    rate_scale=st.floats(0.05, 4.0),
    loop=st.booleans(),
    duration=st.floats(0.0, 5000.0),
    n=st.integers(2, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_trace_replay_is_well_formed(
    tmp_path_factory: Any,
    time_scale: float,
    rate_scale: float,
    loop: bool,
    duration: float,
    n: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("trace")
    stamps = np.sort(rng.uniform(0, 100_000, n)).round(3)
    stamps[-1] = stamps[0] + 1000.0 + stamps[-1]  # at least two distinct timestamps
    with open(folder / "t.jsonl", "w") as f:
        for i, ms in enumerate(stamps):
            f.write(
                f'{{"timestamp": {float(ms)!r}, "input_length": {i + 1}, "output_length": 1}}\n'
            )
    traffic = TrafficSpec.model_validate(
        {
            "arrivals": {
                "kind": "trace",
                "path": "t.jsonl",
                "time_scale": time_scale,
                "rate_scale": rate_scale,
                "loop": loop,
            }
        }
    )
    w = generate(traffic, duration, np.random.SeedSequence(seed), base_dir=folder)
    t = w.arrival_s
    assert np.all(np.diff(t) >= 0)
    if t.size:
        assert t[0] >= 0.0 and t[-1] < duration
    assert np.all((w.input_tokens >= 1) & (w.input_tokens <= n))
    assert np.all(w.output_tokens == 1)
