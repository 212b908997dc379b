"""Constants of the throughput model (:class:`PerfParams`), each with its source.

One :class:`PerfParams` is one precision path of one serving-engine profile
(:mod:`sim.perf.profiles`).  :data:`TRTLLM` holds the constants fitted to the
published TensorRT-LLM v0.17 maximum-throughput table (``python -m
sim.perf.calibrate --fit``; table and errors in docs/throughput.md); the vLLM
profile's are fitted to measured vLLM runs at realistic load (``python -m
sim.perf.validate --fit``).  :data:`DEFAULT` is the default profile's BF16
path (vLLM).  The scheduler limits are vLLM's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class PerfParams:
    # Fraction of datasheet HBM bandwidth that streaming weights / KV achieves.
    bandwidth_efficiency: float
    # Fraction of datasheet dense FLOP/s that GEMM-bound work achieves, by
    # accelerator; "default" for accelerators not listed.
    compute_efficiency: MappingProxyType[str, float]
    # Share of the shorter of (memory time, compute time) hidden under the
    # longer one in a pass: 1 = the pure roofline max(m, c), 0 = m + c.
    overlap: float
    # USL contention σ and coherency κ of tensor parallelism.
    sigma: float
    kappa: float
    # Fixed time added to every decode iteration: kernel launches, collective
    # latency, scheduling and sampling, which the roofline does not see.
    step_overhead_s: float
    # Share of each GPU's HBM not available to weights + KV cache: CUDA context,
    # activations, CUDA graphs, communication buffers, fragmentation.
    memory_reserve: float
    # Smallest KV cache, in tokens, a shape must hold to count as fitting.
    min_kv_tokens: int
    # Default per-replica cap on running requests.
    max_concurrency: int
    # Prompt tokens prefilled per iteration (chunked prefill).
    prefill_chunk: int
    # Cost of one draft-model token as a fraction of one target decode step.
    draft_cost_ratio: float
    # Fraction of datasheet HBM bandwidth that reading the KV cache achieves
    # (paged attention kernels); None: the same as ``bandwidth_efficiency``.
    kv_bandwidth_efficiency: float | None = None
    # GEMM efficiency by batch: a pass over t tokens runs its matrix products at
    # ``compute_efficiency × t / (t + gemm_half_tokens)`` of peak (0: flat).
    gemm_half_tokens: float = 0.0
    # Fixed latency of one tensor-parallel all-reduce (two per layer per pass);
    # the bytes move at the datasheet NVLink rate.  0 with USL-only scaling.
    allreduce_latency_s: float = 0.0
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def kv_efficiency(self) -> float:
        """Bandwidth efficiency of KV-cache reads."""
        if self.kv_bandwidth_efficiency is None:
            return self.bandwidth_efficiency
        return self.kv_bandwidth_efficiency

    def efficiency(self, accelerator: str) -> float:
        """Compute efficiency of ``accelerator`` (the default when not listed)."""
        table = self.compute_efficiency
        return table.get(accelerator, table["default"])

    def with_(self, **changes: Any) -> PerfParams:
        """A copy with some fields changed (``compute_efficiency`` as a plain dict is fine)."""
        if "compute_efficiency" in changes:
            changes["compute_efficiency"] = MappingProxyType(dict(changes["compute_efficiency"]))
        return replace(self, **changes)


TRTLLM = PerfParams(
    # --- calibrated: python -m sim.perf.calibrate --fit (docs/throughput.md) ---
    bandwidth_efficiency=0.89,
    compute_efficiency=MappingProxyType({"default": 0.60, "A100_80GB": 0.93}),
    overlap=0.0,
    sigma=0.13,
    kappa=0.0,
    memory_reserve=0.058,
    # calibrated on TensorRT-LLM v0.14 online-serving ITL at 2 and 4 req/s
    step_overhead_s=0.002,
    # --- cited or stated ---
    # One 4096-token sequence: a smaller cache cannot serve an ordinary chat
    # request (gpt-oss's config.json initial_context_length is 4096).  vLLM
    # refuses to start when the cache holds less than one max_model_len sequence.
    min_kv_tokens=4096,
    # vLLM max_num_seqs default 256 (vllm/engine/arg_utils.py get_batch_defaults,
    # OpenAI server; vLLM raises it to 1024 on >= 70 GiB non-A100 GPUs).
    max_concurrency=256,
    # vLLM max_num_batched_tokens default 2048 with chunked prefill (same place).
    prefill_chunk=2048,
    # ASSUMPTION (docs/throughput.md): a draft model about a tenth of the
    # target's size (Llama-3.2-1B for 8B = 0.15, 8B for 70B = 0.11), and a
    # memory-bound decode step costs in proportion to the bytes it reads.
    draft_cost_ratio=0.1,
)

# vLLM (V1 engine, CUDA graphs, chunked prefill), BF16 weights and KV cache.
# --- fitted: python -m sim.perf.validate --fit, on measured vLLM 0.15.1 runs
# of Llama-3.1-8B-Instruct on one and two H100s (fit set and errors in
# docs/validation.md "Against real measurements") ---
VLLM_BF16 = TRTLLM.with_(
    # (first fit, all six constants, through the fast engine before it priced
    # iterations as one pass; then re-fitted with the engine as it is now:
    # bandwidth, compute efficiency and overhead, the others kept)
    bandwidth_efficiency=0.795,
    kv_bandwidth_efficiency=0.9996,
    compute_efficiency={"default": 0.412},
    gemm_half_tokens=3.86,
    step_overhead_s=0.000457,
    allreduce_latency_s=18e-6,
    # --- stated: the roofline max(memory, compute) (kernels overlap HBM
    # streaming and math); tensor parallelism priced by its all-reduces ---
    overlap=1.0,
    sigma=0.0,
    kappa=0.0,
    # --- cited ---
    # vLLM gpu_memory_utilization default 0.9 (vllm/config/cache.py): a tenth
    # of HBM is never used for weights or KV cache.
    memory_reserve=0.10,
)

# vLLM FP8 (W8A8, FP8 KV cache): no public vLLM measurement at realistic load
# was found for FP8; the BF16 path's fitted efficiencies apply to FP8 bytes
# and FP8 FLOP/s (checked against LambdaLabs' vLLM FP8 sweep, docs/throughput.md).
VLLM_FP8 = VLLM_BF16

DEFAULT = VLLM_BF16
