"""The scenario reference, generated from the schema: ``docs/reference/scenario.md``.

::

    python -m sim.scenario.docgen            # rewrite docs/reference/scenario.md
    python -m sim.scenario.docgen --check    # exit 1 if the file is out of date

Every key of every section — the pydantic specs that ``sim.scenario.schema``
composes, each autoscaler policy's ``Params`` from the registry, each kind of
arrival process and token-length distribution — is listed with its type (and
unit), its default and its description.  Descriptions come from the fields'
``description=``; the few keys whose spec has none are described in
:data:`DESCRIPTIONS` here, until their spec carries one.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from sim import units
from sim.policies.registry import get_policy, policy_names
from sim.scenario.schema import DeploymentSpec, Scenario

# Repository tooling: relative to the current folder (a checkout); pass another path.
DOC = Path("docs") / "reference" / "scenario.md"
COMMAND = "python -m sim.scenario.docgen"

# Keys whose spec has no ``description=``, described here ("Class.key", the class's
# qualified name or a base class's): a spec's own description wins.
DESCRIPTIONS: dict[str, str] = {
    # scenario
    "Scenario.name": "names the run: the results folder (results/<name>) and the report's title",
    "Scenario.seed": "seed of every random stream of the run: the same seed gives identical "
                     "results",
    "Scenario.duration": "simulated time during which requests arrive; requests in flight then "
                         "drain",
    "Scenario.deployments": "the deployments simulated together, sharing the GPU inventory",
    "Scenario.clients": "how clients retry refused requests",
    "Scenario.slo": "latency objectives for `slo_attainment`",
    "Scenario.billing": "prices: on-demand overrides, reservations, serverless per-token prices",
    "Scenario.faults": "replica crashes and datacenter outages",
    "DeploymentSpec.name": "unique name of the deployment in the scenario",
    "DeploymentSpec.model": "a model of the catalog (`capsim catalog shapes`), e.g. "
                            "`llama-v3p1-70b-instruct`",
    "DeploymentSpec.min_replicas": "fewest replicas the autoscaler may keep; 0 allows scale to "
                                   "zero",
    "DeploymentSpec.cold_start": "how long a new replica takes to become ready",
    "DeploymentSpec.traffic": "the deployment's requests: arrival process and token lengths",
    "SLOSpec.ttft_p99": "objective on time to first token: a request meets it if its TTFT is at "
                        "most this",
    "SLOSpec.tpot_p99": "objective on time per output token",
    "SLOSpec.e2e_p99": "objective on end-to-end latency (including retries)",
    "ServerlessPrice.input": "USD per 1M input tokens",
    "ServerlessPrice.output": "USD per 1M output tokens",
    # shapes
    "ShapeSpec.accelerator": "accelerator type, e.g. `H100_80GB` (`capsim catalog "
                             "accelerators`)",
    "ShapeSpec.count": "accelerators per replica (tensor parallel)",
    "ShapeSpec.precision": "weights and math precision; default: the model's native one",
    "ShapeSpec.speculative": "speculative decoding: a draft model or n-gram lookup",
    "ShapeSpec.curve": "a measured load-test curve CSV replacing the roofline's decode rate, "
                       "relative to the scenario file (docs/howto/calibrate-shape.md)",
    "ShapeSpec.scaling": "Universal Scalability Law coefficients for multi-GPU scaling",
    "ScalingSpec.sigma": "USL contention coefficient σ",
    "ScalingSpec.kappa": "USL coherency coefficient κ",
    "SpeculativeSpec.kind": "`draft`: a small draft model; `ngram`: prompt lookup",
    "SpeculativeSpec.tokens": "tokens proposed per verification pass (k)",
    "SpeculativeSpec.acceptance_rate": "probability that each proposed token is accepted (α)",
    "SpeculativeSpec.draft_cost": "cost of one draft token as a fraction of a target decode "
                                  "step (default: 0.1 for a draft model, 0 for n-gram)",
    # control plane
    "ColdStartSpec.scheduling": "from GPUs allocated to the weight download starting: a "
                                "duration or a distribution",
    "ColdStartSpec.weight_download_rate": "weight bytes per second: a bandwidth or a "
                                          "distribution",
    "ColdStartSpec.initialization": "from weights loaded to ready (engine start, graph "
                                    "capture): a duration or a distribution",
    "UniformDuration.low": "smallest value", "UniformDuration.high": "largest value",
    "UniformRate.low": "smallest value", "UniformRate.high": "largest value",
    "LognormalDuration.median": "median", "LognormalDuration.p90": "90th percentile",
    "LognormalRate.median": "median", "LognormalRate.p90": "90th percentile",
    "BackgroundSpec.datacenter": "the datacenter whose GPUs other tenants take",
    "BackgroundSpec.accelerator": "the accelerator type they take",
    "BackgroundSpec.steps": "the GPUs they want from each time on (a step function)",
    "BackgroundStep.at": "from this time of the run",
    "BackgroundStep.gpus": "GPUs wanted (taken only when free; never evicting a replica)",
    "FaultSpec.outages": "datacenter outages: replicas there are lost for the window",
    "OutageSpec.datacenter": "the datacenter that goes down",
    "OutageSpec.start": "time of the run at which it goes down",
    "OutageSpec.duration": "how long it stays down",
    # traffic
    "TrafficSpec.arrivals": "the arrival process (one of the kinds below)",
    "TrafficSpec.input_tokens": "prompt length distribution (required unless arrivals replay a "
                                "trace)",
    "TrafficSpec.output_tokens": "output length distribution (required unless arrivals replay a "
                                 "trace)",
    "PoissonArrivals.rps": "constant rate, requests per second",
    "DiurnalArrivals.mean_rps": "long-run mean rate, requests per second",
    "DiurnalArrivals.peak_to_mean": "sinusoid: peak rate / mean rate",
    "DiurnalArrivals.period": "sinusoid: length of one cycle (default 24h)",
    "DiurnalArrivals.peak_at": "sinusoid: time of the peak within the cycle (default 14h)",
    "DiurnalArrivals.hourly_weights": "relative rate of hours 0–23 (instead of a sinusoid)",
    "DiurnalArrivals.weekly_weights": "relative rate of days 0–6 (default: all days alike)",
    "RampArrivals.start_rps": "rate at t = 0, requests per second",
    "RampArrivals.end_rps": "rate at the end of the ramp, requests per second",
    "RampArrivals.ramp_duration": "length of the ramp (default: the whole run)",
    "BurstArrivals.base_rps": "rate between bursts, requests per second",
    "BurstArrivals.burst_rps": "rate during a burst, requests per second",
    "BurstArrivals.mean_burst": "mean length of a burst (exponential)",
    "BurstArrivals.mean_gap": "mean time between bursts (exponential)",
    "SpikesArrivals.base_rps": "rate outside spikes, requests per second",
    "SpikesArrivals.spikes": "non-overlapping spikes, each replacing the base rate",
    "Spike.at": "start of the spike",
    "Spike.duration": "length of the spike",
    "Spike.rps": "rate during the spike, requests per second",
    "TraceArrivals.path": "an Azure-format CSV or a JSONL trace, relative to the scenario file",
    "TraceArrivals.time_scale": "multiplies the trace's time axis: 2 plays it half as fast",
    "TraceArrivals.rate_scale": "multiplies the rate, keeping the time axis (thinning or "
                                "shifted copies; docs/workload.md)",
    "TraceArrivals.loop": "repeat the trace until the run ends",
    "_LengthBase.min": "smallest token count drawn (draws are clipped)",
    "_LengthBase.max": "largest token count drawn (default: no limit)",
    "FixedLength.value": "tokens of every request",
    "ExponentialLength.mean": "mean tokens (geometric on 1, 2, …)",
    "LognormalLength.median": "median tokens",
    "LognormalLength.p90": "90th percentile of tokens",
    "EmpiricalLength.path": "a trace whose token column is resampled, relative to the scenario "
                            "file",
    "EmpiricalLength.column": "`input` or `output` (default: the field's own)",
    # autoscaler policies (each module's docstring explains its algorithm)
    "ScalingSchedule.name": "unique name of the schedule",
    "Behavior.scale_up": "rules for scaling up",
    "Behavior.scale_down": "rules for scaling down",
    "ScaleUpRules.stabilization_window": "the lowest recommendation over this window is used",
    "ScaleUpRules.select_policy": "`Max`: the policy allowing the largest change; `Min`: the "
                                  "smallest; `Disabled`: never scale up",
    "ScaleUpRules.policies": "rate limits: each allows a change of `value` pods or percent per "
                             "`period`",
    "ScaleDownRules.stabilization_window": "the highest recommendation over this window is used",
    "ScaleDownRules.select_policy": "`Max`: the policy allowing the largest change; `Min`: the "
                                    "smallest; `Disabled`: never scale down",
    "ScaleDownRules.policies": "rate limits: each allows a change of `value` pods or percent "
                               "per `period`",
    "ScalingPolicy.type": "`Pods`: a number of replicas; `Percent`: a share of the current "
                          "replicas",
    "ScalingPolicy.value": "replicas or percent per period",
    "Window.replicas": "replicas while the window is active",
    "Window.end": "run time at which the window ends (with start)",
}

_CONVENTIONS = """\
Units are strings: durations `100ms`, `30s`, `10m` (minutes), `1h`, `7d`, `1w`;
sizes `80GB`, `80GiB`; bandwidths `2GB/s`. A bare number where a unit is
expected is refused. Rates are requests per second (plain numbers), token
counts integers, prices USD. Every key is validated when the scenario loads
and an unknown key is an error (`capsim validate FILE`); `capsim run` writes
the resolved scenario, every default filled in, into `summary.json` and the
report.

