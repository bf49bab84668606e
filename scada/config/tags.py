"""Tag definitions: where a value lives on a device, how to decode and scale it, who may write it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scada.config.base import Ident, Range, StrictModel, TagName
from scada.config.devices import ByteOrder, WordOrder


class ModbusTable(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bits(self) -> bool:
        return self in (ModbusTable.COIL, ModbusTable.DISCRETE)

    @property
    def writable(self) -> bool:
        return self in (ModbusTable.HOLDING, ModbusTable.COIL)


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BOOL = "bool"  # a coil or discrete input
    BIT = "bit"  # one bit of a holding/input register

    @property
    def registers(self) -> int:
        """How many 16-bit registers one value occupies (bits: 1 register for BIT, 0 for BOOL)."""
        return {
            DataType.INT16: 1,
            DataType.UINT16: 1,
            DataType.INT32: 2,
            DataType.UINT32: 2,
            DataType.FLOAT32: 2,
            DataType.FLOAT64: 4,
            DataType.BOOL: 0,
            DataType.BIT: 1,
        }[self]

    @property
    def is_boolean(self) -> bool:
        return self in (DataType.BOOL, DataType.BIT)


class ModbusAddress(StrictModel):
    """A Modbus location. ``address`` is the 0-based PDU offset (register 40001 is holding 0)."""

    table: ModbusTable
    """Modbus table: `holding`, `input` (registers) or `coil`, `discrete` (bits)."""
    address: Annotated[int, Field(ge=0, le=65535)]
    """0-based PDU offset in the table (holding 0 = register 40001)."""
    type: DataType = DataType.UINT16
    """Data type; 32/64-bit types span 2/4 registers."""
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    """Bit number (0 = least significant) for type `bit`."""
    word_order: WordOrder | None = None
    """Overrides the device's word order for this tag."""
    byte_order: ByteOrder | None = None
    """Overrides the device's byte order for this tag."""

    @model_validator(mode="after")
    def _consistent(self) -> ModbusAddress:
        if self.table.is_bits and self.type is not DataType.BOOL:
            raise ValueError(f"a {self.table.value} holds single bits: type must be 'bool', not {self.type.value!r}")
        if not self.table.is_bits and self.type is DataType.BOOL:
            raise ValueError(f"type 'bool' is for coil/discrete tables; in a {self.table.value} register use 'bit'")
        if (self.type is DataType.BIT) != (self.bit is not None):
            raise ValueError("type 'bit' needs 'bit: 0..15', and 'bit' is only allowed with type 'bit'")
        if self.address + max(self.type.registers, 1) - 1 > 65535:
            raise ValueError("value runs past register 65535")
        return self

    @property
    def span(self) -> tuple[int, int]:
        """First and last register (or bit) the value occupies."""
        return self.address, self.address + max(self.type.registers, 1) - 1


class OpcUaAddress(StrictModel):
    """An OPC UA variable by node id, e.g. ``ns=2;s=Nickel.Temp.A`` or ``s=Nickel.Temp.A``."""

    node: str = Field(min_length=3)
    """Node id: ``ns=2;s=Tank1.Temp``, or ``s=...`` resolved against the device namespace URI."""
    type: Literal["double", "float", "int16", "int32", "uint16", "uint32", "boolean"] | None = None
    """Variant type used for writes (the server is strict: a Double into a Float node is refused)."""
    deadband: Annotated[float, Field(ge=0)] | None = None
    """Absolute deadband of the monitored item (server-side filter), in the node's units."""


class Scale(StrictModel):
    """Linear scaling raw -> engineering: ``eng = eng_min + (raw - raw_min) * span_eng / span_raw``."""

    raw_min: float
    """Raw value at the low end (e.g. 4000 counts = 4 mA)."""
    raw_max: float
    """Raw value at the high end."""
    eng_min: float
    """Engineering value at raw_min."""
    eng_max: float
    """Engineering value at raw_max."""

    @model_validator(mode="after")
    def _nonzero(self) -> Scale:
        if self.raw_min == self.raw_max:
            raise ValueError("raw_min equals raw_max: the scaling would divide by zero")
        if self.eng_min == self.eng_max:
            raise ValueError("eng_min equals eng_max: every raw value would map to one number")
        return self

    def to_eng(self, raw: float) -> float:
        return self.eng_min + (raw - self.raw_min) * (self.eng_max - self.eng_min) / (self.raw_max - self.raw_min)

    def to_raw(self, eng: float) -> float:
        return self.raw_min + (eng - self.eng_min) * (self.raw_max - self.raw_min) / (self.eng_max - self.eng_min)


