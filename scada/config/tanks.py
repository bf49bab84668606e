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
    epsilon: NonNegFloat = 0.01


class SensorGroupConfig(StrictModel):
    """One measured quantity, from one or more redundant probes, voted into one validated value."""

    tags: Annotated[list[TagName], Field(min_length=1, max_length=3)]
    voting: Voting = Voting.ONE_OO_ONE
    safe_direction: Literal["high", "low", "none"] = "none"
    """For 1oo2: which probe wins when they disagree (``high`` for over-temperature protection)."""
    range: Range | None = None
    """Physical limits: a value outside is Bad (e.g. -10..110 degC, pH 0..14)."""
    rate_limit_per_s: PositiveFloat | None = None
    """A change faster than this is a spike: rejected, last good held as Uncertain."""
    frozen: FrozenCheck | None = None
    discrepancy: PositiveFloat | None = None
    """Largest allowed difference between a probe and the voted value."""
    discrepancy_delay_s: NonNegFloat = 30.0
    unit: str = ""

    @model_validator(mode="after")
    def _voting(self) -> SensorGroupConfig:
        if len(self.tags) != self.voting.channels:
            raise ValueError(f"voting {self.voting.value} needs {self.voting.channels} tag(s), got {len(self.tags)}")
        if len(set(self.tags)) != len(self.tags):
            raise ValueError("the same tag appears twice in one redundancy group")
        return self


class ProcessWindow(StrictModel):
    temperature_c: Range | None = None
    ph: Range | None = None
    current_density_a_dm2: Range | None = None


# Role names the simulator and the engine understand; other names are allowed for custom signals.
KNOWN_INPUTS = {
    "level_low", "level_low_low", "level_high", "exhaust_fan_running", "rectifier_fault",
    "load_present", "heater_overtemp",
}
KNOWN_OUTPUTS = {
    "heater", "cooler", "acid_pump", "base_pump", "rectifier_enable", "rectifier_setpoint",
    "makeup_valve", "additive_pump", "exhaust_fan",
}


class TankConfig(StrictModel):
    id: Ident
    name: str
    process: ProcessType
    prefix: TagName | None = None
    """Tag-name prefix of the values the server derives for this tank (default ``line.<id>``)."""
    volume_l: PositiveFloat
    area: Ident = "line"
    """Alarm area (flood detection and the HMI group alarms by area)."""
    window: ProcessWindow = ProcessWindow()
    sensors: dict[Ident, SensorGroupConfig] = {}
    inputs: dict[Ident, TagName] = {}
    outputs: dict[Ident, TagName] = {}
    loops: list[LoopConfig] = []
    interlocks: list[InterlockConfig] = []
    alarms: list[AlarmConfig] = []
    simulation: SimulationConfig | None = None
    in_service: bool = True

    def tag_prefix(self, line_prefix: str) -> str:
        return self.prefix or f"{line_prefix}.{self.id}"

    def pv_tag(self, line_prefix: str, group: str) -> str:
        """Name of the validated (voted) value of a sensor group."""
        return f"{self.tag_prefix(line_prefix)}.{group}.pv"