*required* keys have no default. A type followed by "or null" may be left out
(or set to `null`)."""


# --------------------------------------------------------------------------- types


def _unit_kind(metadata: list[Any]) -> str | None:
    for item in metadata:
        if isinstance(item, BeforeValidator):
            func = item.func
            if func is units.parse_duration:
                return "duration"
            if func is units.parse_size:
                return "size"
            if func is units.parse_bandwidth:
                return "bandwidth"
    return None


def _bound_text(value: Any, unit: str | None) -> str:
    if not isinstance(value, float | int) or isinstance(value, bool):
        return str(value)
    if unit == "duration":
        return units.format_duration(float(value)) if value else "0"
    if unit in ("size", "bandwidth"):
        text = units.size_text(float(value))
        return f"{text}/s" if unit == "bandwidth" else text
    if value == 2**63 - 1:
        return "2⁶³ − 1"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}".replace(",", " ") if abs(value) >= 10_000 else f"{int(value)}"
    return f"{value:g}"


def _bounds(metadata: list[Any], unit: str | None = None) -> list[str]:
    out = []
    for item in metadata:
        if isinstance(item, Ge):
            out.append(f"≥ {_bound_text(item.ge, unit)}")
        elif isinstance(item, Gt):
            out.append(f"> {_bound_text(item.gt, unit)}")
        elif isinstance(item, Le):
            out.append(f"≤ {_bound_text(item.le, unit)}")
        elif isinstance(item, Lt):
            out.append(f"< {_bound_text(item.lt, unit)}")
        elif isinstance(item, FieldInfo):
            out += _bounds(list(item.metadata), unit)
    return out


def _lengths(metadata: list[Any]) -> tuple[int, int | None]:
    low, high = 0, None
    for item in metadata:
        if isinstance(item, MinLen):
            low = item.min_length
        elif isinstance(item, MaxLen):
            high = item.max_length
        elif isinstance(item, FieldInfo):
            low2, high2 = _lengths(list(item.metadata))
            low, high = max(low, low2), high2 if high2 is not None else high
    return low, high


def _count_text(low: int, high: int | None, noun: str) -> str:
    def n(k: int) -> str:
        return f"{k} {noun if k != 1 else noun.removesuffix('s')}"

    if high is not None and low == high:
        return f"exactly {n(low)}"
    if high is not None:
        return f"{low} to {n(high)}" if low else f"at most {n(high)}"
    return f"at least {n(low)}" if low else ""


def _flatten(annotation: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, m…]`` (nested) → (T, [m…])."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        metadata += list(args[1:])
    return annotation, metadata


def _is_model(tp: Any) -> bool:
    return inspect.isclass(tp) and issubclass(tp, BaseModel)


def _kind(annotation: Any) -> str | None:
    """The tag of a model with a one-value ``kind`` Literal, else None."""
    tp = _flatten(annotation)[0]
    if not _is_model(tp) or "kind" not in tp.model_fields:
        return None
    args = typing.get_args(_flatten(tp.model_fields["kind"].annotation)[0])
    return str(args[0]) if len(args) == 1 else None


_SCALARS = {int: "integer", float: "number", str: "string", bool: "boolean",
            datetime.datetime: "date-time (ISO 8601, with a time zone)"}


@dataclass
class _Ref:
    """A nested section a key refers to."""

    anchor: str
    title: str
    model: type[BaseModel]
    tag: str = ""
    intro: str = ""


class _Walker:
    """Renders types and collects the sections they refer to."""

    def __init__(self) -> None:
        self.refs: list[_Ref] = []

    def section(self, path: str, model: type[BaseModel], tag: str = "", intro: str = "") -> str:
        anchor = re.sub(r"[^a-z0-9]+", "-", f"{path} {tag}".lower()).strip("-")
        if not any(r.anchor == anchor for r in self.refs):
            self.refs.append(_Ref(anchor, path, model, tag, intro))
        return anchor

    def type_text(self, annotation: Any, path: str, extra: list[Any] | None = None) -> str:
        tp, metadata = _flatten(annotation)
        metadata = [*(extra or []), *metadata]
        unit = _unit_kind(metadata)
        bounds = _bounds(metadata, unit)
        suffix = f" {', '.join(bounds)}" if bounds else ""
        origin = typing.get_origin(tp)
        if unit is not None:
            return unit + suffix
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            nullable = len(members) < len(typing.get_args(tp))
            kinds = [_kind(m) for m in members]
            if len(members) > 1 and all(kinds):
                links = [f"[`{k}`](#{self.section(path, _flatten(m)[0], f'kind: {k}')})"
                         for m, k in zip(members, kinds, strict=True)]
                text = "one of " + ", ".join(links) + " (by `kind`)"
            else:
                parts = []
                for m, k in zip(members, kinds, strict=True):
                    if k:
                        anchor = self.section(path, _flatten(m)[0], f"kind: {k}")
                        parts.append(f"[`kind: {k}` mapping](#{anchor})")
                    else:
                        parts.append(self.type_text(m, path))
                text = " or ".join(parts)
            return text + (" or null" if nullable else "") + suffix
        if origin is Literal:
            return " \\| ".join(f"`{v}`" for v in typing.get_args(tp)) + suffix
        count = _count_text(*_lengths(metadata), "items")
        if origin is list:
            (item,) = typing.get_args(tp) or (Any,)
            size = f" ({count})" if count else ""
            return f"list{size} of {self.type_text(item, path + '[]')}"
        if origin is dict:
            key, value = typing.get_args(tp) or (str, Any)
            count = _count_text(*_lengths(metadata), "keys")
            size = f" ({count})" if count else ""
            return (f"mapping{size} of {self.type_text(key, path)} to "
                    f"{self.type_text(value, path + '.*')}")
        if tp is str and count:
            count = _count_text(*_lengths(metadata), "characters")
            return "non-empty string" if count == "at least 1 character" else f"string ({count})"
        if _is_model(tp):
            return f"[mapping](#{self.section(path, tp)})" + suffix
        if tp in _SCALARS:
            return _SCALARS[tp] + suffix
        if tp is Any:
            return "any" + suffix
        return str(getattr(tp, "__name__", tp)) + suffix


# --------------------------------------------------------------------------- values


def _size_text(value: float) -> str:
    for unit in ("TB", "GB", "MB", "KB"):
        scaled = value / units.SIZE_UNITS[unit]
        if scaled >= 1 and round(scaled, 6) == scaled:
            return f"{scaled:g}{unit}"
    return f"{value:g}B"


def _value_text(value: Any, unit: str | None) -> str:
    if value is None:
        return "null"
    if unit == "duration" and isinstance(value, int | float):
        return f"`{units.duration_text(float(value))}`" if value else "`0s`"
    if unit == "size" and isinstance(value, int | float):
        return f"`{_size_text(float(value))}`"
    if unit == "bandwidth" and isinstance(value, int | float):
        return f"`{_size_text(float(value))}/s`"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, datetime.datetime):
        return f"`{value.isoformat()}`"
    if isinstance(value, dict | list):
        flow = yaml.safe_dump(_plain(value), default_flow_style=True, sort_keys=False)
        return f"`{flow.strip()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _plain(value: Any) -> Any:
    """A default as it would be written in a scenario file."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        factory = typing.cast(Callable[[], Any], field.default_factory)
        value = factory()
    elif field.default is PydanticUndefined:
        return "*required*"
    else:
        value = field.default
    tp, metadata = _flatten(field.annotation)
    unit = _unit_kind([*field.metadata, *metadata])
    if unit is None and typing.get_origin(tp) in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            unit = unit or _unit_kind(_flatten(member)[1])
    return _value_text(value, unit)


