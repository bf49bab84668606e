"""Tanks: process window, sensors (with redundancy), inputs, outputs, loops, interlocks, alarms."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scada.config.alarms import AlarmConfig
from scada.config.base import Ident, NonNegFloat, PositiveFloat, Range, StrictModel, TagName
from scada.config.control import LoopConfig
from scada.config.interlocks import InterlockConfig
from scada.config.simulation import SimulationConfig


class ProcessType(StrEnum):
    SOAK_CLEANER = "soak_cleaner"
    ELECTROCLEANER = "electrocleaner"
    ACID_PICKLE = "acid_pickle"
    ACID_ACTIVATION = "acid_activation"
    RINSE = "rinse"
    WATTS_NICKEL = "watts_nickel"
    BRIGHT_NICKEL = "bright_nickel"
    HARD_CHROME = "hard_chrome"
    DECORATIVE_CHROME = "decorative_chrome"
    TRIVALENT_CHROME = "trivalent_chrome"
    ACID_COPPER = "acid_copper"
    ACID_ZINC = "acid_zinc"
    ALKALINE_ZINC = "alkaline_zinc"
    ZINC_NICKEL = "zinc_nickel"
    ANODIZE = "anodize"
    ELECTROLESS_NICKEL = "electroless_nickel"
    OTHER = "other"


class Voting(StrEnum):
    ONE_OO_ONE = "1oo1"
    ONE_OO_TWO = "1oo2"
    TWO_OO_TWO = "2oo2"
    TWO_OO_THREE = "2oo3"

    @property
    def channels(self) -> int:
        return int(self.value[-1])


class FrozenCheck(StrictModel):
    window_s: PositiveFloat = 60.0
    """Time without change (beyond epsilon) after which a probe counts as frozen."""
    epsilon: NonNegFloat = 0.01
    """Smallest change that counts as movement."""


class SensorGroupConfig(StrictModel):
    """One measured quantity, from one or more redundant probes, voted into one validated value."""

    tags: Annotated[list[TagName], Field(min_length=1, max_length=3)]
    """The redundant probes (1-3 tags)."""
    voting: Voting = Voting.ONE_OO_ONE
    """Redundancy scheme: 1oo1, 1oo2, 2oo2, 2oo3 (median)."""
    safe_direction: Literal["high", "low", "none"] = "none"
    """For 1oo2: which probe wins when they disagree (``high`` for over-temperature protection)."""
    range: Range | None = None
    """Physical limits: a value outside is Bad (e.g. -10..110 degC, pH 0..14)."""
    rate_limit_per_s: PositiveFloat | None = None
    """A change faster than this is a spike: rejected, last good held as Uncertain."""
    frozen: FrozenCheck | None = None
    """Frozen/stuck probe detection (only while redundant partners move)."""
    discrepancy: PositiveFloat | None = None
    """Largest allowed difference between a probe and the voted value."""
    discrepancy_delay_s: NonNegFloat = 30.0
    """How long a discrepancy must last before the probe is flagged."""
    unit: str = ""
    """Engineering unit of the voted value."""

    @model_validator(mode="after")
    def _voting(self) -> SensorGroupConfig:
        if len(self.tags) != self.voting.channels:
            raise ValueError(f"voting {self.voting.value} needs {self.voting.channels} tag(s), got {len(self.tags)}")
        if len(set(self.tags)) != len(self.tags):
            raise ValueError("the same tag appears twice in one redundancy group")
        return self


class ProcessWindow(StrictModel):
    temperature_c: Range | None = None
    """Temperature window of the bath chemistry (degC)."""
    ph: Range | None = None
    """pH window."""
    current_density_a_dm2: Range | None = None
    """Cathode current density window (A/dm2)."""


# Role names the simulator and the engine understand; other names are allowed for custom signals.
KNOWN_INPUTS = {
    "level_low", "level_low_low", "level_high", "exhaust_fan_running", "rectifier_fault",
    "load_present", "heater_overtemp",
}
KNOWN_OUTPUTS = {
    "heater", "cooler", "acid_pump", "base_pump", "rectifier_enable", "rectifier_setpoint",
    "makeup_valve", "additive_pump", "exhaust_fan",
}


class AdditiveConfig(StrictModel):
    """An additive replenished by amp-hours through a dosing pump (scada/plating/amphours.py)."""

    name: Ident
    """Additive name (e.g. ``brightener``)."""
    ml_per_kah: PositiveFloat
    """Replenishment rate from the supplier TDS, mL per 1000 Ah."""
    dose_ml: PositiveFloat
    """Volume of one dose: a dose runs each time ``dose_ml / ml_per_kah`` kAh have passed."""
    pump_ml_min: PositiveFloat
    """Dosing-pump flow (mL/min): the pump runs ``volume / flow`` for a dose."""
    output: Ident = "additive_pump"
    """Output role of the tank that drives the pump."""
    max_single_ml: PositiveFloat | None = None
    """Largest single addition (e.g. 0.5 mL/L x bath volume); a backlog is dosed in several doses."""

    @model_validator(mode="after")
    def _dose(self) -> AdditiveConfig:
        if self.max_single_ml is not None and self.dose_ml > self.max_single_ml:
            raise ValueError(f"dose_ml ({self.dose_ml}) is larger than max_single_ml ({self.max_single_ml})")
        return self


class TankConfig(StrictModel):
    id: Ident
    """Unique tank id (lower_snake)."""
    name: str
    """Display name."""
    process: ProcessType
    """Process type (drives simulator defaults and default alarms)."""
    prefix: TagName | None = None
    """Tag-name prefix of the values the server derives for this tank (default ``line.<id>``)."""
    volume_l: PositiveFloat
    """Working volume in litres."""
    area: Ident = "line"
    """Alarm area (flood detection and the HMI group alarms by area)."""
    window: ProcessWindow = ProcessWindow()
    """Process window of the chemistry (from the supplier TDS)."""
    sensors: dict[Ident, SensorGroupConfig] = {}
    """Measured quantities by name (temperature, ph, current, voltage, amp_hours, conductivity, level)."""
    inputs: dict[Ident, TagName] = {}
    """Digital inputs by role (level_low, level_low_low, level_high, exhaust_fan_running, rectifier_fault, load_present, heater_overtemp)."""
    outputs: dict[Ident, TagName] = {}
    """Outputs by role (heater, cooler, acid_pump, base_pump, rectifier_enable, rectifier_setpoint, makeup_valve, additive_pump, exhaust_fan)."""
    loops: list[LoopConfig] = []
    """Control loops."""
    interlocks: list[InterlockConfig] = []
    """Interlocks (fail-safe trips)."""
    alarms: list[AlarmConfig] = []
    """Alarms in addition to the defaults derived from the window."""
    simulation: SimulationConfig | None = None
    """Physics parameters for the simulator (ignored by the server)."""
    in_service: bool = True
    """A tank out of service has its alarms suppressed by design."""
    additives: list[AdditiveConfig] = []
    """Additives replenished by amp-hours (dosing pump output role, mL/kAh)."""

    @model_validator(mode="after")
    def _additives(self) -> TankConfig:
        names = [a.name for a in self.additives]
        if len(set(names)) != len(names):
            raise ValueError("additives: the same additive name appears twice")
        for a in self.additives:
            if a.output not in self.outputs:
                raise ValueError(f"additive {a.name!r}: tank {self.id!r} has no output {a.output!r}")
        return self

    def tag_prefix(self, line_prefix: str) -> str:
        return self.prefix or f"{line_prefix}.{self.id}"

    def pv_tag(self, line_prefix: str, group: str) -> str:
        """Name of the validated (voted) value of a sensor group."""
        return f"{self.tag_prefix(line_prefix)}.{group}.pv"
