"""Summary numbers as text with their units, and the findings a report states in words.

``KPI_DISPLAY`` gives each summary key a label and a kind of quantity, as the KPI
registry (:mod:`sim.metrics.kpis`) declares them; :func:`format_kpi` writes a value of that kind
(``"304 ms"``, ``"97.0 %"``, ``"$64.00"``, ``"8.00 GPU-h"``).  :func:`findings`
turns a summary into sentences computed from its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sim.metrics import kpis
from sim.units import parse_duration

# key -> (label, kind), and the sections of the summary table: from the KPI registry.
KPI_DISPLAY: dict[str, tuple[str, str]] = {k.key: (k.label, k.kind) for k in kpis.KPIS}
KPI_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = kpis.GROUPS


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def seconds_text(value: float) -> str:
    """``0.0534`` → ``"53.4 ms"``; ``93`` → ``"93.0 s"``; ``7200`` → ``"2.00 h"``."""
    v = abs(value)
    if v == 0:
        return "0 s"
    if v < 1e-3:
        return f"{value * 1e6:.3g} µs"
    if v < 1:
        return f"{value * 1e3:.3g} ms"
    if v < 120:
        return f"{value:.3g} s"
    if v < 7200:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:,.3g} h" if v < 360000 else f"{value / 3600:,.0f} h"


def usd_text(value: float) -> str:
    """``64`` → ``"$64.00"``; ``12345.6`` → ``"$12,346"``; ``0.0123`` → ``"$0.0123"``."""
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 10_000:
        return f"{sign}${v:,.0f}"
    if v >= 0.1 or v == 0:
        return f"{sign}${v:,.2f}"
    return f"{sign}${v:.3g}"


def percent_text(value: float) -> str:
    """A fraction as a percentage, with more digits near 100 % where they matter."""
    if 0.99 < value < 1:
        return f"{value * 100:.2f} %"
    return f"{value * 100:.1f} %"


def format_value(value: Any, kind: str) -> str:
    """``value`` of a kind of quantity as text; a missing value is an em dash."""
    if _missing(value):
        return "—"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "seconds":
        return seconds_text(float(value))
    if kind == "fraction":
        return percent_text(float(value))
    if kind == "usd":
        return usd_text(float(value))
    if kind == "gpu_hours":
        return f"{float(value) / 3600:,.2f} GPU-h"
    if kind == "gpus":
        return f"{int(value):,} GPUs"
    if kind == "replicas":
        return f"{float(value):,.2f}"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def format_kpi(key: str, value: Any) -> str:
    """A summary value as text with its unit (unknown keys: plain numbers)."""
    return format_value(value, KPI_DISPLAY.get(key, (key, "plain"))[1])


def kpi_label(key: str) -> str:
    return KPI_DISPLAY.get(key, (key, ""))[0]


def has_slo(summary: Mapping[str, Any]) -> bool:
    """Whether the run's scenario sets a latency objective (SLO attainment means something)."""
    return bool(_slo_limits(summary.get("scenario") or {}))


def _slo_limits(scenario: Mapping[str, Any]) -> dict[str, float]:
    slo = scenario.get("slo") or {}
    out = {}
    for key in ("ttft_p99", "tpot_p99", "e2e_p99"):
        value = slo.get(key)
        if value is not None:
            out[key] = parse_duration(value) if isinstance(value, str) else float(value)
    return out


_SLO_NAMES = {"ttft_p99": "TTFT", "tpot_p99": "TPOT", "e2e_p99": "end-to-end latency"}
# the summary key each objective is judged on: the user's view (from the first attempt)
_SLO_KEYS = {"ttft_p99": "user_ttft_p99_s", "tpot_p99": "tpot_p99_s",
             "e2e_p99": "user_e2e_p99_s"}


def _number(block: Mapping[str, Any], key: str) -> float | None:
    value = block.get(key)
    if value is None or _missing(value):
        return None
    return float(value)


SERVED_SHARE = 0.99  # below this share of requests served ok, a run did not serve its traffic
BUSY_SHARE = 0.97  # replicas busy at least this share of their ready time: saturated


