"""The drivers against the simulator's example plant (the contract between simulator and drivers)."""

from __future__ import annotations

import pytest

from drivers import create_drivers
from drivers.modbus import ModbusDriver
from drivers.opcua import OpcUaDriver
from scada.config import PlantConfig
from scada.config.devices import ModbusTcpDevice, OpcUaDevice
from scada.tags import Quality
from tests.drivers.conftest import Collector

simulator = pytest.importorskip("simulator")


async def test_example_plant_reads_over_modbus_and_opcua(plant: PlantConfig) -> None:
    sim = simulator.PlantSimulator(plant, speed=20, seed=1)
    async with simulator.SimulatorServers(sim, modbus_port=0, opcua_port=0, control_port=None) as servers:
        devices = []
        for d in plant.devices:
            if isinstance(d, ModbusTcpDevice):
                devices.append(d.model_copy(update={"port": servers.modbus_port}))
            elif isinstance(d, OpcUaDevice):
                devices.append(d.model_copy(update={"endpoint": servers.opcua_endpoint}))
        sink = Collector()
        drivers = create_drivers(devices, plant.tags, sink)
        try:
            got = {}
            for drv in drivers:
                got.update(await drv.poll_once())
            device_tags = [t for t in plant.tags if t.device is not None]
            assert set(got) == {t.name for t in device_tags}
            bad = {n: (s.reason, s.detail) for n, s in got.items() if s.quality is Quality.BAD}
            assert not bad, bad
            truth = sim.truth()
            temp = got["line1.nickel.temp.a"].value
            assert isinstance(temp, float) and 10.0 < temp < 90.0, (temp, truth)
            ph_a, ph_b = got["line1.nickel.ph.a"].value, got["line1.nickel.ph.b"].value  # big vs little word order
            assert ph_a == pytest.approx(ph_b, abs=0.5) and 2.0 < ph_a < 7.0  # type: ignore[operator]
            mb = next(d for d in drivers if isinstance(d, ModbusDriver))
            assert len(mb.plan) < len([t for t in device_tags if t.modbus]) / 3  # block reads
            # a write goes through to the simulated PLC and reads back
            writable = next(t for t in plant.tags if t.name == "line1.heartbeat")
            (res,) = await mb.write({writable.name: 1234})
            assert res.ok, res
            assert (await mb.poll_once())["line1.heartbeat"].value == 1234
            assert any(isinstance(d, OpcUaDriver) for d in drivers) == any(
                isinstance(d, OpcUaDevice) for d in plant.devices
            )
        finally:
            for drv in drivers:
                await drv.stop()
