"""A shape: model + accelerator × count + precision (+ speculative decoding).

The engine's service model, which :meth:`Shape.throughput` reproduces:

* a request is prefilled first-come-first-served, the whole prompt, in chunks
  of :attr:`Shape.prefill_chunk` tokens; its first token comes when prefill
  ends, then it decodes ``output_tokens − 1`` more;
* an iteration in which ``n`` requests decode while a prefill chunk is
  pending costs ``decode_step_time(n, kv) + chunk / prefill_rate()``
  (Sarathi-style chunked prefill: the times add);
* requests are admitted while Σ(input + output) ≤ :attr:`kv_capacity_tokens`
  and their number ≤ :attr:`max_concurrency`;
* ``kv`` passed to :meth:`decode_step_time` is Σ over running requests of
  ``input + output/2`` (their mean context over their decode).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.catalog.accelerators import GiB, get_accelerator
from sim.catalog.models import get_model
from sim.catalog.precision import Precision, check_precision
from sim.errors import InputError
from sim.perf.curve import MeasuredCurve
from sim.perf.params import PerfParams
from sim.perf.profiles import DEFAULT_ENGINE, EngineProfile, get_profile
from sim.perf.roofline import Roofline
from sim.perf.scaling import ScalingModel
from sim.perf.speculative import SpeculativeSpec


def _positive_int(value: object, what: str) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise InputError(f"{what} must be an integer ≥ 1 (got {value!r})")
    return number


class Shape:
    """Performance of one replica of a deployment shape.

    ``Shape(model=..., accelerator=..., count=..., precision=...)``.  Unknown
    names, a bad count or weights that do not fit raise :class:`InputError`.
    """

    def __init__(
        self,
        model: str,
        accelerator: str,
        count: int = 1,
        precision: str | None = None,
        speculative: SpeculativeSpec | Mapping[str, Any] | None = None,
        max_concurrency: int | None = None,
        curve: MeasuredCurve | str | Path | None = None,
        *,
        scaling: ScalingModel | None = None,
        params: PerfParams | None = None,
        serving_engine: str | EngineProfile = DEFAULT_ENGINE,
    ):
        self.profile = (serving_engine if isinstance(serving_engine, EngineProfile)
                        else get_profile(serving_engine))
        self.serving_engine = self.profile.name
        self.model_info = get_model(model)
        self.accelerator_info = get_accelerator(accelerator)
        self.model = self.model_info.name
        self.accelerator = self.accelerator_info.name
        self.gpus = _positive_int(count, "accelerator count")
        self.precision: Precision = (
            self.model_info.native_precision if precision is None else check_precision(precision)
        )
        self.params = params or self.profile.params(self.precision)
        if speculative is not None and not isinstance(speculative, SpeculativeSpec):
            speculative = SpeculativeSpec.model_validate(dict(speculative))
        self.speculative = speculative
        self.max_concurrency = (
            self.params.max_concurrency
            if max_concurrency is None
            else _positive_int(max_concurrency, "max_concurrency")
        )
        self.prefill_chunk = self.params.prefill_chunk
        self.scaling = scaling or ScalingModel(self.params.sigma, self.params.kappa)
        self.curve = MeasuredCurve.from_csv(curve) if isinstance(curve, str | Path) else curve
        self._roofline = Roofline(
            self.model_info, self.accelerator_info, self.gpus, self.precision, self.scaling,
            self.params,
        )
        self.weight_bytes = self._roofline.weight_bytes
        self.kv_bytes_per_token = self._roofline.kv_bytes_per_token
        self.kv_capacity_tokens = self._kv_capacity()

    @property
    def count(self) -> int:
        """Accelerators per replica (the same as :attr:`gpus`)."""
        return self.gpus

    # --- memory ---------------------------------------------------------------

    @property
    def memory_bytes(self) -> float:
        """HBM of the whole replica."""
        return self.gpus * self.accelerator_info.hbm_bytes

    @property
    def usable_bytes(self) -> float:
        """HBM left for weights and KV cache after the reserve."""
        return self.memory_bytes * (1.0 - self.params.memory_reserve)

    def _kv_capacity(self) -> int:
        window = self.max_concurrency * self._roofline.window_bytes_per_seq
        free = self.usable_bytes - self.weight_bytes - window
        tokens = max(0, math.floor(free / self.kv_bytes_per_token))
        needed = self.params.min_kv_tokens
        if tokens < needed:
            kv = needed * self.kv_bytes_per_token + window
            short = self.weight_bytes + kv - self.usable_bytes
            per_gpu = self.accelerator_info.hbm_bytes / GiB
            raise InputError(
                f"{self.model} {self.precision} needs {self.weight_bytes / GiB:.1f} GiB of weights"
                f" + {kv / GiB:.1f} GiB KV cache ({needed} tokens) on {self.gpus} × "
                f"{self.accelerator} ({per_gpu:g} GiB each, {self.usable_bytes / GiB:.1f} GiB "
                f"usable after a {self.params.memory_reserve:.1%} reserve): short by "
                f"{short / GiB:.1f} GiB"
            )
        return tokens

    # --- rates ----------------------------------------------------------------

    def prefill_rate(self, input_tokens: float | None = None) -> float:
        """Prompt tokens/s of the whole replica when only prefill runs.

        Compute bound: effective FLOP/s over ``2 × active params`` per token
        plus causal attention for prompts of ``input_tokens`` (none when
        omitted: the rate for short prompts), and the weights read once per
        chunk.  From the measured curve's prefill column when it has one.
        """
        if self.curve is not None and self.curve.prefill_tokens_per_s is not None:
            return self.curve.prefill_tokens_per_s
        return self._roofline.prefill_rate(input_tokens or 0.0, self.prefill_chunk)

    def prefill_seconds(self, input_tokens: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Exclusive prefill time of each prompt (array in, array out): ``L / P(L)``."""
        tokens = np.asarray(input_tokens, dtype=float)
        if self.curve is not None and self.curve.prefill_tokens_per_s is not None:
            return tokens / self.curve.prefill_tokens_per_s
        return tokens * self._roofline.prefill_seconds_per_token(tokens, self.prefill_chunk)

    def step_terms(self, batch: int) -> tuple[float, float, float, float]:
        """``(M, m1, C, c1)`` with ``decode_step_time(batch, kv) = max(M + kv·m1, C + kv·c1)``.

        Overlap o: ``max(m, c) + (1−o)·min(m, c) = max(m + (1−o)c, c + (1−o)m)``,
        plus the fixed per-iteration overhead on both sides.
        Speculative decoding: one verify pass over k+1 tokens per request plus
        k draft tokens, their memory and compute terms summed, divided by the
        expected tokens per pass.  Measured curve: ``M = batch / rate(batch)``.
        """
        if batch <= 0:
            return 0.0, 0.0, 0.0, 0.0
        if self.curve is not None:
            return batch / self.curve.output_rate(batch), 0.0, 0.0, 0.0
        spec = self.speculative
        overhead = self.params.step_overhead_s
        if spec is None:
            m, m1, c, c1 = self._roofline.step_terms(batch)
        else:
            draft = spec.tokens * spec.draft_cost_ratio(self.params.draft_cost_ratio)
            v = self._roofline.step_terms(batch, tokens_per_seq=spec.tokens + 1)
            p = self._roofline.step_terms(batch)
            gain = spec.expected_tokens_per_step
            m, m1, c, c1 = ((vi + draft * pi) / gain for vi, pi in zip(v, p, strict=True))
            passes = 1 + (spec.tokens if spec.kind == "draft" else 0)  # each has launch costs
            overhead = overhead * passes / gain
        keep = 1.0 - self.params.overlap
        fixed = overhead + self._roofline.comm_time(batch)
        return m + keep * c + fixed, m1 + keep * c1, c + keep * m + fixed, c1 + keep * m1

    def step_table(
        self, max_batch: int
    ) -> tuple[npt.NDArray[np.float64], float, npt.NDArray[np.float64], float]:
        """:meth:`step_terms` for batch 0..max_batch: arrays ``M``, ``C`` and scalars m1, c1."""
        rows = [self.step_terms(b) for b in range(max_batch + 1)]
        last = rows[-1] if max_batch >= 1 else (0.0, 0.0, 0.0, 0.0)
        big_m = np.array([r[0] for r in rows], dtype=float)
        big_c = np.array([r[2] for r in rows], dtype=float)
        return big_m, last[1], big_c, last[3]

    def decode_step_time(self, batch: int, kv_tokens: float) -> float:
        """Seconds of one iteration in which ``batch`` requests each produce one token.

        ``kv_tokens`` is the number of tokens in the KV cache (all running
        requests).  Roofline: weights touched + KV bytes over effective
        bandwidth, FLOPs over effective FLOP/s (see :meth:`step_terms`); with
        speculative decoding, per produced token; from a measured curve,
        ``batch / output tokens/s`` at that concurrency (``kv_tokens`` ignored).
        """
        if batch <= 0:
            return 0.0
        m, m1, c, c1 = self.step_terms(batch)
        return max(m + kv_tokens * m1, c + kv_tokens * c1)

    def iteration_time(
        self,
        decode_batch: int,
        decode_kv_tokens: float,
        prefill_tokens: int,
        prefill_kv_tokens: float = 0.0,
    ) -> float:
        """Seconds of one continuous-batching iteration (one forward pass).

        The iteration carries ``decode_batch`` running requests, one new
        token each, whose contexts hold ``decode_kv_tokens`` tokens in all
        (prompt + tokens generated so far), and ``prefill_tokens`` prompt
        tokens of prefill chunks.  ``prefill_kv_tokens`` is Σ over the
        iteration's chunks of (chunk tokens × tokens of that prompt already
        in cache before the chunk): the attention of a chunk to its prompt's
        earlier part.  Attention inside a chunk is charged as if the
        iteration's prefill tokens were one causal chunk.

        Preconditions: every argument ≥ 0.  Postcondition: the result is
        > 0 whenever the iteration carries any token — every pass reads the
        weights at least once and pays the per-iteration overhead.
        """
        if decode_batch <= 0 and prefill_tokens <= 0:
            return 0.0
        decode = self.decode_step_time(decode_batch, decode_kv_tokens) if decode_batch > 0 else 0.0
        if prefill_tokens <= 0:
            return decode
        chunk = float(prefill_tokens)
        roof = self._roofline
        if self.curve is not None:
            rate = self.curve.prefill_tokens_per_s or self.prefill_rate(chunk)
            return decode + chunk / rate
        if self.speculative is not None and decode_batch > 0:
            # speculative decode passes: price the chunk on top, compute only
            tokens = chunk + decode_batch
            return decode + self._prefill_compute(chunk, tokens, prefill_kv_tokens) + (
                roof.comm_time(tokens) - roof.comm_time(decode_batch))
        # one pass: the weights once, every KV byte of the decodes, the math of
        # all tokens (matrix products at the GEMM efficiency of the whole pass)
        b = max(decode_batch, 0)
        tokens = chunk + b
        memory = roof.weights_read(tokens) / roof.bandwidth
        compute = self._prefill_compute(chunk, tokens, prefill_kv_tokens)
        if b > 0:
            m, m1, c, c1 = roof.step_terms(b)
            memory += decode_kv_tokens * m1 + m - roof.weights_read(b) / roof.bandwidth
            compute += (c - roof.linear_flops_per_token * b / roof.gemm_flops(b)
                        + roof.linear_flops_per_token * b / roof.gemm_flops(tokens)
                        + decode_kv_tokens * c1)
        return roof.combine(memory, compute) + self.params.step_overhead_s + roof.comm_time(tokens)

    def _prefill_compute(self, chunk: float, tokens: float, prefill_kv_tokens: float) -> float:
        """Seconds of math of ``chunk`` prompt tokens in a pass of ``tokens`` tokens."""
        roof = self._roofline
        per_token = float(roof.prefill_flops_per_token(chunk)) - roof.linear_flops_per_token
        attention = chunk * per_token + prefill_kv_tokens * roof.attn_flops_per_kv_token
        linear = roof.linear_flops_per_token * chunk / roof.gemm_flops(tokens)
        return linear + attention / roof.flops

    def iteration_terms(self, max_batch: int, max_tokens: int) -> dict[str, Any]:
        """Tables from which :meth:`iteration_time` follows, for compiled engines.

        For ``b`` ≤ ``max_batch`` decodes and ``p`` ≤ ``max_tokens`` prefill
        tokens, ``sim.engine.exact.iter_time`` combines these tables with the
        same operations in the same order as :meth:`iteration_time`, so it
        gives the same floats (a test checks).  ``mode``: 0 one pass on the
        roofline, 1 a measured curve's prefill rate, 2 speculative decoding.
        Indexed by tokens in the pass (0 … max_tokens + max_batch): ``W``
        weight-read seconds, ``G`` GEMM FLOP/s, ``CM`` all-reduce seconds;
        by decodes: ``Wi`` weight-read seconds, ``Mr``/``Cr`` the roofline's
        decode terms; by prompt tokens: ``PT`` attention FLOPs per token
        within the chunk, ``CR`` seconds at a measured prefill rate.
        """
        big_m, m1, big_c, c1 = self.step_table(max_batch)
        roof = self._roofline
        width = max_tokens + max_batch + 1
        tokens = [float(x) for x in range(width)]
        batches = range(max_batch + 1)
        raw = [roof.step_terms(b) if b > 0 else (0.0, 0.0, 0.0, 0.0) for b in batches]
        rows = {
            "W": [roof.weights_read(x) / roof.bandwidth for x in tokens],
            "Wi": [roof.weights_read(b) / roof.bandwidth for b in batches],
            "G": [roof.gemm_flops(x) if x > 0 else 1.0 for x in tokens],
            "CM": [roof.comm_time(x) for x in tokens],
            # elementwise, the same floats as one prompt length at a time
            "PT": roof.prefill_flops_per_token(np.arange(max_tokens + 1, dtype=float))
                  - roof.linear_flops_per_token,
            "Mr": [r[0] for r in raw], "Cr": [r[2] for r in raw],
        }
        cr = [0.0] * (max_tokens + 1)
        if self.curve is not None:
            for p in range(1, max_tokens + 1):
                chunk = float(p)
                cr[p] = chunk / (self.curve.prefill_tokens_per_s or self.prefill_rate(chunk))
        mode = 1 if self.curve is not None else 2 if self.speculative is not None else 0
        last = roof.step_terms(max(max_batch, 1))
        return {
            "M": big_m, "m1": m1, "C": big_c, "c1": c1, "mode": mode,
            **{k: np.array(v, dtype=float) for k, v in rows.items()}, "CR": np.array(cr),
            "m1r": last[1], "c1r": last[3], "lin": roof.linear_flops_per_token,
            "attn": roof.attn_flops_per_kv_token, "flops": roof.flops,
            "keep": 1.0 - roof.overlap, "overhead_s": self.params.step_overhead_s,
        }

    # --- closed-loop throughput ----------------------------------------------

    def concurrency_limit(self, input_tokens: float, output_tokens: float) -> int:
        """Most requests of this size a replica runs at once (max_concurrency, KV)."""
        by_kv = int(self.kv_capacity_tokens // max(input_tokens + output_tokens, 1))
        return min(self.max_concurrency, by_kv)

    def throughput(self, concurrency: int, input_tokens: float, output_tokens: float) -> float:
        """Output tokens/s of one replica with ``concurrency`` requests always present.

        With c = concurrency capped by :meth:`concurrency_limit`, a cycle in
        which c requests each prefill ``in`` and decode ``out − 1`` tokens
        lasts ``c·in/P + (out − 1)·decode_step_time(c, c·(in + out/2))`` and
        yields ``c·out`` tokens.
        """
        c = min(int(concurrency), self.concurrency_limit(input_tokens, output_tokens))
        if c < 1 or output_tokens <= 0:
            return 0.0
        prefill = c * float(self.prefill_seconds(input_tokens))
        decode = (output_tokens - 1) * self.decode_step_time(
            c, c * (input_tokens + output_tokens / 2)
        )
        return c * output_tokens / (prefill + decode)

    def best_concurrency(self, input_tokens: float, output_tokens: float) -> int:
        """The concurrency at which :meth:`throughput` is highest (0 if none fits)."""
        limit = self.concurrency_limit(input_tokens, output_tokens)
        best, best_c = 0.0, 0
        for c in range(1, limit + 1):
            x = self.throughput(c, input_tokens, output_tokens)
            if x > best:
                best, best_c = x, c
        return best_c

    def max_throughput(self, input_tokens: float, output_tokens: float) -> float:
        """Output tokens/s per replica at the best concurrency."""
        c = self.best_concurrency(input_tokens, output_tokens)
        return self.throughput(c, input_tokens, output_tokens) if c else 0.0

    # --- description ----------------------------------------------------------

    @property
    def usd_per_hour(self) -> float:
        """On-demand price of one replica (catalog price × GPUs)."""
        return self.gpus * self.accelerator_info.usd_per_gpu_hour

    @property
    def name(self) -> str:
        return f"{self.model} {self.gpus}×{self.accelerator} {self.precision}"

    def __repr__(self) -> str:
        extra = []
        if self.speculative is not None:
            extra.append(f"speculative={self.speculative.kind}")
        if self.curve is not None:
            extra.append(f"curve={self.curve.source or 'measured'}")
        tail = f", {', '.join(extra)}" if extra else ""
        return (
            f"Shape(model={self.model!r}, accelerator={self.accelerator!r}, count={self.gpus}, "
            f"precision={self.precision!r}, max_concurrency={self.max_concurrency}, "
            f"serving_engine={self.serving_engine!r}{tail})"
        )
