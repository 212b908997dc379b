"""Time windows for schedules: cron firings with a duration, and windows of run time.

Cron expressions have five fields (minute hour day-of-month month day-of-week)
and are evaluated with the ``croniter`` library in a time zone, against a
wall clock that reads ``start_time`` at t = 0 of the run.  A cron window is
active from each firing for ``duration``; a firing before t = 0 counts, so a
schedule that began before the run is active from its first second.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

#: wall-clock time at t = 0 unless a policy says otherwise: midnight UTC, Monday 1 January 2024
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


def check_cron(expr: str) -> str:
    """``expr`` if it is a valid five-field cron expression, else ValueError."""
    if not isinstance(expr, str) or len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(
            f"{expr!r} is not a cron expression of five fields "
            "(minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5')"
        )
    return expr


def check_zone(name: str) -> str:
    """``name`` if it is an IANA time zone (``UTC``, ``Europe/Paris``), else ValueError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as 'UTC', "
                         "'America/New_York')") from None
    return name


def aware(value: datetime) -> datetime:
    """A naive datetime read as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CronWindow:
    """Active for ``duration_s`` from each firing of a cron expression."""

    def __init__(self, expr: str, duration_s: float, start_time: datetime = DEFAULT_START,
                 time_zone: str = "UTC"):
        self.expr = check_cron(expr)
        self.duration_s = float(duration_s)
        self.start = aware(start_time)
        self.zone = ZoneInfo(check_zone(time_zone))
        self._last = -math.inf  # run time of the last firing at or before _valid_from
        self._next = -math.inf  # run time of the firing after it
        self._valid_from = math.inf

    def _wall(self, t: float) -> datetime:
        return (self.start + timedelta(seconds=t)).astimezone(self.zone)

    def _run_time(self, wall: datetime) -> float:
        return (wall - self.start).total_seconds()

    def last_firing(self, t: float) -> float:
        """Run time (s) of the last firing at or before ``t`` (negative: before the run)."""
        if not (self._valid_from <= t < self._next):
            wall = self._wall(t)
            prev = croniter(self.expr, wall + timedelta(microseconds=1)).get_prev(datetime)
            nxt = croniter(self.expr, wall).get_next(datetime)
            self._last, self._next, self._valid_from = self._run_time(prev), self._run_time(nxt), t
        return self._last

    def active(self, t: float) -> bool:
        return t - self.last_firing(t) < self.duration_s - 1e-9


class RunWindow:
    """Active from ``start_s`` to ``end_s`` of run time, repeating every ``every_s`` if given."""

    def __init__(self, start_s: float, end_s: float, every_s: float | None = None):
        if end_s <= start_s:
            raise ValueError("a window's end must be after its start")
        if every_s is not None and every_s < end_s - start_s:
            raise ValueError("a repeating window must not be longer than its period")
        self.start_s, self.end_s, self.every_s = start_s, end_s, every_s

    def active(self, t: float) -> bool:
        if t < self.start_s - 1e-9:
            return False
        if self.every_s is None:
            return t < self.end_s - 1e-9
        phase = (t - self.start_s + 1e-9) % self.every_s
        return phase < self.end_s - self.start_s
