"""Alarm definitions of a tank (the alarm engine in alarms/ evaluates them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from scada.conditions import ConditionSyntaxError, parse_condition
from scada.config.base import Ident, NonNegFloat, PositiveFloat, StrictModel


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
    """Alarm id, unique in the tank."""
    kind: AlarmKind
    """``limit``, ``deviation``, ``rate``, ``discrete`` or ``quality``."""
    source: str
    """A sensor group or input role of the tank, or a full tag name."""
    hh: float | None = None
    """High-high limit."""
    h: float | None = None
    """High limit."""
    l: float | None = None  # noqa: E741
    """Low limit."""
    ll: float | None = None
    """Low-low limit."""
    deviation: Annotated[float, Field(gt=0)] | None = None
    """For kind deviation: |PV - SP| above this alarms (SP from the loop on the same pv)."""
    rate_per_min: Annotated[float, Field(gt=0)] | None = None
    """For kind rate: change per minute above which it alarms."""
    alarm_state: bool = True
    """For kind discrete: the value that is abnormal."""
    deadband: NonNegFloat = 0.0
    """The value must return this far inside the limit before the alarm clears."""
    on_delay_s: NonNegFloat = 0.0
    """Condition must hold this long before the alarm activates."""
    off_delay_s: NonNegFloat = 0.0
    """Condition must be gone this long before the alarm clears."""
    priority: Priority = Priority.MEDIUM
    """``critical``, ``high``, ``medium``, ``low`` or ``log`` (journal only)."""
    message: str = ""
    """Text shown in the alarm list (default: generated)."""
    rate_window_s: PositiveFloat = 30.0
    """For kind rate: the rate is the change over this window (a noisy value has no useful scan-to-scan rate)."""
    on_uncertain: bool = False
    """For kind quality: also alarm on Uncertain quality (default: Bad only)."""
    suppress_when: list[str] = []
    """Suppression by design: conditions of the tank (interlock language), any true hides the alarm,
    e.g. ``not load_present`` for a current alarm that means nothing without a load."""

    @field_validator("suppress_when")
    @classmethod
    def _parse_suppress(cls, v: list[str]) -> list[str]:
        errors = []
        for i, text in enumerate(v):
            try:
                parse_condition(text)
            except ConditionSyntaxError as e:
                errors.append(f"[{i}] {e}")
        if errors:
            raise ValueError("; ".join(errors))
        return v

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


class AlarmSettings(StrictModel):
    """Plant-wide alarm management settings (ISA-18.2 figures; the engine's defaults)."""

    max_shelve_s: Annotated[float, Field(gt=0)] = 8 * 3600.0
    """Longest an operator may shelve an alarm (a shift)."""
    flood_window_s: Annotated[float, Field(gt=0)] = 600.0
    flood_start: Annotated[int, Field(ge=1)] = 10
    """More than this many new alarms in the window, per area, is a flood."""
    flood_end: Annotated[int, Field(ge=0)] = 5
    """The flood ends when fewer than this many remain in the window."""
    standing_s: Annotated[float, Field(gt=0)] = 24 * 3600.0
    """An alarm active longer than this is a standing alarm."""
    chatter_count: Annotated[int, Field(ge=2)] = 3
    chatter_window_s: Annotated[float, Field(gt=0)] = 60.0
    """``chatter_count`` activations within this window make an alarm chattering."""
    stream_maxsize: Annotated[int, Field(ge=10)] = 10_000

    @model_validator(mode="after")
    def _flood(self) -> AlarmSettings:
        if self.flood_end > self.flood_start:
            raise ValueError("flood_end must not be above flood_start")
        return self
