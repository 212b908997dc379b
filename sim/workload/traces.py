"""Trace files: read (and write) recorded requests.

Two formats, chosen by extension:

* ``.csv`` — the Azure LLM inference trace format: a header line
  ``TIMESTAMP,ContextTokens,GeneratedTokens`` (any column order, extra columns
  ignored), timestamps like ``2023-11-16 18:17:03.9799600``.
* ``.jsonl`` — one JSON object per line with ``timestamp`` (milliseconds),
  ``input_length`` and ``output_length``; blank lines are skipped.  Optional
  keys: ``hash_ids`` (a list of integers ≥ 0, one per block of the prompt,
  equal ids for equal prefixes up to that block — the format of the public
  long-context traces) and ``session_id`` (a string or an integer naming the
  conversation).  Either key is used only if every line has it.

Arrival times are made relative to the first request and given in seconds.
Every defect is an :class:`~sim.errors.InputError` naming the file and the
1-based line (the CSV header is line 1).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from sim.errors import InputError, elide, quoted
from sim.workload.base import Workload
from sim.workload.spec import MAX_TOKENS

CSV_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
JSONL_KEYS = ("timestamp", "input_length", "output_length")
FORMATS = (".csv", ".jsonl")
_TIMESTAMP_EXAMPLE = "2023-11-16 18:17:03.9799600"


def trace_format(path: str | Path) -> str:
    """``".csv"`` or ``".jsonl"``, from the file name; InputError for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"unknown trace format {suffix or '(no extension)'!r} (expected .csv or .jsonl)",
            file=str(path),
        )
    return suffix


def read_trace(path: str | Path) -> Workload:
    """The requests recorded in ``path``, arrival times relative to the first one.

    Errors name ``path`` as given: ``InputError(reason, file=str(path), where="line N")``.
    """
    shown = str(path)
    fmt = trace_format(path)
    p = Path(path)
    if not p.exists():
        raise InputError("trace file not found", file=shown)
    if not p.is_file():
        raise InputError("trace path is not a file", file=shown)
    extra = _Extra()
    if fmt == ".csv":
        stamps_s, inputs, outputs, lines = _read_csv(p, shown)
    else:
        stamps_s, inputs, outputs, lines = _read_jsonl(p, shown, extra)
    if stamps_s.size == 0:
        raise InputError("trace has no requests", file=shown)
    back = np.flatnonzero(np.diff(stamps_s) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError(
            f"timestamp goes back in time: earlier than the request on line {lines[i - 1]} "
            "(a trace must be sorted by time)",
            file=shown,
            where=f"line {lines[i]}",
        )
    n_blocks, block_ids, session = extra.arrays(len(stamps_s))
    return Workload(stamps_s - stamps_s[0], inputs, outputs, n_blocks, block_ids, session)


def write_trace(workload: Workload, path: str | Path, start: datetime | None = None) -> None:
    """Write ``workload`` as a trace that :func:`read_trace` reads back.

    JSONL timestamps are milliseconds from the first request; CSV timestamps
    are wall-clock times from ``start`` (default 2000-01-01 00:00:00).
    JSONL keeps block ids (``hash_ids``) and sessions (``session_id``).
    """
    fmt = trace_format(path)
    if fmt == ".jsonl":
        off = workload.block_offsets.tolist()
        ids = workload.block_ids.tolist() if workload.block_ids is not None else None
        sessions = workload.session.tolist() if workload.session is not None else None
        with open(path, "w", encoding="utf-8") as f:
            for k, (t, i, o) in enumerate(zip(
                (workload.arrival_s * 1000.0).tolist(),
                workload.input_tokens.tolist(),
                workload.output_tokens.tolist(),
                strict=True,
            )):
                row: dict[str, object] = {"timestamp": t, "input_length": i, "output_length": o}
                if ids is not None:
                    row["hash_ids"] = ids[off[k] : off[k + 1]]
                if sessions is not None:
                    row["session_id"] = sessions[k]
                f.write(json.dumps(row))
                f.write("\n")
        return
    origin = pd.Timestamp(start or datetime(2000, 1, 1))
    stamps = origin + pd.to_timedelta(np.round(workload.arrival_s * 1e9).astype(np.int64), "ns")
    frame = pd.DataFrame(
        {
            "TIMESTAMP": stamps.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "ContextTokens": workload.input_tokens,
            "GeneratedTokens": workload.output_tokens,
        }
    )
    frame.to_csv(path, index=False)


# --------------------------------------------------------------------------- CSV


_PANDAS_LINE = re.compile(r"line (\d+)")

_Columns = tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]


