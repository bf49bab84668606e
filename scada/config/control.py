"""Control loops of a tank (owned by the scan engine: scada/control.py implements them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scada.config.base import Ident, NonNegFloat, PositiveFloat, Range, StrictModel


class LoopKind(StrEnum):
    PID = "pid"
    ONOFF = "onoff"
    PH_DOSING = "ph_dosing"
    RECTIFIER = "rectifier"


class LoopMode(StrEnum):
    AUTO = "auto"
    MANUAL = "manual"
    OFF = "off"


class SetpointConfig(StrictModel):
    initial: float
    limits: Range
    """Engineering limits of the setpoint."""
    operator_limits: Range | None = None
    ramp_per_min: NonNegFloat = 0.0
    """Setpoint ramp rate in units per minute (0 = step)."""

    @model_validator(mode="after")
    def _inside(self) -> SetpointConfig:
        if not self.limits.contains(self.initial):
            raise ValueError(f"initial setpoint {self.initial} is outside limits {self.limits.min}..{self.limits.max}")
        if self.operator_limits and not self.operator_limits.within(self.limits):
            raise ValueError("operator_limits must lie inside limits")
        return self


class PidConfig(StrictModel):
    kp: float
    ti_s: Annotated[float, Field(ge=0)] = 0.0
    """Integral time; 0 disables the integral action."""
    td_s: NonNegFloat = 0.0
    out_min: float = 0.0
    out_max: float = 100.0
    cycle_s: NonNegFloat = 0.0
    """Time-proportioning cycle for an on/off output (0 = the output is analog)."""
    reverse: bool = False
    """Reverse acting (cooling: output rises when PV is above SP)."""


class OnOffConfig(StrictModel):
    hysteresis: PositiveFloat = 1.0
    reverse: bool = False


class DosingConfig(StrictModel):
    direction: Literal["lower", "raise"] = "lower"
    """``lower``: the pump adds acid when pH is above SP + deadband."""
    deadband: PositiveFloat = 0.1
    pulse_s: PositiveFloat = 5.0
    min_interval_s: PositiveFloat = 600.0
    max_doses_per_hour: Annotated[int, Field(ge=1)] = 4


class RectifierConfig(StrictModel):
    ramp_s: NonNegFloat = 20.0
    max_current_a: PositiveFloat
    max_voltage_v: PositiveFloat
    default_area_dm2: Annotated[float, Field(gt=0)] | None = None
    """Area used when no load record gives one (demo / manual loads)."""


class LoopConfig(StrictModel):
    id: Ident
    kind: LoopKind
    pv: Ident
    """Sensor group of the tank that is the process value."""
    output: Ident
    """Output role of the tank driven by the loop (e.g. heater, acid_pump, rectifier_setpoint)."""
    enable_output: Ident | None = None
    """Optional output role switched on while the loop runs (e.g. rectifier_enable)."""
    setpoint: SetpointConfig
    mode: LoopMode = LoopMode.AUTO
    pid: PidConfig | None = None
    onoff: OnOffConfig | None = None
    dosing: DosingConfig | None = None
    rectifier: RectifierConfig | None = None

    @model_validator(mode="after")
    def _params(self) -> LoopConfig:
        need = {LoopKind.PID: "pid", LoopKind.ONOFF: "onoff", LoopKind.PH_DOSING: "dosing",
                LoopKind.RECTIFIER: "rectifier"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"a {self.kind.value} loop needs a '{need}' section")
        return self