def _clean(text: str) -> str:
    """A docstring paragraph or description as one Markdown line."""
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = re.sub(r":(?:class|func|data|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return " ".join(text.split()).replace("|", "\\|")


def _intro(model: type[BaseModel]) -> str:
    doc = inspect.getdoc(model) or ""
    if not doc or model.__doc__ is None or doc == inspect.getdoc(BaseModel):
        return ""
    paragraphs = [p for p in doc.split("\n\n") if not p.strip().endswith("::")]
    kept = [p for p in paragraphs if "::" not in p and not p.startswith("    ")]
    return "\n\n".join(_clean(p) for p in kept)


def _policy_intro(name: str) -> str:
    """The first paragraph of a policy's docstring (its class's, else its module's)."""
    cls = get_policy(name)
    doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
    first = inspect.cleandoc(doc).split("\n\n")[0]
    return _clean(first) + f" Defined in `{cls.__module__}`."


def description(model: type[BaseModel], key: str) -> str:
    """The key's description: the spec's own, else :data:`DESCRIPTIONS`, else for a
    discriminator (``kind: poisson``, ``policy: hpa``) what it selects."""
    field = model.model_fields[key]
    if field.description:
        return field.description
    for cls in model.__mro__:
        text = DESCRIPTIONS.get(f"{cls.__qualname__}.{key}")
        if text:
            return text
    tp = _flatten(field.annotation)[0]
    if key in ("kind", "policy") and typing.get_origin(tp) is Literal:
        (value,) = typing.get_args(tp)
        return f"`{key}: {value}` selects this section"
    return ""


# --------------------------------------------------------------------------- document


@dataclass
class Row:
    model: type[BaseModel]
    key: str
    type: str
    default: str
    description: str


def _rows(walker: _Walker, model: type[BaseModel], path: str) -> Iterator[Row]:
    for key, field in model.model_fields.items():
        child = f"{path}.{key}" if path else key
        if model is DeploymentSpec and key == "autoscaler":
            anchors = {name: walker.section(child, get_policy(name).Params,
                                            f"policy: {name}", _policy_intro(name))
                       for name in policy_names()}
            links = ", ".join(f"[`{name}`](#{anchor})" for name, anchor in anchors.items())
            yield Row(model, key, f"mapping: one of {links} (by `policy`), or a user policy "
                      "`module:Class`", "`{policy: fireworks}`", description(model, key))
            continue
        type_text = walker.type_text(field.annotation, child, list(field.metadata))
        yield Row(model, key, type_text, _default(field), description(model, key))


def sections() -> list[tuple[str, str, str, list[Row]]]:
    """(anchor, title, intro, rows) of every section, depth first from the top level."""
    walker = _Walker()
    out = [("scenario", "Top level", _intro(Scenario), list(_rows(walker, Scenario, "")))]
    done = 0
    while done < len(walker.refs):
        ref = walker.refs[done]
        done += 1
        title = f"`{ref.title}`" + (f" — `{ref.tag}`" if ref.tag else "")
        out.append((ref.anchor, title, ref.intro or _intro(ref.model),
                    list(_rows(walker, ref.model, ref.title))))
    return out


def all_rows() -> list[Row]:
    return [row for _, _, _, rows in sections() for row in rows]


def render() -> str:
    parts = [
        "# Scenario file reference",
        "",
        f"<!-- Generated from the schema by `{COMMAND}`. Do not edit by hand. -->",
        "",
        "Every key of a scenario file, generated from the schema that validates it "
        "(`sim/scenario/schema.py` and the specs it composes), so it cannot drift. "
        "A worked example is in [the tutorial](../tutorial.md); what each metric means is in "
        "[metrics.md](../metrics.md).",
        "",
        _CONVENTIONS,
    ]
    for anchor, title, intro, rows in sections():
        parts += ["", f'<a id="{anchor}"></a>', "", f"## {title}", ""]
        if intro:
            parts += [intro, ""]
        parts += ["| key | type | default | description |", "|---|---|---|---|"]
        for row in rows:
            parts.append(f"| `{row.key}` | {row.type} | {row.default} | "
                         f"{_clean(row.description)} |")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else 'docgen'}",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out", nargs="?", default=str(DOC), help="file to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = render()
    path = Path(args.out)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
