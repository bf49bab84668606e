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
    """Setpoint at start (restored values take precedence)."""
    limits: Range
    """Engineering limits of the setpoint."""
    operator_limits: Range | None = None
    """Narrower range the operator role may set; engineers use ``limits``."""
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
    """Proportional gain (output % per engineering unit of error)."""
    ti_s: Annotated[float, Field(ge=0)] = 0.0
    """Integral time; 0 disables the integral action."""
    td_s: NonNegFloat = 0.0
    """Derivative time (0 = none)."""
    out_min: float = 0.0
    """Lowest output (percent)."""
    out_max: float = 100.0
    """Highest output (percent)."""
    cycle_s: NonNegFloat = 0.0
    """Time-proportioning cycle for an on/off output (0 = the output is analog)."""
    reverse: bool = False
    """Reverse acting (cooling: output rises when PV is above SP)."""


class OnOffConfig(StrictModel):
    hysteresis: PositiveFloat = 1.0
    """Switching differential around the setpoint."""
    reverse: bool = False
    """Reverse acting (cooling: on above the setpoint)."""


class DosingConfig(StrictModel):
    direction: Literal["lower", "raise"] = "lower"
    """``lower``: the pump adds acid when pH is above SP + deadband."""
    deadband: PositiveFloat = 0.1
    """No dosing while |pH - SP| is within this."""
    pulse_s: PositiveFloat = 5.0
    """Length of one pump pulse."""
    min_interval_s: PositiveFloat = 600.0
    """Wait after a pulse for mixing before the next (dose and wait)."""
    max_doses_per_hour: Annotated[int, Field(ge=1)] = 4
    """More pulses than this in an hour: stop and flag 'dosing ineffective'."""


class RectifierConfig(StrictModel):
    ramp_s: NonNegFloat = 20.0
    """Soft-start ramp from 0 to the target current."""
    max_current_a: PositiveFloat
    """Current limit of the rectifier."""
    max_voltage_v: PositiveFloat
    """Voltage limit (compliance) of the rectifier."""
    default_area_dm2: Annotated[float, Field(gt=0)] | None = None
    """Area used when no load record gives one (demo / manual loads)."""


class LoopConfig(StrictModel):
    id: Ident
    """Loop id, unique in the tank (``temp``, ``ph``, ``rectifier``)."""
    kind: LoopKind
    """Algorithm: ``pid``, ``onoff``, ``ph_dosing`` or ``rectifier``."""
    pv: Ident
    """Sensor group of the tank that is the process value."""
    output: Ident
    """Output role of the tank driven by the loop (e.g. heater, acid_pump, rectifier_setpoint)."""
    enable_output: Ident | None = None
    """Optional output role switched on while the loop runs (e.g. rectifier_enable)."""
    setpoint: SetpointConfig
    """Setpoint: initial value, limits, operator limits, ramp."""
    mode: LoopMode = LoopMode.AUTO
    """Mode at start: ``auto``, ``manual`` or ``off``."""
    pid: PidConfig | None = None
    """PID parameters (kind pid)."""
    onoff: OnOffConfig | None = None
    """On/off parameters (kind onoff)."""
    dosing: DosingConfig | None = None
    """Dosing parameters (kind ph_dosing)."""
    rectifier: RectifierConfig | None = None
    """Rectifier parameters (kind rectifier; the setpoint is a current density in A/dm2)."""

    @model_validator(mode="after")
    def _params(self) -> LoopConfig:
        need = {LoopKind.PID: "pid", LoopKind.ONOFF: "onoff", LoopKind.PH_DOSING: "dosing",
                LoopKind.RECTIFIER: "rectifier"}[self.kind]
        if getattr(self, need) is None:
            raise ValueError(f"a {self.kind.value} loop needs a '{need}' section")
        return self
