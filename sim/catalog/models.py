"""Models: parameters, layers, KV cache geometry, experts, serverless prices.

From ``data/models.csv`` (each model's config.json and paper),
``data/model_serving.csv`` (serving facts with sources) and
``data/serverless_prices.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sim.catalog._data import read_records, unknown
from sim.catalog.precision import Precision, check_precision


@dataclass(frozen=True)
class ServerlessPrice:
    """USD per 1M tokens on the provider's serverless (per-token) tier."""

    input: float
    cached_input: float
    output: float
    source: str
    as_of: str


@dataclass(frozen=True)
class Model:
    name: str
    total_params: float
    active_params: float  # per token
    layers: int
    hidden: int
    heads: int
    kv_heads: int | None  # None for multi-head latent attention (one shared latent)
    kv_per_token_layer: int  # K+V elements cached per token per layer
    routed_experts: int  # 0 for a dense model
    experts_per_token: int
    shared_experts: int
    native_precision: Precision
    non_expert_precision: Precision | None  # gpt-oss keeps non-expert weights BF16
    sliding_window: int  # 0 = none
    sliding_layers: int
    attn_qk_head_dim: int
    attn_v_head_dim: int
    max_context: int
    serverless: ServerlessPrice | None

    @property
    def is_moe(self) -> bool:
        return self.routed_experts > 0

    @property
    def routed_expert_params(self) -> float:
        """Parameters in routed experts, R, from total T, active A and top-k/E.

        Each token reads the always-on weights D = T - R and k/E of the routed
        ones, so A = D + R k/E, hence R = (T - A) / (1 - k/E).  For
        deepseek-v3 this gives 654 B (58 MoE layers x 256 x 3 x 7168 x 2048 =
        654 B from its config.json); for gpt-oss-120b 115 B (model card: 114.7 B).
        """
        if not self.is_moe:
            return 0.0
        share = self.experts_per_token / self.routed_experts
        return (self.total_params - self.active_params) / (1.0 - share)

    @property
    def dense_params(self) -> float:
        """Parameters every token reads: attention, embeddings, dense and shared MLPs."""
        return self.total_params - self.routed_expert_params

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.sliding_layers

    @property
    def kv_groups(self) -> int:
        """KV heads that tensor parallelism can split (1 for a shared MLA latent)."""
        return self.kv_heads or 1

    @property
    def attention_flops_per_pair(self) -> float:
        """FLOPs per (query token, cached token) pair per layer: QK^T and AV."""
        return 2.0 * self.heads * (self.attn_qk_head_dim + self.attn_v_head_dim)


def _count(text: str) -> int:
    """An integer column that may be blank ("" → 0) or annotated ("256 routed + 1 shared")."""
    return int(float(text.split()[0])) if text.strip() else 0


@cache
def _load() -> dict[str, Model]:
    serving = {row["model"]: row for row in read_records("model_serving.csv")}
    prices = {row["model"]: row for row in read_records("serverless_prices.csv")}
    out: dict[str, Model] = {}
    for row in read_records("models.csv"):
        name = row["model"]
        s = serving[name]
        price = None
        if name in prices:
            p = prices[name]
            price = ServerlessPrice(
                float(p["input"]), float(p["cached_input"]), float(p["output"]),
                p["source"], p["as_of"],
            )
        m = Model(
            name=name,
            total_params=float(row["total_params_b"]) * 1e9,
            active_params=float(row["active_params_b"]) * 1e9,
            layers=int(row["layers"]),
            hidden=int(row["hidden"]),
            heads=int(row["attention_heads"]),
            kv_heads=_count(row["kv_heads"]) or None,
            kv_per_token_layer=int(row["kv_per_token_layer"]),
            routed_experts=_count(s["routed_experts"]),
            experts_per_token=_count(row["experts_per_token"]),
            shared_experts=_count(s["shared_experts"]),
            native_precision=check_precision(s["native_precision"]),
            non_expert_precision=(
                check_precision(s["non_expert_precision"]) if s["non_expert_precision"] else None
            ),
            sliding_window=_count(s["sliding_window"]),
            sliding_layers=_count(s["sliding_layers"]),
            attn_qk_head_dim=int(s["attn_qk_head_dim"]),
            attn_v_head_dim=int(s["attn_v_head_dim"]),
            max_context=int(s["max_context"]),
            serverless=price,
        )
        if m.is_moe and _count(row["experts"]) != m.routed_experts:
            raise ValueError(f"{name}: models.csv and model_serving.csv disagree on experts")
        out[name] = m
    return out


def all_models() -> dict[str, Model]:
    """Every model, by name."""
    return dict(_load())


def model_names() -> tuple[str, ...]:
    return tuple(_load())


def get_model(name: str) -> Model:
    """The model called ``name``, or an InputError listing the known ones."""
    try:
        return _load()[name]
    except KeyError:
        raise unknown("model", name, model_names()) from None


model = get_model
