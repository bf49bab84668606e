"""The whole plant: devices, tags, tanks and the line; plus every cross-reference check."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, PrivateAttr

from scada.config.base import Ident, PositiveFloat, StrictModel, TagName
from scada.config.devices import DeviceConfig
from scada.config.northbound import NorthboundConfig
from scada.config.tags import TagConfig
from scada.config.tanks import TankConfig


class ScanConfig(StrictModel):
    period_s: Annotated[float, Field(ge=0.02, le=5.0)] = 0.25
    """Scan period in seconds (0.1-1 s typical; the demo uses 0.25 s)."""
    output_refresh_s: PositiveFloat = 5.0
    """Every output is rewritten at least this often, even when unchanged."""
    stall_periods: Annotated[int, Field(ge=2, le=100)] = 4
    """A scan that is late by this many periods counts as stalled: outputs go safe."""


class LineConfig(StrictModel):
    name: str = "Plating line"
    """Display name of the line."""
    prefix: TagName = "line1"
    """Prefix of the tag names the server derives (voted values, loop state)."""
    estop: TagName | None = None
    """Digital input that is true while the emergency-stop chain is OPEN (tripped)."""
    heartbeat: TagName | None = None
    """Register the server increments every scan; the PLC de-energises outputs when it stops."""
    plc_watchdog_tripped: TagName | None = None
    """Digital input the PLC sets when its watchdog has de-energised the outputs."""
    watchdog_timeout_s: PositiveFloat = 3.0
    """Heartbeat silence after which the PLC program de-energises every output."""
    ambient_c: float = 20.0
    """Ambient temperature (simulator heat loss, default alarm context)."""
    tank_order: list[Ident] = []
    """Order of tanks on the line (default: their order in ``tanks``)."""


class PlantConfig(StrictModel):
    """The validated plant. Build it with :func:`scada.config.load_config`."""

    version: int = 1
    """Schema version of this file (1)."""
    line: LineConfig = LineConfig()
    """Line-wide signals and settings."""
    scan: ScanConfig = ScanConfig()
    """Scan engine timing."""
    devices: list[DeviceConfig] = []
    """PLC connections; `protocol` selects the kind."""
    tags: list[TagConfig] = []
    """Every signal read from or written to a device, plus server-side tags."""
    tanks: list[TankConfig] = []
    """The tanks of the line with their sensors, outputs, loops, interlocks and alarms."""
    northbound: NorthboundConfig = NorthboundConfig()
    """Publishers to plant systems above the SCADA (MQTT to an MES / IIoT platform); off by default."""

    _tag_idx: dict[str, TagConfig] | None = PrivateAttr(default=None)

    # Lookups (built lazily; the model is frozen so they cannot go stale).
    def tag(self, name: str) -> TagConfig:
        return self._tag_index()[name]

    def has_tag(self, name: str) -> bool:
        return name in self._tag_index()

    def device(self, name: str) -> DeviceConfig:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)

    def tank(self, tank_id: str) -> TankConfig:
        for t in self.tanks:
            if t.id == tank_id:
                return t
        raise KeyError(tank_id)

    def tags_of(self, device: str) -> list[TagConfig]:
        return [t for t in self.tags if t.device == device]

    def ordered_tanks(self) -> list[TankConfig]:
        if not self.line.tank_order:
            return list(self.tanks)
        by_id = {t.id: t for t in self.tanks}
        rest = [t for t in self.tanks if t.id not in self.line.tank_order]
        return [by_id[i] for i in self.line.tank_order if i in by_id] + rest

    def _tag_index(self) -> dict[str, TagConfig]:
        if self._tag_idx is None:
            self._tag_idx = {t.name: t for t in self.tags}
        return self._tag_idx