def _read_csv(path: Path, shown: str) -> _Columns:
    try:
        frame = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise InputError(
            f"file is empty: expected a header line {','.join(CSV_COLUMNS)}",
            file=shown,
            where="header",
        ) from None
    except pd.errors.ParserError as e:
        m = _PANDAS_LINE.search(str(e))
        where = f"line {m.group(1)}" if m else None
        raise InputError(
            f"cannot read CSV: {str(e).strip().removeprefix('Error tokenizing data. C error: ')}",
            file=shown,
            where=where,
        ) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not a UTF-8 text file ({e.reason})", file=shown) from None
    header = _csv_header(path)
    for column in CSV_COLUMNS:
        if header.count(column) > 1:
            raise InputError(f"column {column!r} appears {header.count(column)} times",
                             file=shown, where="header")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in CSV_COLUMNS:
        if column not in frame.columns:
            raise InputError(
                f"missing column {column!r} (header has {elide(', '.join(frame.columns))}; "
                f"expected {','.join(CSV_COLUMNS)})",
                file=shown,
                where="header",
            )
    raw = [frame[c].to_numpy(dtype=object).astype(str) for c in CSV_COLUMNS]
    # Trailing blank lines are not requests.
    filled = np.zeros(len(frame), dtype=bool)
    for col in raw:
        filled |= np.char.str_len(np.char.strip(col)) > 0
    last = int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0
    raw = [col[:last] for col in raw]
    lines = np.arange(last, dtype=np.int64) + 2  # header is line 1

    problems: list[tuple[int, str]] = []
    _first(problems, ~filled[:last], lambda i: "blank line")
    stamps_raw = np.char.strip(raw[0])
    # Times with a UTC offset (Azure 2024 traces) are converted to UTC; naive ones kept.
    stamps = pd.to_datetime(pd.Series(stamps_raw), format="ISO8601", errors="coerce", utc=True)
    empty = np.char.str_len(stamps_raw) == 0
    _first(problems, empty, lambda i: "empty TIMESTAMP field")
    bad = stamps.isna().to_numpy() & ~empty
    _first(
        problems,
        bad,
        lambda i: (
            f"cannot read timestamp {quoted(str(stamps_raw[i]))} "
            f"(expected e.g. {_TIMESTAMP_EXAMPLE})"
        ),
    )
    tokens = [_token_column(np.char.strip(raw[k]), CSV_COLUMNS[k], problems) for k in (1, 2)]
    if problems:
        row, reason = min(problems, key=lambda p: p[0])
        raise InputError(reason, file=shown, where=f"line {lines[row]}")
    ns = stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    seconds = (ns - ns[0]).astype(np.float64) / 1e9 if ns.size else np.empty(0)
    return seconds, tokens[0], tokens[1], lines


