"""``scheduled``: replica counts set by the clock, like KEDA's cron scaler or
AWS scheduled actions.

Each window is either a cron expression with a duration (active from each
firing, on a wall clock reading ``start_time`` at t = 0 of the run) or a span
of run time (``start`` to ``end``, repeating ``every`` period if given).  The
highest count among active windows wins; outside every window the
deployment keeps ``default_replicas``.  Counts are clamped to
[min_replicas, max_replicas].  The policy ignores load, and a request that
meets no ready replica does not start one (as ``static``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sim import limits as L
from sim.policies.registry import Observation, Policy, clamp, register
from sim.policies.schedule import (
    DEFAULT_START,
    CronWindow,
    RunWindow,
    aware,
    check_cron,
    check_zone,
)
from sim.spec import Spec
from sim.units import Duration


class Window(Spec):
    replicas: int = Field(ge=0, le=L.MAX_REPLICAS)
    cron: str | None = Field(None, description="five-field cron expression (with duration)")
    duration: Duration | None = Field(None, gt=0, le=L.MAX_HORIZON_S,
                                      description="how long each firing lasts")
    time_zone: str = Field("UTC", description="IANA time zone of the cron expression")
    start: Duration | None = Field(None, ge=0, le=L.MAX_HORIZON_S,
                                   description="run time (with end)")
    end: Duration | None = Field(None, gt=0, le=L.MAX_HORIZON_S)
    every: Duration | None = Field(None, gt=0, le=L.MAX_HORIZON_S,
                                   description="repeat period of start..end")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        if self.cron is not None:
            if self.duration is None:
                raise ValueError("a cron window needs a duration")
            if self.start is not None or self.end is not None or self.every is not None:
                raise ValueError("a window is either cron + duration or start + end, not both")
        else:
            if self.start is None or self.end is None:
                raise ValueError("a window needs cron + duration, or start + end")
            if self.duration is not None:
                raise ValueError("duration goes with cron; a run-time window has start + end")
            RunWindow(self.start, self.end, self.every)  # checks end > start, period
        return self


@register("scheduled")
class Scheduled(Policy):
    class Params(Spec):
        policy: Literal["scheduled"] = "scheduled"
        schedules: list[Window] = Field(
            min_length=1,
            description="[{replicas, cron, duration, time_zone}] or "
                        "[{replicas, start, end, every}]; the highest active count wins")
        default_replicas: int = Field(0, ge=0, le=L.MAX_REPLICAS,
                                      description="outside every window")
        start_time: datetime = Field(
            DEFAULT_START, description="wall-clock time at t = 0, for cron windows")
        sync_period: Duration = Field(60.0, validate_default=False,
                                      ge=L.MIN_PERIOD_S, le=L.MAX_WINDOW_S,
                                      description="how often the clock is read")

        @field_validator("start_time")
        @classmethod
        def _aware(cls, value: datetime) -> datetime:
            return aware(value)

    scales_from_zero = False  # the clock decides, not requests

    def __init__(self, params: Spec):
        assert isinstance(params, Scheduled.Params)
        super().__init__(params)
        self.p = params
        self.sync_period_s = params.sync_period
        self.windows: list[tuple[CronWindow | RunWindow, int]] = []
        for w in params.schedules:
            if w.cron is not None:
                assert w.duration is not None
                window: CronWindow | RunWindow = CronWindow(w.cron, w.duration, params.start_time,
                                                            w.time_zone)
            else:
                assert w.start is not None and w.end is not None
                window = RunWindow(w.start, w.end, w.every)
            self.windows.append((window, w.replicas))

    def replicas_at(self, t: float) -> int:
        """The highest count of the windows active at ``t``, else the default."""
        active = [n for window, n in self.windows if window.active(t)]
        return max(active) if active else self.p.default_replicas

    def initial_replicas(self) -> int:
        return self.replicas_at(0.0)

    def decide(self, obs: Observation) -> int:
        return clamp(self.replicas_at(obs.t), obs.min_replicas, obs.max_replicas)
