"""PLC connections: Modbus TCP, Modbus RTU (serial or over a TCP gateway), OPC UA."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from scada.config.base import Ident, PositiveFloat, StrictModel


class WordOrder(StrEnum):
    """Order of 16-bit registers in a 32/64-bit value: ``big`` = high word first (ABCD)."""

    BIG = "big"
    LITTLE = "little"


class ByteOrder(StrEnum):
    """Order of the two bytes inside each register: ``big`` is the Modbus standard."""

    BIG = "big"
    LITTLE = "little"


class _DeviceBase(StrictModel):
    name: Ident
    """Unique device name, referenced by `tags[].device`."""
    description: str = ""
    """Free text shown in the HMI."""
    poll_period_s: PositiveFloat = 0.25
    """Default poll period of the device's tags."""
    timeout_s: PositiveFloat = 1.0
    """Time to wait for one response before the request counts as timed out."""
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    """Retries of a timed-out request before the device's tags go Bad."""
    reconnect_delay_s: PositiveFloat = 0.2
    """First reconnect delay; doubles after each failure."""
    reconnect_max_s: PositiveFloat = 10.0
    """Cap of the reconnect back-off."""
    enabled: bool = True
    """A disabled device is not polled; its tags stay Bad (out of service)."""


class _ModbusBase(_DeviceBase):
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    """Modbus unit (slave) id."""
    word_order: WordOrder = WordOrder.BIG
    """Default register order of 32/64-bit values (`big` = ABCD, `little` = CDAB)."""
    byte_order: ByteOrder = ByteOrder.BIG
    """Default byte order inside a register (`little` gives BADC/DCBA)."""
    max_registers_per_request: Annotated[int, Field(ge=1, le=125)] = 125
    """Largest register block per read request."""
    max_bits_per_request: Annotated[int, Field(ge=1, le=2000)] = 2000
    """Largest coil/discrete block per read request."""
    max_gap: Annotated[int, Field(ge=0, le=124)] = 16
    """Largest hole (in registers or bits) the read planner bridges to save a request."""


class ModbusTcpDevice(_ModbusBase):
    protocol: Literal["modbus_tcp"]
    """Modbus TCP (or RTU frames over TCP with `framer: rtu`)."""
    host: str
    """PLC or gateway address."""
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    """TCP port."""
    framer: Literal["socket", "rtu"] = "socket"
    """``rtu`` = RTU frames over TCP (a serial gateway): one request in flight per gateway."""
    gateway: str | None = None
    """Devices naming the same gateway share one connection and are polled in turn."""


class ModbusRtuDevice(_ModbusBase):
    protocol: Literal["modbus_rtu"]
    """Modbus RTU on a serial line."""
    serial_port: str
    """Serial device, e.g. /dev/ttyUSB0. Devices on the same port share the bus and are polled in turn."""
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 19200
    """Serial speed."""
    parity: Literal["N", "E", "O"] = "E"
    """Parity: none, even, odd."""
    stopbits: Literal[1, 2] = 1
    """Stop bits."""
    bytesize: Literal[7, 8] = 8
    """Data bits."""


class OpcUaDevice(_DeviceBase):
    protocol: Literal["opcua"]
    """OPC UA client connection."""
    endpoint: str
    """Server endpoint URL, e.g. opc.tcp://plc:4840/."""
    namespace: str | None = None
    """Namespace URI; node ids may then be written ``ns=<uri>;s=...`` or relative ``s=...``."""
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    """Security policy."""
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    """Message security mode (must be None with policy None)."""
    username: str | None = None
    """User name for username login (anonymous when unset)."""
    password_env: str | None = None
    """Name of the environment variable that holds the password (never the password itself)."""
    certificate: str | None = None
    """Client certificate file (DER or PEM) for Basic256Sha256."""
    private_key: str | None = None
    """Client private key file."""
    server_certificate: str | None = None
    """Expected server certificate (pinning), optional."""
    subscription: bool = True
    """Use monitored items; polling is the fallback when the server refuses them."""
    sampling_interval_ms: Annotated[int, Field(ge=0)] = 100
    """Sampling interval asked of the server for monitored items."""

    @model_validator(mode="after")
    def _security(self) -> OpcUaDevice:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be 'None' or both be set")
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError("security_policy Basic256Sha256 needs certificate and private_key")
        if self.username and not self.password_env:
            raise ValueError("username needs password_env (the environment variable holding the password)")
        return self


DeviceConfig = Annotated[
    ModbusTcpDevice | ModbusRtuDevice | OpcUaDevice,
    Field(discriminator="protocol"),
]