def _csv_header(path: Path) -> list[str]:
    """The names on the header line, as written (pandas renames a repeated one)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        first = f.readline()
    return [name.strip() for row in csv.reader([first]) for name in row]


def _first(
    problems: list[tuple[int, str]], mask: NDArray[np.bool_], reason: Callable[[int], str]
) -> None:
    """Record the first row where ``mask`` holds, with ``reason(row)``."""
    hits = np.flatnonzero(mask)
    if hits.size:
        row = int(hits[0])
        problems.append((row, reason(row)))


def _token_column(
    text: NDArray[np.str_], name: str, problems: list[tuple[int, str]]
) -> NDArray[np.int64]:
    values = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(dtype=np.float64)
    empty = np.char.str_len(text) == 0
    _first(problems, empty, lambda i: f"empty {name} field")
    nan = np.isnan(values) & ~empty
    _first(problems, nan, lambda i: f"{name} {quoted(str(text[i]))} is not a number")
    finite = np.isfinite(values)
    _first(problems, ~finite & ~nan & ~empty,
           lambda i: f"{name} {quoted(str(text[i]))} is not finite")
    with np.errstate(invalid="ignore"):
        fractional = finite & (values != np.floor(values))
        negative = finite & ~fractional & (values < 0)
        zero = finite & (values == 0)
    _first(
        problems, fractional,
        lambda i: f"{name} {quoted(str(text[i]))} is not a whole number of tokens"
    )
    _first(problems, negative, lambda i: f"{name} {quoted(str(text[i]))} is negative")
    _first(problems, zero, lambda i: f"{name} is 0: a request has at least 1 token")
    _first(
        problems,
        finite & (values > MAX_TOKENS),
        lambda i: f"{name} {quoted(str(text[i]))} is too large",
    )
    return np.where(finite, values, 0).astype(np.int64)


# --------------------------------------------------------------------------- JSONL


class _Extra:
    """The optional ``hash_ids`` and ``session_id`` of a JSONL trace, line by line."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.ids: list[int] = []
        self.with_ids = 0
        self.sessions: list[object] = []

    def add(self, row: dict[str, object], shown: str, where: str) -> None:
        ids = row.get("hash_ids")
        if ids is not None:
            if not isinstance(ids, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63 for x in ids
            ):
                raise InputError("hash_ids must be a list of integers >= 0", file=shown,
                                 where=where)
            self.ids.extend(ids)
            self.with_ids += 1
        self.counts.append(len(ids) if isinstance(ids, list) else 0)
        sid = row.get("session_id")
        if sid is not None and (isinstance(sid, bool) or not isinstance(sid, str | int)):
            raise InputError(f"session_id {sid!r} is not a string or an integer", file=shown,
                             where=where)
        self.sessions.append(sid)

    def arrays(self, n: int) -> tuple[NDArray[np.int64] | None, NDArray[np.int64] | None,
                                      NDArray[np.int64] | None]:
        n_blocks = block_ids = session = None
        if n and self.with_ids == n:
            n_blocks = np.asarray(self.counts, np.int64)
            block_ids = np.asarray(self.ids, np.int64)
        if n and len(self.sessions) == n and all(s is not None for s in self.sessions):
            # sessions numbered 0, 1, ... in order of first appearance
            codes, _ = pd.factorize(pd.Series([str(s) for s in self.sessions]), sort=False)
            session = np.asarray(codes, np.int64)
        return n_blocks, block_ids, session


def _read_jsonl(path: Path, shown: str, extra: _Extra) -> _Columns:
    stamps: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    lines: list[int] = []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = f"line {number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"not valid JSON: {e.msg}", file=shown, where=where) from None
                except RecursionError:
                    raise InputError("not a trace record: nested too deeply", file=shown,
                                     where=where) from None
                if not isinstance(row, dict):
                    raise InputError(
                        f"expected a JSON object with keys {', '.join(JSONL_KEYS)}",
                        file=shown,
                        where=where,
                    )
                for key in JSONL_KEYS:
                    if key not in row:
                        raise InputError(f"missing key {key!r}", file=shown, where=where)
                stamps.append(_json_timestamp(row["timestamp"], shown, where))
                inputs.append(_json_tokens(row["input_length"], "input_length", shown, where))
                outputs.append(_json_tokens(row["output_length"], "output_length", shown, where))
                extra.add(row, shown, where)
                lines.append(number)
    except UnicodeDecodeError as e:
        raise InputError(f"not a UTF-8 text file ({e.reason})", file=shown) from None
    ms = np.asarray(stamps, dtype=np.float64)
    return (
        (ms - ms[0]) / 1000.0 if ms.size else ms,
        np.asarray(inputs, dtype=np.int64),
        np.asarray(outputs, dtype=np.int64),
        np.asarray(lines, dtype=np.int64),
    )


