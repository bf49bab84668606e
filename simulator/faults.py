"""Fault and scenario definitions (validated data; the simulator and the Modbus front apply them).

A :class:`Fault` is one flat record so that it reads the same in Python, in JSON over the control
endpoint, on the ``scada sim-fault`` command line and in a scenario file::

    {"kind": "open_circuit", "tag": "line1.nickel.temp.a"}
    {"kind": "drift", "tag": "line1.nickel.ph.b", "rate_per_h": 0.5}
    {"kind": "comm_exception", "code": 6}
    {"kind": "heater_welded", "tank": "nickel", "duration_s": 600}

Durations and scenario times are on the simulation clock.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class FaultKind(StrEnum):
    # probe / wiring faults (``tag``: a sensor tag)
    STUCK = "stuck"
    DRIFT = "drift"
    SPIKE = "spike"
    NOISE = "noise"
    OPEN_CIRCUIT = "open_circuit"
    SHORT = "short"
    OFFSET = "offset"
    # PLC communication faults (``device``: a Modbus device, or all)
    COMM_DROP = "comm_drop"
    COMM_STALL = "comm_stall"
    COMM_SLOW = "comm_slow"
    COMM_EXCEPTION = "comm_exception"
    COMM_MALFORMED = "comm_malformed"
    # actuator faults (``tank``)
    HEATER_WELDED = "heater_welded"
    PUMP_DEAD = "pump_dead"
    RECTIFIER_TRIP = "rectifier_trip"
    FAN_FAIL = "fan_fail"

    @property
    def is_probe(self) -> bool:
        return self in _PROBE

    @property
    def is_comm(self) -> bool:
        return self.value.startswith("comm_")

    @property
    def is_actuator(self) -> bool:
        return not (self.is_probe or self.is_comm)


_PROBE = {FaultKind.STUCK, FaultKind.DRIFT, FaultKind.SPIKE, FaultKind.NOISE, FaultKind.OPEN_CIRCUIT,
          FaultKind.SHORT, FaultKind.OFFSET}


class FaultError(ValueError):
    """A fault or scenario that cannot be applied; the message names what was wrong."""


class Fault(BaseModel):
    """One injected fault. Unused fields are ignored by kinds that do not need them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    tag: str | None = None
    """Probe faults: the sensor tag (a probe of a tank's sensor group)."""
    tank: str | None = None
    """Actuator faults: the tank id."""
    device: str | None = None
    """Comm faults: the Modbus device name (all Modbus devices when unset)."""
    value: float | None = None
    """``stuck``: the value the probe freezes at (default: its reading when the fault starts)."""
    rate_per_h: float = 1.0
    """``drift``: engineering units per simulated hour."""
    amplitude: float = 1.0
    """``spike`` height, ``noise`` extra sigma, ``offset`` shift (engineering units)."""
    probability: Annotated[float, Field(ge=0, le=1)] | None = None
    """``spike``: share of samples that carry a spike (default 0.5); comm faults: share of requests
    hit (default 1: every request)."""
    delay_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    """``comm_slow``: added response delay in real seconds."""
    code: Annotated[int, Field(ge=1, le=255)] = 6
    """``comm_exception``: Modbus exception code (2 illegal data address, 6 server device busy)."""
    variant: Literal["byte_count", "length", "protocol_id", "garbage"] = "byte_count"
    """``comm_malformed``: how the response frame is broken."""
    pump: Literal["acid_pump", "base_pump", "additive_pump"] | None = None
    """``pump_dead``: which pump (all of the tank's pumps when unset)."""
    duration_s: Annotated[float, Field(gt=0)] | None = None
    """Clears itself after this many simulated seconds (stays until cleared when unset)."""
    id: str | None = None

    @model_validator(mode="after")
    def _target(self) -> Fault:
        if self.kind.is_probe and not self.tag:
            raise ValueError(f"fault {self.kind.value!r} needs 'tag' (the probe's tag name)")
        if self.kind.is_actuator and not self.tank:
            raise ValueError(f"fault {self.kind.value!r} needs 'tank' (the tank id)")
        return self


def parse_fault(data: Any) -> Fault:
    """Validate one fault from a dict (JSON/YAML/CLI); raises :class:`FaultError` naming the key."""
    if isinstance(data, Fault):
        return data
    try:
        return Fault.model_validate(data)
    except ValidationError as e:
        raise FaultError(_format(e)) from None


def _format(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "<fault>"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


class ScenarioEvent(BaseModel):
    """At simulated time ``at_s``: inject or clear a fault, move a load, press or release the e-stop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: Annotated[float, Field(ge=0)]
    do: Literal["inject", "clear", "load", "unload", "estop", "estop_release"]
    fault: Fault | None = None
    fault_id: str | None = None
    """``clear``: the fault to clear (every fault when unset)."""
    tank: str | None = None
    area_dm2: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _args(self) -> ScenarioEvent:
        if self.do == "inject" and self.fault is None:
            raise ValueError("'inject' needs 'fault'")
        if self.do in ("load", "unload") and not self.tank:
            raise ValueError(f"{self.do!r} needs 'tank'")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    events: list[ScenarioEvent] = []


def parse_scenario(data: Any, source: str = "") -> Scenario:
    """A scenario from parsed YAML/JSON: a mapping with ``events`` or a bare list of events."""
    if isinstance(data, list):
        data = {"events": data}
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise FaultError(f"{source + ': ' if source else ''}scenario refused: {_format(e)}") from None
    return sc.model_copy(update={"events": sorted(sc.events, key=lambda ev: ev.at_s)})


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file (``.json``, else YAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise FaultError(f"{p}: cannot read the scenario: {e.strerror or e}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise FaultError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: {e}") from None
    return parse_scenario(data, str(p))
