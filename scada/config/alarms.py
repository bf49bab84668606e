"""Alarm definitions of a tank (the alarm engine in alarms/ evaluates them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from scada.config.base import Ident, NonNegFloat, StrictModel


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    LOG = "log"  # journaled, never annunciated


class AlarmKind(StrEnum):
    LIMIT = "limit"
    DEVIATION = "deviation"
    RATE = "rate"
    DISCRETE = "discrete"
    QUALITY = "quality"


class AlarmConfig(StrictModel):
    id: Ident
    kind: AlarmKind
    source: str
    """A sensor group or input role of the tank, or a full tag name."""
    hh: float | None = None
    h: float | None = None
    l: float | None = None  # noqa: E741
    ll: float | None = None
    deviation: Annotated[float, Field(gt=0)] | None = None
    """For kind deviation: |PV - SP| above this alarms (SP from the loop on the same pv)."""
    rate_per_min: Annotated[float, Field(gt=0)] | None = None
    alarm_state: bool = True
    """For kind discrete: the value that is abnormal."""
    deadband: NonNegFloat = 0.0
    on_delay_s: NonNegFloat = 0.0
    off_delay_s: NonNegFloat = 0.0
    priority: Priority = Priority.MEDIUM
    message: str = ""

    @model_validator(mode="after")
    def _fields(self) -> AlarmConfig:
        if self.kind is AlarmKind.LIMIT:
            lims = [x for x in (self.ll, self.l, self.h, self.hh) if x is not None]
            if not lims:
                raise ValueError("a limit alarm needs at least one of hh, h, l, ll")
            if lims != sorted(lims):
                raise ValueError("limits must be ordered ll <= l <= h <= hh")
        if self.kind is AlarmKind.DEVIATION and self.deviation is None:
            raise ValueError("a deviation alarm needs 'deviation'")
        if self.kind is AlarmKind.RATE and self.rate_per_min is None:
            raise ValueError("a rate alarm needs 'rate_per_min'")
        return self
