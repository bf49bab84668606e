"""Closed loop: the scan engine against the plant simulator over real Modbus TCP, in accelerated time.

Lock-step, so the test is deterministic and fast: each step is one simulator PLC scan (physics advanced
``STEP_S`` simulated seconds, inputs pushed to the Modbus server), one driver poll over the socket, and
one engine scan (writes go back over the socket). The engine's clock is the simulation clock; the
simulator's own background scan is parked (``scan_s`` of an hour) so only the test advances the plant.

"Within one scan plus one round trip" is checked as: fault set in the simulator -> one step (the driver
reads it, the engine scans and writes) -> one simulator scan (the PLC takes the written outputs), then
the output is safe in the simulator's truth.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from drivers.modbus import ModbusDriver
from scada.commands import ResetInterlock, SetSetpoint
from scada.config import PlantConfig
from scada.engine import ScanEngine, ScanResult
from scada.events import EventKind
from scada.tags import Quality, TagStore
from simulator.plant import PlantSimulator
from simulator.servers import SimulatorServers

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = 100.0
STEP_S = 5.0
"""Simulated seconds per lock-step (engine scan period in simulated time)."""


class ClosedLoop:
    def __init__(self, plant: PlantConfig) -> None:
        self.sim = PlantSimulator(plant, speed=SPEED, seed=7, dt_s=0.5)
        self.servers = SimulatorServers(self.sim, modbus_port=0, opcua_port=None, control_port=None, scan_s=3600.0)
        self.plant = plant
        self.results: list[ScanResult] = []

    async def start(self) -> None:
        await self.servers.start()
        dev = self.plant.device("plc1").model_copy(update={"port": self.servers.modbus_port, "timeout_s": 0.3})
        devices = [dev] + [d for d in self.plant.devices if d.name != "plc1"]
        self.plant = self.plant.model_copy(update={"devices": devices})
        self.store = TagStore()
        self.store.declare(t.name for t in self.plant.tags)
        self.driver = ModbusDriver(dev, self.plant.tags, self.store.publish)
        self.engine = ScanEngine(self.plant, self.store, self.driver.write, clock=lambda: self.sim.sim_s)
        self.engine.add_listener(self.results.append)

    async def stop(self) -> None:
        await self.driver.stop()
        await self.servers.stop()

    async def step(self, n: int = 1) -> ScanResult:
        for _ in range(n):
            await self.servers.scan(STEP_S / SPEED)
            self.store.publish(await self.driver.poll_once())
            await self.engine.scan_once()
        return self.results[-1]

    async def plc_scan(self) -> None:
        """One more PLC scan so the simulator takes what the engine wrote."""
        await self.servers.scan(STEP_S / SPEED)

    def truth(self, tank: str) -> dict:
        return self.sim.truth()["tanks"][tank]

    def pv(self, tank: str, group: str) -> float:
        s = self.store.get(f"line1.{tank}.{group}.pv")
        assert s.quality is Quality.GOOD, s
        return float(s.value)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def loop(plant: PlantConfig) -> AsyncIterator[ClosedLoop]:
    cl = ClosedLoop(plant)
    await cl.start()
    try:
        await cl.step(3)
        yield cl
    finally:
        await cl.stop()


async def test_temperature_ph_and_rectifier_settle(loop: ClosedLoop) -> None:
    ok = loop.engine.execute
    assert ok(SetSetpoint("nickel", "temp", 56.0, "olga", "operator")).ok
    assert ok(SetSetpoint("nickel", "ph", 4.15, "olga", "operator")).ok
    loop.sim.put_load("nickel", 50.0)
    temps: list[float] = []
    currents: list[float] = []
    minutes = 45
    for _ in range(int(minutes * 60 / STEP_S)):
        await loop.step()
        temps.append(loop.pv("nickel", "temperature"))
        currents.append(loop.pv("nickel", "current"))
    assert temps[0] < 55.0                       # started more than 1 degC below the new setpoint
    last_10_min = temps[-int(600 / STEP_S):]
    assert all(abs(t - 56.0) <= 1.0 for t in last_10_min), (min(last_10_min), max(last_10_min))
    ph = loop.truth("nickel")["ph"]
    assert abs(ph - 4.15) <= 0.1, ph
    assert any(e.kind is EventKind.DOSE and e.state == "pulse" for r in loop.results for e in r.events)
    target = 4.0 * 50.0
    mean_i = statistics.fmean(currents[-12:])
    assert abs(mean_i - target) <= 0.02 * target, mean_i
    assert loop.truth("nickel")["outputs"]["rectifier_enable"] is True


async def safe_after_one_round_trip(loop: ClosedLoop) -> ScanResult:
    r = await loop.step()
    await loop.plc_scan()
    return r


async def test_two_open_probes_turn_the_heater_off(loop: ClosedLoop) -> None:
    ids = [loop.sim.inject({"kind": "open_circuit", "tag": f"line1.nickel.temp.{p}"}) for p in "ab"]
    r = await safe_after_one_round_trip(loop)
    assert loop.truth("nickel")["outputs"]["heater"] is False
    trip = [e for e in r.events if e.source == "nickel.over_temp" and e.state == "tripped"]
    assert trip and "temperature" in trip[0].message
    for i in ids:
        loop.sim.clear_faults(i)
    await loop.step(2)
    assert loop.engine.execute(ResetInterlock("nickel", "over_temp", "olga", "operator")).ok


async def test_one_open_probe_is_voted_out(loop: ClosedLoop) -> None:
    fid = loop.sim.inject({"kind": "open_circuit", "tag": "line1.nickel.temp.c"})
    r = await loop.step()
    g = r.groups["line1.nickel.temperature.pv"]
    assert g.pv.good and g.degraded and g.probes[2].quality is Quality.BAD
    assert not r.interlocks["nickel.over_temp"].forcing
    loop.sim.clear_faults(fid)
    await loop.step()


async def test_stuck_probe_is_flagged_frozen(loop: ClosedLoop) -> None:
    fid = loop.sim.inject({"kind": "stuck", "tag": "line1.nickel.temp.b"})
    r = await loop.step(int(150 / STEP_S))
    g = r.groups["line1.nickel.temperature.pv"]
    assert "frozen" in g.probes[1].flags and g.pv.good and g.degraded
    loop.sim.clear_faults(fid)
    await loop.step(2)


async def test_ph_disagreement_stops_dosing(loop: ClosedLoop) -> None:
    fid = loop.sim.inject({"kind": "offset", "tag": "line1.nickel.ph.b", "amplitude": 0.6})
    r = await loop.step(int(35 / STEP_S) + 1)
    await loop.plc_scan()
    assert r.interlocks["nickel.ph_dosing"].forcing
    assert "disagree" in (r.interlocks["nickel.ph_dosing"].first_out or "")
    assert loop.truth("nickel")["outputs"]["acid_pump"] is False
    loop.sim.clear_faults(fid)
    await loop.step(2)


async def test_low_level_turns_the_heater_off(loop: ClosedLoop) -> None:
    tank = loop.sim.tanks["nickel"]
    saved = tank.s.level_l
    tank.s.level_l = 0.7 * tank.p.volume_l
    await loop.servers.scan(0.0)                  # the PLC reads the switch
    r = await safe_after_one_round_trip(loop)
    assert r.interlocks["nickel.dry_fire"].first_out == "level_low"
    assert loop.truth("nickel")["outputs"]["heater"] is False
    tank.s.level_l = saved
    await loop.step(2)
    assert loop.engine.execute(ResetInterlock("nickel", "dry_fire", "olga", "operator")).ok


async def test_exhaust_off_stops_the_chrome_rectifier(loop: ClosedLoop) -> None:
    loop.sim.put_load("chrome", 20.0)
    await loop.step(int(40 / STEP_S))
    # At start-up the fan was still spinning up: the latched exhaust trip waits for an operator reset.
    forcing = [k for k, v in loop.results[-1].interlocks.items() if k.startswith("chrome.") and v.forcing]
    assert forcing == ["chrome.exhaust"], forcing
    assert loop.engine.execute(ResetInterlock("chrome", "exhaust", "olga", "operator")).ok
    await loop.step(int(40 / STEP_S))
    assert loop.truth("chrome")["outputs"]["rectifier_enable"] is True
    fid = loop.sim.inject({"kind": "fan_fail", "tank": "chrome"})
    await loop.servers.scan(0.0)
    r = await safe_after_one_round_trip(loop)
    assert r.interlocks["chrome.exhaust"].first_out == "not exhaust_fan_running"
    out = loop.truth("chrome")["outputs"]
    assert out["rectifier_enable"] is False and out["rectifier_setpoint"] == 0 and out["heater"] is False
    loop.sim.clear_faults(fid)
    await loop.step(int(30 / STEP_S))
    assert loop.engine.execute(ResetInterlock("chrome", "exhaust", "olga", "operator")).ok


async def test_estop_makes_every_output_safe(loop: ClosedLoop) -> None:
    loop.sim.set_estop(True)
    await loop.servers.scan(0.0)
    r = await safe_after_one_round_trip(loop)
    assert r.line_first_out is not None and r.line_first_out.condition == "line.estop"
    for tank in ("nickel", "chrome", "soak", "ecleaner"):
        outs = loop.truth(tank)["outputs"]
        for role in ("heater", "acid_pump", "rectifier_enable", "cooler"):
            if role in outs:
                assert outs[role] is False, (tank, role)
    loop.sim.set_estop(False)
    await loop.step(2)
    for tank in ("nickel", "chrome", "soak", "ecleaner"):
        assert loop.engine.execute(ResetInterlock(tank, "estop", "olga", "operator")).ok


async def test_plc_comm_loss_reports_and_plc_watchdog_trips(loop: ClosedLoop) -> None:
    fid = loop.sim.inject({"kind": "comm_drop"})
    r = await loop.step()
    assert any(e.kind is EventKind.SYSTEM and e.source == "plc1" and e.state == "lost" for e in r.events)
    assert all(v is False or v == 0 for k, v in r.outputs.items() if k.startswith("line1.nickel."))
    # The heartbeat no longer reaches the PLC: its watchdog de-energises the outputs by itself.
    for _ in range(int(loop.plant.line.watchdog_timeout_s * SPEED / STEP_S) + 2):
        await loop.step()
    assert loop.sim.watchdog_tripped
    assert loop.truth("nickel")["outputs"]["heater"] is False
    loop.sim.clear_faults(fid)
    r = await loop.step(3)
    assert "plc1" not in loop.engine.core.device_lost
