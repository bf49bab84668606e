"""The simulator over OPC UA, read by a plain asyncua client; one server for the module (init ~1 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import Client, ua
from pymodbus.client import AsyncModbusTcpClient

from scada.config import PlantConfig
from simulator.plant import PlantSimulator
from simulator.servers import SimulatorServers

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(line: PlantConfig) -> AsyncIterator[SimulatorServers]:
    sim = PlantSimulator(line, speed=200, seed=5, watchdog=False)
    async with SimulatorServers(sim, modbus_port=0, opcua_port=0, scan_s=0.02) as servers:
        yield servers


@pytest_asyncio.fixture(loop_scope="module")
async def client(served: SimulatorServers) -> AsyncIterator[tuple[Client, int]]:
    async with Client(served.opcua_endpoint or "", timeout=4) as c:
        ns = await c.get_namespace_index("urn:test:sim")
        yield c, ns


async def test_configured_node_id_in_config_namespace(client: tuple[Client, int], served: SimulatorServers) -> None:
    c, ns = client
    node = c.get_node(f"ns={ns};s=rinse.conductivity")
    v0 = await node.read_value()
    assert v0 == pytest.approx(10, abs=5)  # feed water
    served.sim.put_load("rinse", 20)  # drag-in
    await served.wait_sim_time(served.sim.sim_s + 5)
    v1 = await node.read_value()
    assert v1 > v0 + 40
    await served.wait_sim_time(served.sim.sim_s + 300)
    assert await node.read_value() < v1  # washed out by the rinse flow


async def test_folder_per_tank_with_tag_names_and_units(client: tuple[Client, int]) -> None:
    c, ns = client
    folder = await c.nodes.objects.get_child([f"{ns}:t", f"{ns}:ni"])
    names = {(await ch.read_browse_name()).Name for ch in await folder.get_children()}
    assert {"t.ni.temp.a", "t.ni.ph.b", "t.ni.heater", "t.ni.load"} <= names
    temp = c.get_node(f"ns={ns};s=t.ni.temp.a")
    assert await temp.read_value() == pytest.approx(20, abs=1)
    eu = await (await temp.get_child(f"{ns}:EngineeringUnits")).read_value()
    assert eu.DisplayName.Text == "degC"


async def test_same_state_as_modbus(client: tuple[Client, int], served: SimulatorServers) -> None:
    c, ns = client
    mb = AsyncModbusTcpClient("127.0.0.1", port=served.modbus_port or 0, timeout=1, retries=0)
    await mb.connect()
    try:
        await mb.write_coil(0, True)
        await served.wait_sim_time(served.sim.sim_s + 5)
        assert await c.get_node(f"ns={ns};s=t.ni.heater").read_value() is True
        ua_t = await c.get_node(f"ns={ns};s=t.ni.temp.b").read_value()
        raw = (await mb.read_input_registers(1, count=1)).registers[0]
        assert ua_t == pytest.approx(raw / 10, abs=0.3)
        await mb.write_coil(0, False)
    finally:
        mb.close()


async def test_open_circuit_reads_bad_sensor_failure(client: tuple[Client, int], served: SimulatorServers) -> None:
    c, ns = client
    fid = served.sim.inject({"kind": "open_circuit", "tag": "t.rinse.conductivity"})
    await served.wait_sim_time(served.sim.sim_s + 2)
    dv = await c.get_node(f"ns={ns};s=rinse.conductivity").read_data_value(raise_on_bad_status=False)
    assert dv.StatusCode.value == ua.StatusCodes.BadSensorFailure
    served.sim.clear_faults(fid)
    await served.wait_sim_time(served.sim.sim_s + 2)
    dv = await c.get_node(f"ns={ns};s=rinse.conductivity").read_data_value()
    assert dv.StatusCode.is_good()


async def test_mirror_of_an_output_is_read_only(client: tuple[Client, int]) -> None:
    c, ns = client
    with pytest.raises(ua.UaStatusCodeError):
        await c.get_node(f"ns={ns};s=t.ni.heater").write_value(True)


async def test_opcua_output_drives_the_plant(client: tuple[Client, int], served: SimulatorServers) -> None:
    c, ns = client
    level0 = served.sim.truth()["tanks"]["rinse"]["level_l"]
    await c.get_node(f"ns={ns};s=rinse.valve").write_value(ua.Variant(True, ua.VariantType.Boolean))
    await served.wait_sim_time(served.sim.sim_s + 60)
    rinse = served.sim.truth()["tanks"]["rinse"]
    assert rinse["outputs"]["makeup_valve"] is True and rinse["level_l"] > level0 + 5
    await c.get_node(f"ns={ns};s=rinse.valve").write_value(ua.Variant(False, ua.VariantType.Boolean))
