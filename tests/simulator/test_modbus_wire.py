"""The simulator over real Modbus TCP, read by a PLAIN pymodbus client (decoding written out here,
not taken from simulator.codec, so an encoding bug cannot hide on both sides)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from scada.config import PlantConfig
from simulator.plant import PlantSimulator
from simulator.servers import SimulatorServers

SPEED = 500.0
DT = AsyncModbusTcpClient.DATATYPE


class Rig:
    def __init__(self, sim: PlantSimulator, servers: SimulatorServers, client: AsyncModbusTcpClient) -> None:
        self.sim, self.servers, self.c = sim, servers, client

    async def temp_a(self) -> float:  # uint16 4-20 mA, 4000..20000 counts = 0..100 degC
        rr = await self.c.read_input_registers(0, count=1)
        return (rr.registers[0] - 4000) * 100 / 16000

    async def temp_b(self) -> float:  # int16 x10
        rr = await self.c.read_input_registers(1, count=1)
        return float(self.c.convert_from_registers(rr.registers, DT.INT16)) / 10

    async def ph(self) -> tuple[float, float]:
        rr = await self.c.read_input_registers(2, count=4)
        a = self.c.convert_from_registers(rr.registers[0:2], DT.FLOAT32, word_order="big")
        b = self.c.convert_from_registers(rr.registers[2:4], DT.FLOAT32, word_order="little")
        return float(a), float(b)

    async def rect(self) -> tuple[float, float, float]:
        rr = await self.c.read_input_registers(6, count=4)
        current = float(rr.registers[0])
        voltage = rr.registers[1] / 100
        swapped = [((r & 0xFF) << 8) | (r >> 8) for r in rr.registers[2:4]]  # byte_order little
        ah = self.c.convert_from_registers(swapped, DT.UINT32, word_order="big") / 100
        return current, voltage, float(ah)

    async def inputs(self) -> list[bool]:
        rr = await self.c.read_discrete_inputs(0, count=16)
        return list(rr.bits[:16])

    async def until(self, sim_s: float) -> None:
        await self.servers.wait_sim_time(self.sim.sim_s + sim_s)


@pytest_asyncio.fixture
async def rig(line: PlantConfig) -> AsyncIterator[Rig]:
    sim = PlantSimulator(line, speed=SPEED, seed=4, watchdog=False)
    async with SimulatorServers(sim, modbus_port=0, scan_s=0.02) as servers:
        client = AsyncModbusTcpClient("127.0.0.1", port=servers.modbus_port or 0, timeout=1, retries=0,
                                      reconnect_delay=0)
        assert await client.connect()
        try:
            yield Rig(sim, servers, client)
        finally:
            client.close()


async def test_heat_up_rate_within_10_percent_of_p_over_mc(rig: Rig) -> None:
    await rig.c.write_coil(0, True)
    await rig.until(5)
    t0, s0 = await rig.temp_a(), rig.sim.sim_s
    await rig.until(600)
    t1, s1 = await rig.temp_a(), rig.sim.sim_s
    rate = (t1 - t0) / (s1 - s0)
    expected = 3000 / (100 * 1.2 * 3700)  # P / (m c), K/s
    assert rate == pytest.approx(expected, rel=0.10)
    assert abs(await rig.temp_b() - t1) < 1.0


async def test_heater_off_decays_toward_ambient(rig: Rig) -> None:
    rig.sim.tanks["ni"].s.temp_c = 60.0
    await rig.until(2)
    t0 = await rig.temp_a()
    await rig.until(1200)
    t1 = await rig.temp_a()
    assert 20 < t1 < t0 - 1.0
    ua, c = 104 * 0.1 ** (2 / 3), 100 * 1.2 * 3700
    assert (t0 - t1) / 1200 == pytest.approx(ua * (t0 - 20) / c, rel=0.25)


async def test_acid_dosing_lowers_ph_on_both_word_orders(rig: Rig) -> None:
    a0, b0 = await rig.ph()
    assert a0 == pytest.approx(4.2, abs=0.1) and b0 == pytest.approx(4.2, abs=0.1)
    await rig.c.write_coil(1, True)
    await rig.until(120)
    await rig.c.write_coil(1, False)
    await rig.until(150)
    a1, b1 = await rig.ph()
    assert a1 < a0 - 0.2 and b1 < b0 - 0.2


async def test_rectifier_current_only_with_load_and_follows_ramp(rig: Rig) -> None:
    await rig.c.write_register(10, 50)
    await rig.c.write_coil(2, True)
    await rig.until(20)
    current, voltage, _ = await rig.rect()
    assert current == 0 and voltage == pytest.approx(12.0, abs=0.2)  # open circuit: compliance
    assert (await rig.inputs())[11] is False
    rig.sim.put_load("ni", 10)
    start = rig.sim.sim_s
    samples: list[tuple[float, float]] = []
    while rig.sim.sim_s - start < 30:
        i, _, _ = await rig.rect()
        samples.append((rig.sim.sim_s - start, i))
        await asyncio.sleep(0.005)
    for t, i in samples:  # never above the ramp line (10 s to 50 A) by more than a scan
        assert i <= 50 * (t + 2.0) / 10 + 1.5
    current, voltage, ah = await rig.rect()
    assert current == pytest.approx(50, abs=1)
    assert voltage == pytest.approx(2.0 + 50 * 0.05, abs=0.1)
    assert ah > 0.1 and (await rig.inputs())[11] is True


async def test_read_only_register_write_gets_exception_2(rig: Rig) -> None:
    rr = await rig.c.write_register(5, 1)  # t.status: a holding register with access read
    assert rr.isError() and rr.exception_code == 2
    rr = await rig.c.write_register(500, 1)  # past the PLC's memory
    assert rr.isError() and rr.exception_code == 2
    rr = await rig.c.read_input_registers(10, count=5)  # past the last input register
    assert rr.isError() and rr.exception_code == 2
    ok = await rig.c.write_register(10, 7)
    assert not ok.isError()


# ---------------------------------------------------------------- probe faults on the wire


async def test_open_circuit_and_short_show_ne43_currents(rig: Rig) -> None:
    rig.sim.inject({"kind": "open_circuit", "tag": "t.ni.temp.a"})
    await rig.until(2)
    assert (await rig.c.read_input_registers(0, count=1)).registers[0] == 3500  # 3.5 mA
    rig.sim.clear_faults()
    rig.sim.inject({"kind": "short", "tag": "t.ni.temp.a"})
    await rig.until(2)
    assert (await rig.c.read_input_registers(0, count=1)).registers[0] == 21500  # 21.5 mA
    rig.sim.clear_faults()
    await rig.until(2)
    assert 4000 < (await rig.c.read_input_registers(0, count=1)).registers[0] < 20000


async def test_offset_makes_two_probes_disagree(rig: Rig) -> None:
    rig.sim.inject({"kind": "offset", "tag": "t.ni.ph.b", "amplitude": 0.6})
    await rig.until(2)
    a, b = await rig.ph()
    assert b - a == pytest.approx(0.6, abs=0.1)


async def test_drift_grows_with_time(rig: Rig) -> None:
    rig.sim.inject({"kind": "drift", "tag": "t.ni.temp.b", "rate_per_h": 12.0})
    await rig.until(900)
    assert await rig.temp_b() - await rig.temp_a() == pytest.approx(3.0, abs=0.6)


async def test_stuck_probe_frozen_on_the_wire(rig: Rig) -> None:
    await rig.until(1)
    rig.sim.inject({"kind": "stuck", "tag": "t.ni.temp.a", "value": 33.3})
    await rig.until(2)
    values = set()
    for _ in range(5):
        values.add((await rig.c.read_input_registers(0, count=1)).registers[0])
        await rig.until(5)
    assert values == {round(4000 + 33.3 * 160)}


async def test_spikes_and_noise_visible(rig: Rig) -> None:
    rig.sim.inject({"kind": "spike", "tag": "t.ni.temp.b", "amplitude": 10, "probability": 0.5})
    seen = []
    for _ in range(20):
        seen.append(await rig.temp_b() - await rig.temp_a())
        await asyncio.sleep(0.025)
    assert max(abs(x) for x in seen) > 8


# ---------------------------------------------------------------- actuator faults


async def test_welded_heater_heats_with_coil_off(rig: Rig) -> None:
    rig.sim.inject({"kind": "heater_welded", "tank": "ni"})
    t0 = await rig.temp_a()
    await rig.until(600)
    assert (await rig.c.read_coils(0, count=1)).bits[0] is False
    assert await rig.temp_a() > t0 + 2.5


async def test_dead_pump_doses_nothing(rig: Rig) -> None:
    rig.sim.inject({"kind": "pump_dead", "tank": "ni", "pump": "acid_pump"})
    a0, _ = await rig.ph()
    await rig.c.write_coil(1, True)
    await rig.until(200)
    a1, _ = await rig.ph()
    assert abs(a1 - a0) < 0.05


async def test_rectifier_trip_and_fan_fail_on_the_inputs(rig: Rig) -> None:
    await rig.c.write_coil(3, True)  # exhaust fan command
    await rig.until(5)
    assert (await rig.inputs())[13] is True
    rig.sim.inject({"kind": "fan_fail", "tank": "ni"})
    rig.sim.inject({"kind": "rectifier_trip", "tank": "ni"})
    await rig.until(2)
    bits = await rig.inputs()
    assert bits[13] is False and bits[12] is True


async def test_estop_input(rig: Rig) -> None:
    rig.sim.set_estop(True)
    await rig.until(1)
    assert (await rig.inputs())[0] is True


# ---------------------------------------------------------------- comm faults


async def test_exception_responses_illegal_address_and_busy(rig: Rig) -> None:
    for code in (2, 6):
        fid = rig.sim.inject({"kind": "comm_exception", "code": code})
        rr = await rig.c.read_input_registers(0, count=1)
        assert rr.isError() and rr.exception_code == code
        rig.sim.clear_faults(fid)
    assert not (await rig.c.read_input_registers(0, count=1)).isError()


async def test_slow_responses(rig: Rig) -> None:
    rig.sim.inject({"kind": "comm_slow", "delay_s": 0.3})
    t = time.perf_counter()
    rr = await rig.c.read_input_registers(0, count=1)
    assert not rr.isError() and time.perf_counter() - t >= 0.3


async def test_stall_accepts_and_never_answers(rig: Rig) -> None:
    rig.sim.inject({"kind": "comm_stall"})
    with pytest.raises(ModbusException):
        await rig.c.read_input_registers(0, count=1)


async def test_malformed_frame_is_rejected_by_the_client(rig: Rig) -> None:
    rig.sim.inject({"kind": "comm_malformed", "variant": "garbage"})
    try:
        rr = await rig.c.read_input_registers(0, count=2)
    except ModbusException:
        return
    assert rr.isError()


async def test_connection_drop(rig: Rig) -> None:
    rig.sim.inject({"kind": "comm_drop"})
    with pytest.raises(ModbusException):
        await rig.c.read_input_registers(0, count=1)
    rig.sim.clear_faults()
    fresh = AsyncModbusTcpClient("127.0.0.1", port=rig.servers.modbus_port or 0, timeout=1, retries=0)
    assert await fresh.connect()
    assert not (await fresh.read_input_registers(0, count=1)).isError()
    fresh.close()


# ---------------------------------------------------------------- the PLC watchdog


async def test_watchdog_deenergises_outputs_and_clears_on_heartbeat(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=50, seed=1)
    async with SimulatorServers(sim, modbus_port=0, scan_s=0.02) as servers:
        c = AsyncModbusTcpClient("127.0.0.1", port=servers.modbus_port or 0, timeout=1, retries=0)
        await c.connect()
        try:
            for hb in range(1, 6):
                await c.write_register(0, hb)
                await c.write_coil(0, True)
                await c.write_register(10, 40)
                await asyncio.sleep(0.1)
            assert (await c.read_coils(0, count=1)).bits[0] is True
            assert (await c.read_discrete_inputs(1, count=1)).bits[0] is False
            await asyncio.sleep(1.3)  # heartbeat frozen for > 1.0 s (real time)
            assert (await c.read_coils(0, count=4)).bits[:4] == [False] * 4
            assert (await c.read_holding_registers(10, count=1)).registers == [0]
            assert (await c.read_discrete_inputs(1, count=1)).bits[0] is True
            assert sim.truth()["tanks"]["ni"]["outputs"]["heater"] is False
            await c.write_register(0, 99)
            await asyncio.sleep(0.1)
            assert (await c.read_discrete_inputs(1, count=1)).bits[0] is False
            assert (await c.read_coils(0, count=1)).bits[0] is False  # stays off until rewritten
            await c.write_coil(0, True)
            await asyncio.sleep(0.1)
            assert sim.truth()["tanks"]["ni"]["outputs"]["heater"] is True
        finally:
            c.close()
