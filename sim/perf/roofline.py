"""Roofline model of one replica: bytes and FLOPs of a decode step or a prefill.

A pass costs ``max(m, c) + (1 − overlap)·min(m, c)`` with ``m = bytes /
bandwidth`` and ``c = FLOPs / FLOP/s`` at the replica's effective rates
(per-GPU peak × calibrated efficiency × USL capacity C(N)).  Weights and KV
cache stream at their own efficiencies (``bandwidth_efficiency``,
``kv_bandwidth_efficiency``); matrix products over ``t`` tokens run at
``compute_efficiency × t / (t + gemm_half_tokens)`` of peak (small batches
do not fill the tensor cores); with tensor parallelism each pass adds two
all-reduces per layer (:meth:`Roofline.comm_time`).  ``overlap = 1``
is the textbook roofline ``max(m, c)``; the calibrated default is in
:mod:`sim.perf.params`.

Bytes read by a decode step over ``t`` new tokens (``batch`` requests):

* weights touched: the always-on weights D (attention, embeddings, dense and
  shared MLPs) plus, for an MoE, the expected distinct routed experts the
  tokens hit: ``R·(1 − (1 − k/E)^t)`` (each token picks k of E experts per
  layer; uniform routing);
* the KV cache: ``kv_tokens × kv_bytes_per_token`` (full-attention layers),
  plus ``batch × window`` tokens on sliding-window layers.

FLOPs: ``2·active_params`` per token plus attention, ``2·heads·(d_qk + d_v)``
per (query, cached token) pair per layer.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sim.catalog.accelerators import Accelerator
from sim.catalog.models import Model
from sim.catalog.precision import BYTES_PER_PARAM, KV_BYTES_PER_ELEMENT, Precision
from sim.perf.params import PerfParams
from sim.perf.scaling import ScalingModel


def weight_bytes(model: Model, precision: Precision) -> tuple[float, float]:
    """(always-on bytes, routed-expert bytes) of the weights at ``precision``."""
    per_param = BYTES_PER_PARAM[precision]
    dense_per_param = per_param
    if model.non_expert_precision is not None:
        dense_per_param = max(per_param, BYTES_PER_PARAM[model.non_expert_precision])
    return model.dense_params * dense_per_param, model.routed_expert_params * per_param


def kv_replication(model: Model, gpus: int) -> float:
    """How many copies of each cached K/V element a replica of ``gpus`` holds.

    Tensor parallelism splits KV heads across GPUs; with more GPUs than KV
    heads each head is replicated (TensorRT-LLM's bench tuning uses
    ``max(tp, num_kv_heads)`` heads).  A multi-head-latent cache (DeepSeek)
    has one shared latent, so every GPU holds all of it (vLLM tensor parallel;
    data-parallel attention would avoid this).
    """
    return max(1.0, gpus / model.kv_groups)


class Roofline:
    """Precomputed rates of one (model, accelerator, count, precision) replica."""

    def __init__(
        self,
        model: Model,
        accelerator: Accelerator,
        gpus: int,
        precision: Precision,
        scaling: ScalingModel,
        params: PerfParams,
    ):
        self.model = model
        capacity = scaling.capacity(gpus)
        self.bandwidth = accelerator.hbm_bandwidth * params.bandwidth_efficiency * capacity
        efficiency = params.efficiency(accelerator.name)
        self.flops = accelerator.flops(precision) * efficiency * capacity
        self.kv_bandwidth = accelerator.hbm_bandwidth * params.kv_efficiency * capacity
        self.gemm_half_tokens = params.gemm_half_tokens
        self.overlap = params.overlap
        # all-reduce: a ring moves 2(N−1)/N of the activations over each GPU's
        # one-way NVLink bandwidth (half the datasheet's bidirectional figure)
        self.gpus = gpus
        self.allreduce_latency = params.allreduce_latency_s if gpus > 1 else 0.0
        link = accelerator.nvlink_bandwidth / 2.0
        # (a profile without an all-reduce latency scales by the USL alone)
        explicit = gpus > 1 and link > 0 and params.allreduce_latency_s > 0
        self.allreduce_s_per_token = (
            2.0 * (gpus - 1) / gpus * model.hidden * 2.0 / link if explicit else 0.0
        )
        self.allreduces = 2 * model.layers
        self.dense_bytes, self.expert_bytes = weight_bytes(model, precision)
        self.expert_miss = (
            1.0 - model.experts_per_token / model.routed_experts if model.is_moe else 1.0
        )
        kv_element = KV_BYTES_PER_ELEMENT[precision] * kv_replication(model, gpus)
        self.kv_bytes_per_token = (
            model.kv_per_token_layer * model.full_attention_layers * kv_element
        )
        self.window_bytes_per_seq = (
            model.kv_per_token_layer * model.sliding_layers * model.sliding_window * kv_element
        )
        pair = model.attention_flops_per_pair
        self.attn_flops_per_kv_token = pair * model.full_attention_layers
        self.attn_flops_window_per_seq = pair * model.sliding_layers * model.sliding_window
        self.linear_flops_per_token = 2.0 * model.active_params

    @property
    def weight_bytes(self) -> float:
        return self.dense_bytes + self.expert_bytes

    def weights_read(self, tokens: float) -> float:
        """Expected weight bytes read by one forward pass over ``tokens`` tokens."""
        if self.expert_bytes == 0.0:
            return self.dense_bytes
        return self.dense_bytes + self.expert_bytes * (1.0 - self.expert_miss**tokens)

    def gemm_flops(self, tokens: float) -> float:
        """Effective FLOP/s of the matrix products of a pass over ``tokens`` tokens."""
        if self.gemm_half_tokens <= 0.0:
            return self.flops
        return self.flops * tokens / (tokens + self.gemm_half_tokens)

    def comm_time(self, tokens: float) -> float:
        """Seconds of tensor-parallel all-reduces in a pass over ``tokens`` tokens (0 on 1 GPU)."""
        if self.allreduce_latency <= 0.0 or tokens <= 0:
            return 0.0
        return self.allreduces * (self.allreduce_latency + tokens * self.allreduce_s_per_token)

    def step_terms(self, batch: int, tokens_per_seq: int = 1) -> tuple[float, float, float, float]:
        """Seconds of a decode pass as affine functions of the cached tokens ``kv``.

        Returns ``(M, m1, C, c1)``: memory time ``M + kv·m1`` and compute time
        ``C + kv·c1`` for ``batch`` requests each verifying ``tokens_per_seq``
        new tokens (1 without speculative decoding).
        """
        tokens = batch * tokens_per_seq
        memory = (self.weights_read(tokens) / self.bandwidth
                  + batch * self.window_bytes_per_seq / self.kv_bandwidth)
        compute = (
            self.linear_flops_per_token * tokens / self.gemm_flops(tokens)
            + tokens_per_seq * batch * self.attn_flops_window_per_seq / self.flops
        )
        per_kv_memory = self.kv_bytes_per_token / self.kv_bandwidth
        per_kv_compute = tokens_per_seq * self.attn_flops_per_kv_token / self.flops
        return memory, per_kv_memory, compute, per_kv_compute

    def step_time(self, batch: int, kv_tokens: float, tokens_per_seq: int = 1) -> float:
        """Seconds of one decode pass: ``batch`` requests, each ``tokens_per_seq`` new tokens."""
        if batch <= 0:
            return 0.0
        m, m1, c, c1 = self.step_terms(batch, tokens_per_seq)
        return self.combine(m + kv_tokens * m1, c + kv_tokens * c1)

    def combine(self, memory: float, compute: float) -> float:
        """Time of a pass needing ``memory`` seconds of HBM and ``compute`` of math."""
        return max(memory, compute) + (1.0 - self.overlap) * min(memory, compute)

    def prefill_flops_per_token(self, input_tokens: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """FLOPs per prompt token; causal attention sees (L+1)/2 tokens on average."""
        mean_context = (np.asarray(input_tokens, dtype=float) + 1.0) / 2.0
        model = self.model
        window = np.minimum(float(model.sliding_window), mean_context)
        pair = model.attention_flops_per_pair
        attention = pair * (
            model.full_attention_layers * mean_context + model.sliding_layers * window
        )
        return self.linear_flops_per_token + attention

    def prefill_seconds_per_token(
        self, input_tokens: npt.ArrayLike, chunk: int
    ) -> npt.NDArray[np.float64]:
        """Seconds per prompt token when only prefill runs, in chunks of ``chunk`` tokens.

        Prompts are packed into full chunks: each chunk reads the weights
        once, runs its matrix products at the GEMM efficiency of ``chunk``
        tokens and pays its all-reduces.
        """
        linear = self.linear_flops_per_token
        per_token_attention = self.prefill_flops_per_token(input_tokens) - linear
        compute = chunk * (self.linear_flops_per_token / self.gemm_flops(chunk)
                           + per_token_attention / self.flops)
        memory = self.weights_read(chunk) / self.bandwidth
        both = np.maximum(memory, compute) + (1.0 - self.overlap) * np.minimum(memory, compute)
        return np.asarray((both + self.comm_time(chunk)) / chunk, dtype=float)

    def prefill_rate(self, input_tokens: float, chunk: int) -> float:
        """Prompt tokens/s when only prefill runs, in chunks of ``chunk`` tokens."""
        return 1.0 / float(self.prefill_seconds_per_token(input_tokens, chunk))