class Access(StrEnum):
    READ = "read"
    READ_WRITE = "read_write"


class HistoryPolicy(StrictModel):
    """How the historian logs this tag (see docs/configuration.md)."""

    mode: Literal["on_change", "periodic", "swinging_door", "off"] = "on_change"
    """How samples are logged."""
    deadband: Annotated[float, Field(ge=0)] = 0.0
    """on_change: absolute change that is logged; swinging_door: the error bound."""
    deadband_percent: Annotated[float, Field(ge=0, le=100)] = 0.0
    """Deadband as percent of the scale span (used when larger than `deadband`)."""
    max_interval_s: Annotated[float, Field(gt=0)] = 60.0
    """A sample is logged at least this often, so a flat line is provably flat."""
    period_s: Annotated[float, Field(gt=0)] | None = None
    """periodic: logging period."""
    retention_days: Annotated[float, Field(gt=0)] | None = None
    """Samples older than this are deleted (global retention when unset)."""


class TagConfig(StrictModel):
    name: TagName
    """Dotted lower_snake name from line to signal, e.g. `line1.nickel.temp.a`."""
    device: Ident | None = None
    """``None`` for a tag computed by the server (voted values, counters, setpoints held in memory)."""
    modbus: ModbusAddress | None = None
    """Location on a Modbus device."""
    opcua: OpcUaAddress | None = None
    """Location on an OPC UA server."""
    scale: Scale | None = None
    """Linear raw -> engineering scaling."""
    signal: Literal["ma_4_20"] | None = None
    """``ma_4_20``: raw_min..raw_max is a 4-20 mA loop, so NAMUR NE 43 failure currents are detected."""
    unit: str = ""
    """Engineering unit shown with the value (degC, pH, A, V ...)."""
    access: Access = Access.READ
    """`read`, or `read_write` for outputs and setpoints."""
    limits: Range | None = None
    """Engineering limits: no write outside them, by anyone."""
    operator_limits: Range | None = None
    """Narrower range operators may write within; engineers use ``limits``."""
    safe_value: float | bool | None = None
    """Value written on a trip or loss of control (outputs): de-energise = 0 / false by default."""
    initial: float | bool | None = None
    """Starting value of a server-side (device-less) tag such as a setpoint."""
    description: str = ""
    """Free text shown in the HMI (always rendered as text)."""
    poll_period_s: Annotated[float, Field(gt=0)] | None = None
    """Overrides the device's poll period for this tag."""
    history: HistoryPolicy = HistoryPolicy()
    """Historian logging policy."""
    verify_write: bool = False
    """Read the value back after writing and report a mismatch."""

    @model_validator(mode="after")
    def _addressing(self) -> TagConfig:
        if self.device is None:
            if self.modbus or self.opcua:
                raise ValueError("a tag with an address needs 'device'")
        elif (self.modbus is None) == (self.opcua is None):
            raise ValueError("a device tag needs exactly one of 'modbus' or 'opcua'")
        if self.signal and not self.scale:
            raise ValueError("signal 'ma_4_20' needs 'scale' (raw_min/raw_max are the 4 and 20 mA counts)")
        if self.operator_limits and self.limits and not self.operator_limits.within(self.limits):
            raise ValueError("operator_limits must lie inside limits")
        if self.operator_limits and not self.limits:
            raise ValueError("operator_limits needs limits")
        if self.access is Access.READ_WRITE and self.modbus and not self.modbus.table.writable:
            raise ValueError(f"a {self.modbus.table.value} table is read-only on the device: access must be 'read'")
        if self.modbus and self.modbus.type.is_boolean and self.scale:
            raise ValueError("a boolean tag cannot be scaled")
        return self

    @property
    def is_boolean(self) -> bool:
        return bool(self.modbus and self.modbus.type.is_boolean) or (
            self.opcua is not None and self.opcua.type == "boolean"
        ) or isinstance(self.initial, bool)

    @property
    def writable(self) -> bool:
        return self.access is Access.READ_WRITE
