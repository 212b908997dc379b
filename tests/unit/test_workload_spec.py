"""Traffic specs: defaults, units, and refusal of bad values with a clear reason."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from sim.workload import (
    BurstArrivals,
    DiurnalArrivals,
    EmpiricalLength,
    LognormalLength,
    PoissonArrivals,
    SpikesArrivals,
    TraceArrivals,
    TrafficSpec,
)

LENGTHS = {
    "input_tokens": {"kind": "fixed", "value": 100},
    "output_tokens": {"kind": "fixed", "value": 10},
}


def traffic(arrivals: dict[str, object], **lengths: object) -> TrafficSpec:
    return TrafficSpec.model_validate({"arrivals": arrivals, **(lengths or LENGTHS)})


def test_discriminated_union_picks_the_kind() -> None:
    t = traffic({"kind": "poisson", "rps": 2})
    assert isinstance(t.arrivals, PoissonArrivals)
    assert t.arrivals.rps == 2.0


def test_sinusoid_defaults_are_filled_in_and_units_parsed() -> None:
    a = traffic({"kind": "diurnal", "mean_rps": 4, "peak_to_mean": 3}).arrivals
    assert isinstance(a, DiurnalArrivals)
    assert a.period == 86400.0
    assert a.peak_at == 14 * 3600.0
    b = DiurnalArrivals.model_validate(
        {"kind": "diurnal", "mean_rps": 4, "peak_to_mean": 2, "period": "12h", "peak_at": "90m"}
    )
    assert (b.period, b.peak_at) == (43200.0, 5400.0)


def test_trace_defaults() -> None:
    t = traffic({"kind": "trace", "path": "t.csv"}, input_tokens=None, output_tokens=None)
    assert isinstance(t.arrivals, TraceArrivals)
    assert (t.arrivals.time_scale, t.arrivals.rate_scale, t.arrivals.loop) == (1.0, 1.0, False)
    assert t.input_tokens is None and t.output_tokens is None


@pytest.mark.parametrize(
    ("arrivals", "reason"),
    [
        ({"kind": "poisson", "rps": 0}, "greater than 0"),
        ({"kind": "poisson", "rps": -1}, "greater than 0"),
        ({"kind": "poisson", "rps": math.nan}, "finite number"),
        ({"kind": "poisson", "rps": math.inf}, "finite number"),
        ({"kind": "poisson", "rps": True}, "expected a number"),
        ({"kind": "poisson", "rps": 1, "burst": 2}, "Extra inputs are not permitted"),
        ({"kind": "poison", "rps": 1}, "does not match any of the expected tags"),
        ({"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 0.5}, "greater than or equal to 1"),
        ({"kind": "diurnal", "mean_rps": 1}, "need either peak_to_mean"),
        (
            {"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "hourly_weights": [1] * 24},
            "not both",
        ),
        (
            {"kind": "diurnal", "mean_rps": 1, "hourly_weights": [1] * 24, "period": "12h"},
            "period and peak_at shape the sinusoid",
        ),
        ({"kind": "diurnal", "mean_rps": 1, "hourly_weights": [1] * 23}, "at least 24"),
        ({"kind": "diurnal", "mean_rps": 1, "hourly_weights": [0] * 24}, "all zero"),
        (
            {"kind": "diurnal", "mean_rps": 1, "hourly_weights": [1] * 23 + [-1]},
            "greater than or equal to 0",
        ),
        (
            {"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "weekly_weights": [1] * 6},
            "at least 7",
        ),
        ({"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "period": "0s"}, "longer than zero"),
        ({"kind": "diurnal", "mean_rps": 1, "peak_to_mean": 2, "period": 3600}, "needs a unit"),
        ({"kind": "ramp", "start_rps": 0, "end_rps": 0}, "both 0"),
        ({"kind": "ramp", "start_rps": -1, "end_rps": 3}, "greater than or equal to 0"),
        (
            {"kind": "burst", "base_rps": 5, "burst_rps": 2, "mean_burst": "1m", "mean_gap": "9m"},
            "must be above base_rps",
        ),
        (
            {"kind": "burst", "base_rps": 1, "burst_rps": 2, "mean_burst": "0s", "mean_gap": "9m"},
            "longer than zero",
        ),
        (
            {
                "kind": "spikes",
                "base_rps": 1,
                "spikes": [
                    {"at": "10m", "duration": "5m", "rps": 9},
                    {"at": "12m", "duration": "1m", "rps": 9},
                ],
            },
            "spikes overlap",
        ),
        ({"kind": "spikes", "base_rps": 0, "spikes": []}, "no traffic"),
        ({"kind": "trace", "path": "t.csv", "time_scale": 0}, "greater than or equal to 0.001"),
        ({"kind": "trace", "path": "t.csv", "rate_scale": math.nan}, "finite number"),
        ({"kind": "trace", "path": ""}, "at least 1 character"),
    ],
)
def test_bad_arrivals_are_refused_with_a_reason(arrivals: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        traffic(arrivals)


@pytest.mark.parametrize(
    ("length", "reason"),
    [
        ({"kind": "fixed", "value": 0}, "greater than or equal to 1"),
        ({"kind": "fixed", "value": 2.5}, "integer"),
        ({"kind": "exponential", "mean": 0.5}, "greater than or equal to 1"),
        ({"kind": "lognormal", "median": 100, "p90": 100}, "must be above median"),
        ({"kind": "lognormal", "median": 100, "p90": 50}, "must be above median"),
        ({"kind": "lognormal", "median": 1, "p90": 1e12}, "too wide"),
        ({"kind": "lognormal", "median": math.nan, "p90": 10}, "finite number"),
        ({"kind": "fixed", "value": 10, "min": 20, "max": 5}, "below min"),
        ({"kind": "empirical", "path": "t.csv", "column": "both"}, "'input' or 'output'"),
        ({"kind": "uniform", "low": 1}, "does not match any of the expected tags"),
    ],
)
def test_bad_lengths_are_refused_with_a_reason(length: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        traffic({"kind": "poisson", "rps": 1}, input_tokens=length, output_tokens=length)


def test_lengths_are_required_unless_the_trace_brings_them() -> None:
    with pytest.raises(ValidationError, match="output_tokens required"):
        TrafficSpec.model_validate(
            {"arrivals": {"kind": "poisson", "rps": 1}, "input_tokens": LENGTHS["input_tokens"]}
        )


def test_derived_quantities() -> None:
    b = BurstArrivals(base_rps=1, burst_rps=10, mean_burst="10s", mean_gap="90s")  # type: ignore[arg-type]
    assert b.mean_rps == pytest.approx((1 * 90 + 10 * 10) / 100)
    ln = LognormalLength(median=1000, p90=3000)
    assert math.exp(ln.mu) == pytest.approx(1000)
    assert math.exp(ln.mu + 1.2815515655446004 * ln.sigma) == pytest.approx(3000)
    assert EmpiricalLength(path="t.csv").column is None
    s = SpikesArrivals.model_validate(
        {"base_rps": 1, "spikes": [{"at": "1h", "duration": "5m", "rps": 20}]}
    )
    assert s.spikes[0].at == 3600.0 and s.spikes[0].duration == 300.0


def test_specs_are_frozen() -> None:
    p = PoissonArrivals(rps=1)
    with pytest.raises(ValidationError):
        p.rps = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    "arrivals",
    [
        {"kind": "diurnal", "mean_rps": 4, "peak_to_mean": 3, "weekly_weights": [1] * 7},
        {"kind": "diurnal", "mean_rps": 4, "hourly_weights": list(range(24))},
        {"kind": "ramp", "start_rps": 0, "end_rps": 3, "ramp_duration": "0.1234567s"},
        {"kind": "burst", "base_rps": 1, "burst_rps": 9, "mean_burst": "90s", "mean_gap": "1h"},
        {"kind": "spikes", "base_rps": 1, "spikes": [{"at": "1.5h", "duration": "7s", "rps": 9}]},
        {"kind": "trace", "path": "t.csv", "rate_scale": 2.5, "loop": True},
    ],
)
def test_json_dump_reads_back_to_the_same_spec(arrivals: dict[str, object]) -> None:
    spec = traffic(arrivals)
    dumped = spec.model_dump(mode="json")
    assert TrafficSpec.model_validate(dumped) == spec
    if arrivals["kind"] == "diurnal" and "peak_to_mean" in arrivals:
        assert dumped["arrivals"]["period"] == "1d" and dumped["arrivals"]["peak_at"] == "14h"
