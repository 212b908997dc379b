"""The request path against hand-computed timings."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine.core import ClientPolicy, DeploymentPlan, Simulation


class ConstantShape:
    """Prefill at a fixed rate, decode iterations of fixed length (hand-computable)."""

    gpus = 1
    kv_capacity_tokens = 1_000_000

    def __init__(self, prefill=1000.0, step=0.01, chunk=100, max_concurrency=8):
        self._prefill, self._step = prefill, step
        self.prefill_chunk = chunk
        self.max_concurrency = max_concurrency

    def prefill_seconds(self, input_tokens):
        return np.asarray(input_tokens, float) / self._prefill

    def step_table(self, max_batch):
        return np.full(max_batch + 1, self._step), 0.0, np.zeros(max_batch + 1), 0.0

    def iteration_terms(self, max_batch, max_tokens):
        big_m, m1, big_c, c1 = self.step_table(max_batch)
        width = max_tokens + max_batch + 1
        # mode 1, a measured prefill rate: p prompt tokens take p / rate seconds
        return {"M": big_m, "m1": m1, "C": big_c, "c1": c1, "mode": 1,
                "CR": np.arange(max_tokens + 1) / self._prefill,
                "W": np.zeros(width), "Wi": np.zeros(max_batch + 1), "G": np.ones(width),
                "CM": np.zeros(width), "PT": np.zeros(max_tokens + 1),
                "Mr": np.zeros(max_batch + 1), "Cr": np.zeros(max_batch + 1), "m1r": 0.0,
                "c1r": 0.0, "lin": 0.0, "attn": 0.0, "flops": 1.0, "keep": 1.0,
                "overhead_s": 0.0}


def simulate(arrivals, inp, out, *, replicas=1, shape=None, max_queue=None, clients=None,
             horizon=100.0, queue_on_cold_start=False):
    plan = DeploymentPlan(
        name="d", shape=shape or ConstantShape(), arrival_s=np.asarray(arrivals, float),
        input_tokens=np.asarray(inp), output_tokens=np.asarray(out), replicas=replicas,
        datacenter="DC", max_queue=max_queue, queue_on_cold_start=queue_on_cold_start,
    )
    sim = Simulation([plan], horizon_s=horizon, clients=clients or ClientPolicy(max_retries=0),
                     jitter_rng=np.random.default_rng(0))
    sim.run()
    return sim


def test_prefill_then_decode_alone():
    sim = simulate([0.0], [500], [11])
    assert sim.state.first_t[0] == pytest.approx(0.5)
    assert sim.state.finish_t[0] == pytest.approx(0.6)


def test_chunked_prefill_shares_iterations_with_decode():
    # A decodes from 0.5 s, one 0.01 s iteration per token; B arrives at 0.555 s,
    # mid-iteration, so its prefill starts at the iteration's end, 0.56 s.  The
    # token budget (100) includes A's decode token: the first iteration carries
    # 99 of B's tokens (0.01 + 99/1000 s), the next one its last token (0.011 s),
    # which gives B its first token; one more iteration of both, its second.
    sim = simulate([0.0, 0.555], [500, 100], [11, 2])
    first = 0.56 + 0.109 + 0.011
    assert sim.state.first_t[1] == pytest.approx(first)
    assert sim.state.finish_t[1] == pytest.approx(first + 0.01)
    # A: 6 tokens by 0.56, one per iteration after: its 10th at first + 0.02
    assert sim.state.finish_t[0] == pytest.approx(first + 0.02)


def test_a_prompt_alone_pays_one_whole_iteration_with_the_decodes():
    # B's 10-token prompt reaches a replica that decodes A at an iteration
    # boundary: its first token comes one iteration later, the decode step
    # included (0.01 + 10/1000 s), not after 10/100 of one.
    sim = simulate([0.0, 0.55], [500, 10], [11, 2])
    assert sim.state.first_t[1] == pytest.approx(0.55 + 0.01 + 0.01)


def test_fcfs_queue_when_concurrency_is_full():
    shape = ConstantShape(max_concurrency=1)
    sim = simulate([0.0, 0.1], [100, 100], [11, 11], shape=shape)
    # first: prefill 0.1 s + 10 steps = 0.2 s; second waits until 0.2
    assert sim.state.start_t[1] == pytest.approx(0.2)
    assert sim.state.finish_t[1] == pytest.approx(0.4)


def test_max_queue_rejects_with_429():
    shape = ConstantShape(max_concurrency=1)
    sim = simulate([0.0, 0.01, 0.02], [100] * 3, [11] * 3, shape=shape, max_queue=1)
    assert list(sim.state.status) == [1, 1, 3]  # ok, ok, rejected_429
    assert sim.counters(0)["http_429"] == 1


def test_no_ready_replica_answers_503_and_client_retries_on_schedule():
    clients = ClientPolicy(max_retries=5, backoff_base=1.0, backoff_max=60.0, jitter=False)
    sim = simulate([0.0], [10], [2], replicas=0, clients=clients)
    assert sim.state.attempts[0] == 6
    assert sim.state.status[0] == 2  # failed_503
    # attempts at 0, 1, 3, 7, 15, 31: the last one fails at t = 31
    assert sim.state.finish_t[0] == pytest.approx(31.0)
    assert sim.counters(0)["http_503"] == 6


def test_backoff_is_capped():
    # 10 retries, cap 8 s: attempts at 0, 1, 3, 7, 15, 23, 31, 39, 47, 55, 63
    clients = ClientPolicy(max_retries=10, backoff_base=1.0, backoff_max=8.0, jitter=False)
    sim = simulate([0.0], [10], [2], replicas=0, clients=clients)
    assert sim.state.attempts[0] == 11
    assert sim.state.finish_t[0] == pytest.approx(63.0)


def test_full_jitter_draws_delays_within_the_cap():
    # one retry each, drawn uniformly in [0, 4 s)
    clients = ClientPolicy(max_retries=1, backoff_base=4.0, backoff_max=60.0, jitter=True)
    n = 2000
    sim = simulate(np.zeros(n), [10] * n, [2] * n, replicas=0, clients=clients)
    delays = sim.state.finish_t  # the second (last) attempt fails at 0 + delay
    assert delays.min() >= 0.0 and delays.max() < 4.0
    assert delays.mean() == pytest.approx(2.0, rel=0.05)


def test_kv_capacity_limits_admission():
    shape = ConstantShape(max_concurrency=8)
    shape.kv_capacity_tokens = 150  # two requests of 100 tokens do not fit together
    sim = simulate([0.0, 0.0], [50, 50], [50, 50], shape=shape)
    assert sim.state.start_t[1] == pytest.approx(sim.state.finish_t[0])


def test_least_loaded_routing_spreads_requests():
    sim = simulate([0.0, 0.0, 0.0, 0.0], [10] * 4, [100] * 4, replicas=2)
    assert sorted(sim.state.replica) == [0, 0, 1, 1]


def test_compiled_kernels_run_without_reference_counting():
    """Every compiled engine function is built with NRT off (sim.engine.jit): with it on,
    the atomic reference counts of array arguments cost two thirds of the kernel."""
    from sim.engine import exact, fast, heaps, kernel, prefix_cache, price, routers, service
    from sim.engine.jit import JIT

    if not JIT:
        pytest.skip("kernels run as plain Python")
    compiled = [getattr(m, name) for m in (exact, fast, heaps, kernel, prefix_cache, price,
                                            routers, service)
                for name in dir(m) if hasattr(getattr(m, name), "targetoptions")]
    assert len(compiled) > 30
    assert all(fn.targetoptions.get("_nrt") is False for fn in compiled)


def test_the_per_event_functions_are_compiled_inline():
    """The functions every request event runs through are inlined into their callers
    (sim.engine.jit): out of line, each call copied some twenty array descriptors."""
    from sim.engine import exact, fast, heaps, price
    from sim.engine.jit import JIT

    if not JIT:
        pytest.skip("kernels run as plain Python")
    hot = (fast.event, fast.reschedule, fast.fill_fast, exact.event, exact.touch,
           exact.schedule, heaps.ih_update, price.iter_time)
    assert all(fn.targetoptions.get("inline") == "always" for fn in hot)


def test_a_cold_kernel_cache_is_announced(tmp_path, monkeypatch):
    """capsim says it is compiling before a first run, and only then."""
    from sim.engine import jit

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(jit, "JIT", True)
    assert "compiling" in (jit.compile_notice(tmp_path) or "")
    (tmp_path / "kernel.run_until-94.py311.nbi").write_bytes(b"")
    assert jit.compile_notice(tmp_path) is None
    monkeypatch.setattr(jit, "JIT", False)
    (tmp_path / "kernel.run_until-94.py311.nbi").unlink()
    assert jit.compile_notice(tmp_path) is None  # nothing to compile without numba
