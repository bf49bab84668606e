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
    description: str = ""
    poll_period_s: PositiveFloat = 0.25
    timeout_s: PositiveFloat = 1.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    reconnect_delay_s: PositiveFloat = 0.2
    reconnect_max_s: PositiveFloat = 10.0
    enabled: bool = True


class _ModbusBase(_DeviceBase):
    unit_id: Annotated[int, Field(ge=0, le=247)] = 1
    word_order: WordOrder = WordOrder.BIG
    byte_order: ByteOrder = ByteOrder.BIG
    max_registers_per_request: Annotated[int, Field(ge=1, le=125)] = 125
    max_bits_per_request: Annotated[int, Field(ge=1, le=2000)] = 2000
    max_gap: Annotated[int, Field(ge=0, le=124)] = 16
    """Largest hole (in registers or bits) the read planner bridges to save a request."""


class ModbusTcpDevice(_ModbusBase):
    protocol: Literal["modbus_tcp"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    framer: Literal["socket", "rtu"] = "socket"
    """``rtu`` = RTU frames over TCP (a serial gateway): one request in flight per gateway."""
    gateway: str | None = None
    """Devices naming the same gateway share one connection and are polled in turn."""


class ModbusRtuDevice(_ModbusBase):
    protocol: Literal["modbus_rtu"]
    serial_port: str
    baudrate: Annotated[int, Field(ge=300, le=921600)] = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


class OpcUaDevice(_DeviceBase):
    protocol: Literal["opcua"]
    endpoint: str
    namespace: str | None = None
    """Namespace URI; node ids may then be written ``ns=<uri>;s=...`` or relative ``s=...``."""
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    username: str | None = None
    password_env: str | None = None
    """Name of the environment variable that holds the password (never the password itself)."""
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    subscription: bool = True
    """Use monitored items; polling is the fallback when the server refuses them."""
    sampling_interval_ms: Annotated[int, Field(ge=0)] = 100

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