def service_warnings(summary: Mapping[str, Any]) -> list[str]:
    """Sentences that must come before any cost finding: the run did not serve its traffic
    (under 99 % of requests ok), missed its SLO, was cut off at the drain limit, or was
    overloaded throughout.  Empty when the run served its traffic."""
    t = summary.get("total") or {}
    scenario = summary.get("scenario") or {}
    requests = int(_number(t, "requests") or 0)
    out = []
    served = (_number(t, "ok") or 0.0) / requests if requests else None
    if served is not None and served < SERVED_SHARE:
        out.append(f"The run did not serve its traffic: only {percent_text(served)} of "
                   f"{requests:,} requests finished ok.")
    limits = _slo_limits(scenario)
    missed = [f"p99 {_SLO_NAMES[k]} {seconds_text(v)} above {seconds_text(limits[k])}"
              for k in limits if (v := _number(t, _SLO_KEYS[k])) is not None and v > limits[k]]
    attainment = _number(t, "slo_attainment")
    if limits and attainment is not None and attainment < SERVED_SHARE:
        missed.insert(0, f"{percent_text(attainment)} of requests met every objective")
    if missed:
        out.append("The run missed its SLO: " + "; ".join(missed) + ".")
    duration = scenario.get("duration")
    simulated = _number(summary, "simulated_s")
    if duration is not None and simulated is not None:
        horizon = parse_duration(duration) if isinstance(duration, str) else float(duration)
        if simulated >= horizon + max(horizon, 3600.0) - 1e-6:
            out.append(f"Cut off at the drain limit ({seconds_text(simulated)} simulated for "
                       f"{seconds_text(horizon)} of traffic): requests were still queued.")
    busy = _number(t, "busy_fraction")
    if busy is not None and busy >= BUSY_SHARE and served is not None and served < SERVED_SHARE:
        out.append(f"Overloaded throughout: replicas were busy {percent_text(busy)} of their "
                   "ready time and still left requests unserved.")
    return out


def findings(summary: Mapping[str, Any]) -> list[str]:
    """What a run shows, in sentences computed from its summary's ``total``; a run that
    did not serve its traffic or missed its SLO says so first (:func:`service_warnings`),
    and then states no saving against serverless."""
    t = summary.get("total") or {}
    scenario = summary.get("scenario") or {}

    def count(key: str) -> int:
        return int(_number(t, key) or 0)

    warnings = service_warnings(summary)
    out = list(warnings)
    requests = count("requests")
    if requests:
        out.append(
            f"{requests:,} requests: {count('ok'):,} ok ({percent_text(count('ok') / requests)}), "
            f"{count('failed'):,} failed; {count('http_503'):,} HTTP 503 and "
            f"{count('http_429'):,} HTTP 429 responses, {count('retries'):,} retries."
        )
    else:
        out.append("No requests arrived.")
    limits = _slo_limits(scenario)
    if limits:
        parts = []
        for key, limit in limits.items():
            observed = _number(t, _SLO_KEYS[key])
            name = _SLO_NAMES[key]
            if observed is None:
                parts.append(f"no {name} measured (objective {seconds_text(limit)})")
            else:
                verdict = "meets" if observed <= limit else "misses"
                parts.append(f"p99 {name} {seconds_text(observed)} {verdict} its "
                             f"{seconds_text(limit)} objective")
        attainment = _number(t, "slo_attainment")
        lead = ("" if attainment is None
                else f"{percent_text(attainment)} of requests met every objective: ")
        out.append(lead + "; ".join(parts) + ".")
    else:
        out.append("No latency objective is set (add slo: {ttft_p99: …} to the scenario).")
    cost = _number(t, "cost_usd")
    if cost is not None:
        sentence = (f"Dedicated GPUs cost {usd_text(cost)} for "
                    f"{format_value(t.get('gpu_seconds'), 'gpu_hours')} at "
                    f"{format_value(t.get('utilization'), 'fraction')} utilization")
        per_m = _number(t, "cost_per_million_tokens_usd")
        if per_m is not None:
            sentence += f", {usd_text(per_m)} per 1M tokens"
        serverless = _number(t, "serverless_cost_usd")
        if serverless is not None and serverless > 0 and cost > 0 and warnings:
            sentence += (f"; serverless prices for the same requests would be "
                         f"{usd_text(serverless)}, but no saving follows from a run that did "
                         "not serve its traffic within its SLO")
        elif serverless is not None and serverless > 0 and cost > 0:
            if cost > serverless:
                ratio = f"serverless would be {cost / serverless:.3g}× cheaper"
            else:
                ratio = f"dedicated is {serverless / cost:.3g}× cheaper"
            sentence += (f"; the same tokens at serverless prices would cost "
                         f"{usd_text(serverless)} — {ratio}")
        out.append(sentence + ".")
    mean_ready = _number(t, "mean_ready_replicas")
    if mean_ready is not None and _number(t, "max_ready_replicas") is not None:
        pending = _number(t, "pending_replica_seconds") or 0.0
        out.append(
            f"{mean_ready:,.2f} replicas ready on average, at most "
            f"{count('max_ready_replicas'):,}; {count('cold_starts'):,} cold starts; "
            f"replicas waited {seconds_text(pending)} in total for GPUs."
        )
    return out
