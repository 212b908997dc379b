"""The exact engine against schedules worked out by hand from ``Shape.iteration_time``.

Each test follows vLLM v1's scheduler step by step: which tokens each iteration
carries, how long it lasts (``iteration_time`` of that composition), and when
each request's first and last tokens come.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.core import ClientPolicy, DeploymentPlan, Simulation
from sim.perf import Shape

REL = 1e-12


@pytest.fixture(scope="module")
def shape() -> Shape:
    return Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                 precision="FP8", max_concurrency=8)


def simulate(shape, arrivals, inp, out, *, budget=2048, admission="reserve", block=16,
             replicas=1, engine="exact"):
    plan = DeploymentPlan(
        name="d", shape=shape, arrival_s=np.asarray(arrivals, float),
        input_tokens=np.asarray(inp), output_tokens=np.asarray(out), replicas=replicas,
        datacenter="DC", max_num_batched_tokens=budget, kv_block_tokens=block,
        kv_admission=admission, context_tokens=shape.model_info.max_context,
    )
    sim = Simulation([plan], horizon_s=1000.0, clients=ClientPolicy(max_retries=0),
                     jitter_rng=np.random.default_rng(0), engine=engine)
    sim.run()
    return sim


def decode(shape, t, batch, kv, k):
    """End of ``k`` decode iterations of ``batch`` requests starting at ``t`` with context kv."""
    for _ in range(k):
        t += shape.iteration_time(batch, kv, 0)
        kv += batch
    return t


@pytest.mark.parametrize(("model", "count", "extra"), [
    ("llama-v3p1-8b-instruct", 1, {}),
    ("llama-v3p1-70b-instruct", 4, {}),
    ("llama-v3p1-8b-instruct", 1,
     {"speculative": {"kind": "draft", "tokens": 3, "acceptance_rate": 0.7}}),
])
def test_iteration_terms_reproduce_iteration_time(model, count, extra):
    from sim.engine.price import iter_time

    shape = Shape(model=model, accelerator="H100_80GB", count=count, precision="FP8",
                  max_concurrency=8, **extra)
    s = simulate(shape, [], [], []).state  # the engine's tables of this shape
    rng = np.random.default_rng(3)
    cases = [(0, 0, 1, 0), (0, 0, 2048, 0), (8, 0, 0, 0), (1, 1, 0, 0), (8, 100, 2040, 10)]
    for _ in range(300):
        b = int(rng.integers(0, 9))
        p = int(rng.integers(0, 2049 - b))
        cases.append((b, float(rng.integers(0, 10**6)) * (b > 0), p,
                      float(rng.integers(0, 10**8)) * (p > 0)))
    for b, kv, p, pkv in cases:
        want = shape.iteration_time(b, kv, p, pkv)
        got = iter_time(0, b, kv, p, pkv, s.d_M, s.d_C, s.d_f, s.d_PF)
        assert got == want, (b, kv, p, pkv)


def test_one_request_prefill_then_decode(shape):
    sim = simulate(shape, [0.0], [100], [3])
    t1 = shape.iteration_time(0, 0, 100)  # the prompt alone: weights read once
    t3 = decode(shape, t1, 1, 101, 2)  # contexts 100 + 1, then 100 + 2
    assert sim.state.first_t[0] == pytest.approx(t1, rel=REL)
    assert sim.state.finish_t[0] == pytest.approx(t3, rel=REL)


def test_long_prompt_is_chunked_with_attention_to_its_cached_part(shape):
    sim = simulate(shape, [0.0], [5000], [2])
    t = shape.iteration_time(0, 0, 2048)
    t += shape.iteration_time(0, 0, 2048, 2048 * 2048)
    t += shape.iteration_time(0, 0, 904, 904 * 4096)
    assert sim.state.first_t[0] == pytest.approx(t, rel=REL)
    assert sim.state.finish_t[0] == pytest.approx(t + shape.iteration_time(1, 5001, 0), rel=REL)


def test_two_prompts_share_an_iteration_and_decode_together(shape):
    # A (3000 tokens) takes the whole first iteration; A's last 952 tokens and
    # all of B's 100 share the second; both first tokens come at its end.
    sim = simulate(shape, [0.0, 0.0], [3000, 100], [4, 2])
    t1 = shape.iteration_time(0, 0, 2048)
    t2 = t1 + shape.iteration_time(0, 0, 1052, 952 * 2048)
    t3 = t2 + shape.iteration_time(2, 3001 + 101, 0)  # B's second token: B is done
    t5 = decode(shape, t3, 1, 3002, 2)
    s = sim.state
    assert s.first_t[0] == pytest.approx(t2, rel=REL)
    assert s.first_t[1] == pytest.approx(t2, rel=REL)
    assert s.finish_t[1] == pytest.approx(t3, rel=REL)
    assert s.finish_t[0] == pytest.approx(t5, rel=REL)


def test_a_request_arriving_mid_iteration_joins_the_next_one(shape):
    # A decodes alone; B arrives during A's 4th decode iteration and is
    # prefilled in the 5th, beside A's decode, within one token budget.
    t1 = shape.iteration_time(0, 0, 10)
    ends = [t1]
    kv = 11
    for _ in range(10):
        ends.append(ends[-1] + shape.iteration_time(1, kv, 0))
        kv += 1
    arrive = 0.5 * (ends[3] + ends[4])
    sim = simulate(shape, [0.0, arrive], [10, 50], [30, 2])
    t_b = ends[4] + shape.iteration_time(1, 10 + 5, 50)
    s = sim.state
    assert s.first_t[1] == pytest.approx(t_b, rel=REL)
    assert s.finish_t[1] == pytest.approx(t_b + shape.iteration_time(2, 16 + 51, 0), rel=REL)
    assert s.start_t[1] == arrive


def test_the_token_budget_includes_decode_tokens(shape):
    # budget 16: an iteration carries every decode, then prompt tokens up to 16 in all
    shape9 = Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                   precision="FP8", max_concurrency=9)
    # A alone first; seven 1-token prompts and C (20 tokens) arrive during its prefill
    arrivals = [0.0] + [1e-6] * 7 + [2e-6]
    sim = simulate(shape9, arrivals, [1] * 8 + [20], [100] * 8 + [2], budget=16)
    s = sim.state
    t1 = shape9.iteration_time(0, 0, 1)
    # A decodes (context 2) beside the seven prompts and 8 of C's tokens: 1 + 15
    t2 = t1 + shape9.iteration_time(1, 2, 15)
    assert s.first_t[1:8] == pytest.approx(np.full(7, t2), rel=REL)
    # eight decodes (A: 3, the others: 2 each) + 8 tokens of C, then + its last 4
    t3 = t2 + shape9.iteration_time(8, 3 + 7 * 2, 8, 8 * 8)
    t4 = t3 + shape9.iteration_time(8, 3 + 7 * 2 + 8, 4, 4 * 16)
    assert s.first_t[8] == pytest.approx(t4, rel=REL)


def test_grow_preempts_the_newest_request_and_recomputes_it(shape):
    small = Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                  precision="FP8", max_concurrency=8)
    small.kv_capacity_tokens = 64  # four blocks of 16
    sim = simulate(small, [0.0, 1e-6], [20, 20], [30, 30], admission="grow")
    s = sim.state
    assert sim.counters(0)["preemptions"] == 1
    assert (s.status == 1).all()
    # A's prompt alone, then A's first decode beside B's prompt: 2 blocks each, all four
    t1 = small.iteration_time(0, 0, 20)
    t2 = t1 + small.iteration_time(1, 21, 20)
    assert s.first_t == pytest.approx([t1, t2], rel=REL)
    # 11 more iterations fill A's second block (cache 32 tokens); the next
    # needs a fifth block: B, the newest, is preempted having produced 12
    # tokens, and A decodes alone to its 30th token
    t13 = decode(small, t2, 2, 22 + 21, 11)
    t_a = decode(small, t13, 1, 20 + 13, 30 - 13)
    assert s.finish_t[0] == pytest.approx(t_a, rel=REL)
    # then B is admitted again: prompt + its 12 tokens recomputed in one pass
    # (which makes its 13th token), then 17 decode iterations
    t_b = t_a + small.iteration_time(0, 0, 32)
    t_b = decode(small, t_b, 1, 20 + 13, 17)
    assert s.finish_t[1] == pytest.approx(t_b, rel=REL)
    assert s.first_t[1] == pytest.approx(t2, rel=REL)  # the client kept its stream


def test_over_long_requests_are_refused_with_400(shape):
    context = shape.model_info.max_context
    for engine in ("fast", "exact"):
        sim = simulate(shape, [0.0, 0.1], [context, 100], [10, 10], engine=engine)
        s = sim.state
        assert list(s.status) == [5, 1]  # rejected_400, ok
        assert s.finish_t[0] == 0.0 and np.isnan(s.start_t[0])
        assert sim.counters(0)["http_400"] == 1
        assert s.attempts[0] == 1


def test_kv_beyond_one_replica_is_refused_with_400(shape):
    small = Shape(model="llama-v3p1-8b-instruct", accelerator="H100_80GB", count=1,
                  precision="FP8", max_concurrency=8)
    small.kv_capacity_tokens = 1000
    for engine in ("fast", "exact"):
        sim = simulate(small, [0.0, 0.0], [990, 900], [20, 20], engine=engine)
        assert list(sim.state.status) == [5, 1]
        assert sim.counters(0)["http_400"] == 1
