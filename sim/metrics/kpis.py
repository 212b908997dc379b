"""The KPI registry: every summary key declared once.

Each :class:`KPI` names a key of ``summary.json`` (per deployment under
``deployments.<name>`` and in ``total``), with its formula, its unit, which
direction is better, its default tolerance for ``capsim compare`` and how it
is displayed.  The summary (:mod:`sim.metrics.summary`), the terminal table
(:mod:`sim.report.console`), the report (:mod:`sim.report.format`,
:mod:`sim.report.html`), ``capsim compare`` (:mod:`sim.compare.gate`) and the
table of ``docs/metrics.md`` (:mod:`sim.metrics.docgen`) all read this list;
adding a KPI is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Better = Literal["lower", "higher"] | None
#: display kinds understood by :func:`sim.report.format.format_value`
Kind = Literal["count", "seconds", "fraction", "usd", "gpu_hours", "replicas", "gpus"]


@dataclass(frozen=True)
class KPI:
    """One summary key: what it means and how it is compared and shown."""

    key: str
    label: str  # the report's and the terminal's name for it
    formula: str  # Markdown, one line: docs/metrics.md
    unit: str  # the unit of the number in summary.json
    kind: Kind  # how a value is written (sim.report.format.format_value)
    group: str  # section of the summary tables
    better: Better = None  # None: reported, never gated
    tolerance: str | None = None  # default of capsim compare: "10%" (relative) or "0.01"
    total_only: bool = False  # only in ``total`` (not per deployment)

    @property
    def direction(self) -> int:
        """+1: higher is worse; −1: higher is better; 0: no direction."""
        return {"lower": 1, "higher": -1, None: 0}[self.better]


REQUESTS = "Requests"
LATENCY = "Latency (ok requests after the warm-up)"
CAPACITY = "Capacity"
COST = "Cost"

KPIS: tuple[KPI, ...] = (
    # -- requests --------------------------------------------------------------
    KPI("requests", "requests", "number of requests (first attempts) generated in "
        "`[0, duration)`", "requests", "count", REQUESTS),
    KPI("ok", "ok", "requests with `status == ok`", "requests", "count", REQUESTS, "higher"),
    KPI("failed", "failed", "requests with any other status (`requests − ok`)", "requests",
        "count", REQUESTS, "lower", "5%"),
    KPI("http_503", "HTTP 503 responses", "attempts answered 503 (no ready replica; every "
        "attempt counts)", "attempts", "count", REQUESTS, "lower", "5%"),
    KPI("requests_with_503", "requests that met a 503", "requests with at least one attempt "
        "answered 503", "requests", "count", REQUESTS, "lower"),
    KPI("http_429", "HTTP 429 responses", "attempts answered 429 (router queue full, "
        "`max_queue`)", "attempts", "count", REQUESTS, "lower", "5%"),
    KPI("http_400", "requests refused (HTTP 400)", "requests refused for exceeding the "
        "context or the KV cache (`status == rejected_400`)", "requests", "count", REQUESTS,
        "lower"),
    KPI("retries", "retries", "Σ (`attempts` − 1)", "attempts", "count", REQUESTS, "lower"),
    # -- latency ---------------------------------------------------------------
    KPI("user_ttft_p50_s", "user TTFT p50", "p50 of `user_ttft_s` (from the first attempt)",
        "s", "seconds", LATENCY, "lower"),
    KPI("user_ttft_p90_s", "user TTFT p90", "p90 of `user_ttft_s`", "s", "seconds", LATENCY,
        "lower"),
    KPI("user_ttft_p99_s", "user TTFT p99", "p99 of `user_ttft_s`", "s", "seconds", LATENCY,
        "lower", "10%"),
    KPI("user_e2e_p50_s", "user end-to-end p50", "p50 of `user_e2e_s` (from the first "
        "attempt)", "s", "seconds", LATENCY, "lower"),
    KPI("user_e2e_p99_s", "user end-to-end p99", "p99 of `user_e2e_s`", "s", "seconds",
        LATENCY, "lower", "10%"),
    KPI("ttft_p50_s", "TTFT p50 (served attempt)", "p50 of `ttft_s` (from the attempt that "
        "was served)", "s", "seconds", LATENCY, "lower"),
    KPI("ttft_p90_s", "TTFT p90 (served attempt)", "p90 of `ttft_s`", "s", "seconds", LATENCY,
        "lower"),
    KPI("ttft_p99_s", "TTFT p99 (served attempt)", "p99 of `ttft_s`", "s", "seconds", LATENCY,
        "lower", "10%"),
    KPI("tpot_p50_s", "TPOT p50", "p50 of `tpot_s`", "s", "seconds", LATENCY, "lower"),
    KPI("tpot_p99_s", "TPOT p99", "p99 of `tpot_s`", "s", "seconds", LATENCY, "lower", "10%"),
    KPI("e2e_p50_s", "end-to-end p50 (served attempt)", "p50 of `e2e_s`", "s", "seconds",
        LATENCY, "lower"),
    KPI("e2e_p99_s", "end-to-end p99 (served attempt)", "p99 of `e2e_s`", "s", "seconds",
        LATENCY, "lower", "10%"),
    KPI("slo_attainment", "SLO attainment", "fraction of post-warm-up requests that are `ok` "
        "with `user_ttft_s ≤ slo.ttft_p99`, `tpot_s ≤ slo.tpot_p99` and `user_e2e_s ≤ "
        "slo.e2e_p99` (objectives not set are not checked: without any, the share served "
        "ok; the terminal and the report show it only when an objective is set)",
        "fraction", "fraction", LATENCY, "higher", "0.01"),
    # -- capacity --------------------------------------------------------------
    KPI("mean_ready_replicas", "ready replicas, mean", "∫ ready replicas dt / simulated time",
        "replicas", "replicas", CAPACITY),
    KPI("max_ready_replicas", "ready replicas, max", "most replicas ready at once", "replicas",
        "count", CAPACITY),
    KPI("peak_gpus", "GPUs held, peak", "most GPUs held at once by the replicas (allocation "
        "to stop); `total` also gives `peak_gpus_by_accelerator`", "GPUs", "gpus", CAPACITY),
    KPI("cold_starts", "cold starts", "replica starts that went through a cold start "
        "(scheduling → downloading → initializing)", "replicas", "count", CAPACITY, "lower"),
    KPI("resends", "re-sends after a lost replica", "times requests were sent to the router "
        "again because their replica crashed or its datacenter failed (not client attempts)",
        "re-sends", "count", REQUESTS),
    KPI("preemptions", "preemptions", "running requests preempted for KV blocks and recomputed "
        "(`engine: exact` with `kv_admission: grow`)", "preemptions", "count", REQUESTS),
    KPI("cold_start_p50_s", "cold start p50", "p50 over cold-started replicas of ready − "
        "requested (the scale-up decision to ready: waiting for GPUs included)", "s",
        "seconds", CAPACITY, "lower"),
    KPI("cold_start_max_s", "cold start, longest", "the longest ready − requested of a "
        "cold-started replica", "s", "seconds", CAPACITY, "lower"),
    KPI("pending_replica_seconds", "replica time pending for GPUs", "∫ replicas waiting for "
        "GPUs dt", "replica-s", "seconds", CAPACITY, "lower"),
    KPI("replica_crashes", "replica crashes", "replicas lost to a crash or an outage",
        "replicas", "count", CAPACITY, "lower"),
    KPI("utilization", "utilization (capacity used)", "Σ output tokens of `ok` requests / "
        "(∫ ready replicas dt × a replica's saturation throughput at the run's mean request "
        "sizes); between 0 and 1", "fraction", "fraction", CAPACITY),
    KPI("prefix_cache_hit_rate", "prefix cache hit rate", "Σ prompt tokens served from a "
        "replica's prefix cache / Σ prompt tokens prefilled (0 without prefix information or "
        "with `prefix_caching: false`)", "fraction", "fraction", CAPACITY, "higher"),
    KPI("busy_fraction", "busy fraction", "∫ replicas with ≥ 1 request in service dt / ∫ "
        "ready replicas dt", "fraction", "fraction", CAPACITY),
    # -- cost ------------------------------------------------------------------
    KPI("gpu_seconds", "GPU time", "Σ over billed replicas of (stopped − ready) × GPUs per "
        "replica (`bill_from: allocated`: from allocation)", "GPU-s", "gpu_hours", COST, "lower"),
    KPI("cost_usd", "cost of GPUs", "on-demand GPU-seconds × USD per GPU-hour / 3600 "
        "(× `region_premium` when pinned to a datacenter) + reserved-covered GPU-seconds at the "
        "reserved price; the total adds the idle part of reservations (`docs/billing.md`)",
        "USD", "usd", COST, "lower", "5%"),
    KPI("on_demand_cost_usd", "of which on-demand", "the on-demand lines of `cost_usd`",
        "USD", "usd", COST, total_only=True),
    KPI("reserved_cost_usd", "of which reserved", "the reservations, used or not",
        "USD", "usd", COST, total_only=True),
    KPI("serverless_cost_usd", "serverless price of the same tokens", "Σ over every request "
        "of (input·(1−h)·p_in + input·h·p_cached + output·p_out) / 10⁶, `h` = the simulated "
        "`prefix_cache_hit_rate` when the traffic carries prefix information and "
        "`prefix_caching` is on, else `billing.prefix_cache_hit_rate`; `null` when the model "
        "has no published serverless price and the scenario gives none", "USD", "usd", COST),
    KPI("cost_per_million_tokens_usd", "cost per 1M tokens", "`cost_usd` / (Σ input + output "
        "tokens of `ok` requests) × 10⁶", "USD", "usd", COST, "lower"),
)

BY_KEY: dict[str, KPI] = {k.key: k for k in KPIS}
assert len(BY_KEY) == len(KPIS), "a KPI is declared twice"

#: keys of every block of the summary (per deployment and total), in display order
KPI_KEYS: tuple[str, ...] = tuple(k.key for k in KPIS if not k.total_only)
#: keys of ``total`` only
TOTAL_ONLY_KEYS: tuple[str, ...] = tuple(k.key for k in KPIS if k.total_only)
#: sections of the summary tables, in order: (title, keys)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (g, tuple(k.key for k in KPIS if k.group == g)) for g in (REQUESTS, LATENCY, CAPACITY, COST)
)


def get(key: str) -> KPI | None:
    return BY_KEY.get(key)