def _json_timestamp(value: object, shown: str, where: str) -> float:
    if value is None:
        raise InputError("timestamp is null", file=shown, where=where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(
            f"timestamp {quoted(value)} is not a number of milliseconds", file=shown, where=where
        )
    if not math.isfinite(value):
        raise InputError(f"timestamp {quoted(value)} is not finite", file=shown, where=where)
    return float(value)


def _json_tokens(value: object, name: str, shown: str, where: str) -> int:
    if value is None:
        raise InputError(f"{name} is null", file=shown, where=where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} {quoted(value)} is not a number", file=shown, where=where)
    if not math.isfinite(value):
        raise InputError(f"{name} {quoted(value)} is not finite", file=shown, where=where)
    if value != math.floor(value):
        raise InputError(
            f"{name} {quoted(value)} is not a whole number of tokens", file=shown, where=where
        )
    if value < 0:
        raise InputError(f"{name} {quoted(value)} is negative", file=shown, where=where)
    if value == 0:
        raise InputError(f"{name} is 0: a request has at least 1 token", file=shown, where=where)
    if value > MAX_TOKENS:
        raise InputError(f"{name} {quoted(value)} is too large", file=shown, where=where)
    return int(value)


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """``path`` as written in a scenario, resolved against the scenario's folder."""
    p = Path(path).expanduser()
    if base_dir is not None and not p.is_absolute():
        p = Path(base_dir) / p
    return p


def load_trace(path: str, base_dir: Path | None = None) -> Workload:
    """:func:`read_trace` of ``path`` resolved against ``base_dir``, cached.

    The cache is keyed by the file's resolved name, size and modification
    time; the arrays are read-only, so sharing them is safe.
    """
    resolved = resolve_path(path, base_dir)
    try:
        stat = resolved.stat()
    except OSError:
        return read_trace(resolved)  # raises the right InputError
    return _cached_read(str(resolved), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _cached_read(path: str, size: int, mtime_ns: int) -> Workload:
    return read_trace(path)


def token_column(trace: Workload, column: str) -> NDArray[np.int64]:
    """The ``"input"`` or ``"output"`` token counts of ``trace``."""
    return trace.input_tokens if column == "input" else trace.output_tokens


__all__: Sequence[str] = (
    "load_trace",
    "read_trace",
    "resolve_path",
    "token_column",
    "trace_format",
    "write_trace",
)


# --------------------------------------------------------------------------- what a trace holds

# A JSONL trace faster than this on average, over less than a minute, most likely holds
# seconds where milliseconds are expected (every gap 1000 times too short).
UNIT_SUSPECT_RPS = 200.0
UNIT_SUSPECT_SPAN_S = 60.0


@dataclass(frozen=True)
class TraceStats:
    """What a trace holds, as read: its span (first to last arrival), count and means."""

    requests: int
    span_s: float
    mean_rps: float
    mean_input: float
    mean_output: float

    def line(self) -> str:
        from sim.report.format import seconds_text

        rate = f"{self.mean_rps:,.3g} req/s" if math.isfinite(self.mean_rps) else "all at once"
        return (f"{self.requests:,} requests over {seconds_text(self.span_s)}, mean {rate}, "
                f"mean {self.mean_input:,.0f} input and {self.mean_output:,.0f} output tokens")


def trace_stats(trace: Workload) -> TraceStats:
    n = len(trace)
    span = float(trace.arrival_s[-1] - trace.arrival_s[0]) if n else 0.0
    return TraceStats(
        requests=n,
        span_s=span,
        mean_rps=(n - 1) / span if span > 0 else math.inf,
        mean_input=float(trace.input_tokens.mean()) if n else 0.0,
        mean_output=float(trace.output_tokens.mean()) if n else 0.0,
    )


def unit_warning(stats: TraceStats, path: str | Path) -> str | None:
    """A warning when a ``.jsonl`` trace's rate suggests seconds read as milliseconds."""
    if trace_format(path) != ".jsonl" or stats.requests < 20:
        return None
    if stats.span_s < UNIT_SUSPECT_SPAN_S and stats.mean_rps > UNIT_SUSPECT_RPS:
        from sim.report.format import seconds_text

        return (f"{stats.requests:,} requests in {seconds_text(stats.span_s)} "
                f"({stats.mean_rps:,.0f} req/s): JSONL timestamps are milliseconds; if these "
                f"are seconds, multiply them by 1000 (the trace would span "
                f"{seconds_text(stats.span_s * 1000)})")
    return None
