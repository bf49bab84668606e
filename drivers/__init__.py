"""PLC drivers: Modbus TCP/RTU and OPC UA behind one :class:`~drivers.base.Driver` interface.

Build drivers with :func:`create_drivers` (one per connection: Modbus devices that share a gateway
or a serial port are polled by one driver, one request in flight) or :func:`create_driver` for one
device. Only this package imports pymodbus and asyncua.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from drivers.base import Driver, DriverStatus, SampleSink, WriteResult
from scada.config.devices import ModbusRtuDevice, ModbusTcpDevice, OpcUaDevice
from scada.config.tags import TagConfig

__all__ = ["Driver", "DriverStatus", "SampleSink", "WriteResult", "create_driver", "create_drivers"]

AnyDevice = ModbusTcpDevice | ModbusRtuDevice | OpcUaDevice


def create_driver(
    device: AnyDevice,
    tags: Iterable[TagConfig],
    sink: SampleSink,
    clock: Callable[[], float] = time.time,
) -> Driver:
    """A driver for one device; ``tags`` may hold every tag of the plant (filtered by ``tag.device``)."""
    tags = [t for t in tags if t.device == device.name]
    if isinstance(device, OpcUaDevice):
        from drivers.opcua import OpcUaDriver  # noqa: PLC0415 - keep asyncua off the Modbus-only path

        return OpcUaDriver(device, tags, sink, clock)
    from drivers.modbus import ModbusDriver  # noqa: PLC0415

    return ModbusDriver(device, tags, sink, clock)


def create_drivers(
    devices: Iterable[AnyDevice],
    tags: Iterable[TagConfig],
    sink: SampleSink,
    clock: Callable[[], float] = time.time,
) -> list[Driver]:
    """One driver per connection for the whole plant (use this from the composition root)."""
    from drivers.modbus import create_modbus_drivers  # noqa: PLC0415

    devices, tags = list(devices), list(tags)
    modbus = [d for d in devices if not isinstance(d, OpcUaDevice)]
    out: list[Driver] = list(create_modbus_drivers(modbus, tags, sink, clock))
    out += [create_driver(d, tags, sink, clock) for d in devices if isinstance(d, OpcUaDevice)]
    return out
