"""Measured load-test curves: interpolation, CSV reading, shapes built on them."""

from __future__ import annotations

import pytest

from sim.errors import InputError
from sim.perf import MeasuredCurve, Shape

CSV = """# load test, 1000 in / 200 out
concurrency,output_tokens_per_s,prefill_tokens_per_s
1,50,9000
8,320,
32,1000,12000
"""


def test_interpolation_inside_below_and_beyond():
    c = MeasuredCurve([1, 8, 32], [50, 320, 1000])
    assert c.output_rate(8) == 320
    assert c.output_rate(20) == pytest.approx(320 + (1000 - 320) * 12 / 24)
    assert c.output_rate(64) == 1000  # flat beyond the last point
    two = MeasuredCurve([2, 8], [100, 320])
    assert two.output_rate(1) == pytest.approx(50)  # proportional below the first point
    assert c.output_rate(0) == 0.0


def test_unsorted_points_are_sorted():
    c = MeasuredCurve([32, 1, 8], [1000, 50, 320])
    assert list(c.concurrency) == [1, 8, 32]


def test_from_csv(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text(CSV)
    c = MeasuredCurve.from_csv(path)
    assert c.output_rate(8) == 320 and c.prefill_tokens_per_s == 12000 and c.source == "curve.csv"


def test_shape_on_a_curve(tmp_path):
    path = tmp_path / "curve.csv"
    path.write_text(CSV)
    s = Shape("llama-v3p1-70b-instruct", "H100_80GB", 4, "FP8", curve=path)
    assert s.decode_step_time(8, 1000) == pytest.approx(8 / 320)
    assert s.decode_step_time(8, 1e6) == s.decode_step_time(8, 1000)  # KV ignored
    assert s.decode_step_time(20, 0) == pytest.approx(20 / s.curve.output_rate(20))
    assert s.prefill_rate() == 12000 and s.prefill_rate(5000) == 12000
    assert s.prefill_seconds(1200) == pytest.approx(0.1)
    big_m, m1, _big_c, c1 = s.step_table(4)
    assert big_m[2] == pytest.approx(2 / s.curve.output_rate(2)) and m1 == c1 == 0
    assert s.kv_capacity_tokens > 0  # memory still from the roofline
    # closed loop with the curve's step times
    c, i, o = 8, 1000, 200
    assert s.throughput(c, i, o) == pytest.approx(c * o / (c * i / 12000 + (o - 1) * c / 320))


def test_curve_without_prefill_column_uses_the_roofline(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("concurrency,output_tokens_per_s\n1,40\n16,500\n")
    s = Shape("llama-v3p1-8b-instruct", "H100_80GB", 1, "FP8", curve=path)
    roof = Shape("llama-v3p1-8b-instruct", "H100_80GB", 1, "FP8")
    assert s.prefill_rate(1000) == roof.prefill_rate(1000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("concurrency,tokens\n1,2\n", "missing column(s) output_tokens_per_s"),
        ("concurrency,output_tokens_per_s,gpu\n1,2,x\n", "unknown column(s) gpu"),
        ("concurrency,output_tokens_per_s\n1,abc\n", "non-numeric"),
        ("concurrency,output_tokens_per_s\n0,10\n", "concurrency must be ≥ 1"),
        ("concurrency,output_tokens_per_s\n1,10\n1,20\n", "a concurrency appears twice"),
        ("concurrency,output_tokens_per_s\n", "needs one or more"),
    ],
)
def test_bad_curves_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        MeasuredCurve.from_csv(path)
    assert message in str(err.value) and err.value.file == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read curve"):
        MeasuredCurve.from_csv(tmp_path / "nope.csv")
