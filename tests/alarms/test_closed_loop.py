"""Closed loop: simulator (Modbus TCP) -> driver -> tag store -> scan engine -> alarm engine -> journal.

A welded heater contactor drives the bath temperature up through H and HH; the operator acknowledges;
the fault ends, the bath cools, HH and H clear only below their deadbands; the journal in the historian
(SQLite) holds every step. The alarm clock is the simulation clock so on-delays mean process seconds.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from alarms.engine import AlarmEngine
from alarms.journal import JournalWriter, query_journal
from alarms.model import AlarmState, Trigger
from drivers import create_drivers
from historian import Historian, upgrade
from scada.config import PlantConfig, parse_config
from scada.engine import ScanEngine
from scada.tags import TagStore
from simulator.plant import PlantSimulator
from simulator.servers import SimulatorServers

pytestmark = pytest.mark.slow
SPEED = 400.0


def bath_plant(port: int) -> PlantConfig:
    data: dict[str, Any] = {
        "line": {"name": "Closed-loop test", "prefix": "cl", "ambient_c": 20.0},
        "scan": {"period_s": 0.05},
        "devices": [{"name": "plc", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": port,
                     "poll_period_s": 0.05, "timeout_s": 0.5, "retries": 0}],
        "tags": [
            {"name": "cl.bath.temp.a", "device": "plc",
             "modbus": {"table": "input", "address": 0, "type": "int16"},
             "scale": {"raw_min": 0, "raw_max": 1000, "eng_min": 0, "eng_max": 100}, "unit": "degC"},
            {"name": "cl.bath.heater", "device": "plc", "modbus": {"table": "coil", "address": 0, "type": "bool"},
             "access": "read_write", "safe_value": False},
        ],
        "tanks": [{
            "id": "bath", "name": "Test bath", "process": "watts_nickel", "volume_l": 100,
            "sensors": {"temperature": {"tags": ["cl.bath.temp.a"], "range": {"min": -10, "max": 110},
                                        "unit": "degC"}},
            "outputs": {"heater": "cl.bath.heater"},
            "interlocks": [{"id": "over_temp", "trip_when": ["temperature > 75"], "acts_on": ["heater"]}],
            "alarms": [{"id": "temp", "kind": "limit", "source": "temperature", "hh": 62, "h": 60,
                        "deadband": 0.5, "on_delay_s": 5, "priority": "high"}],
            "simulation": {"thermal": {"heater_kw": 6, "ua_w_k": 60, "initial_c": 58},
                           "probe_noise": {"temperature": {"noise": 0.05}}},
        }],
    }
    return parse_config(data)


async def test_temperature_excursion_raises_h_then_hh_clears_with_deadband_and_is_journaled(tmp_path: Path) -> None:
    sim = PlantSimulator(bath_plant(1), speed=SPEED, seed=7, watchdog=False)
    base = time.time()

    def sim_clock() -> float:
        return base + sim.sim_s

    async with SimulatorServers(sim, modbus_port=0, scan_s=0.02) as servers:
        plant = bath_plant(servers.modbus_port or 0)
        store = TagStore()
        drivers = create_drivers(plant.devices, plant.tags, store.publish)
        for d in drivers:
            await d.start()

        async def writer(values: dict) -> list:
            return await drivers[0].write(values)

        scan = ScanEngine(plant, store, writer)
        url = f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}"
        await upgrade(url)
        hist = Historian(url, tmp_path / "buffer.db", flush_interval_s=0.05, clock=sim_clock)
        await hist.start()
        alarms = AlarmEngine(plant, sim_clock)
        journal = JournalWriter(alarms, hist, flush_s=0.05)
        jtask = asyncio.create_task(journal.run())
        pv = plant.tank("bath").pv_tag("cl", "temperature")
        peak = 0.0
        try:
            async def scan_until(cond, limit_s: float) -> None:  # noqa: ANN001
                nonlocal peak
                deadline = time.monotonic() + limit_s
                while not cond():
                    assert time.monotonic() < deadline, f"timed out; pv={store.get(pv)}"
                    await scan.scan_once()
                    snap = store.snapshot()
                    alarms.evaluate(sim_clock(), snap, {})
                    if snap[pv].usable:
                        peak = max(peak, float(snap[pv].value))  # type: ignore[arg-type]
                    await asyncio.sleep(0.02)

            await scan_until(lambda: store.get(pv).good, 10)
            assert alarms.active() == []
            sim.inject({"kind": "heater_welded", "tank": "bath", "duration_s": 900})
            await scan_until(lambda: alarms.status("bath.temp.hh").active, 20)
            assert alarms.status("bath.temp.h").state is AlarmState.UNACK
            assert alarms.ack_all("op", "heater contactor welded, maintenance called").ok
            await scan_until(lambda: alarms.status("bath.temp.h").state is AlarmState.NORMAL, 30)
            journal.stop()
            await jtask
            rows = await query_journal(hist, tank="bath", newest_first=False)
        finally:
            journal.stop()
            if not jtask.done():
                await jtask
            for d in drivers:
                await d.stop()
            await hist.stop()

    steps = [(r.alarm_id, r.trigger, r.state) for r in rows]
    assert steps == [
        ("bath.temp.h", Trigger.ACTIVATE, AlarmState.UNACK),
        ("bath.temp.hh", Trigger.ACTIVATE, AlarmState.UNACK),
        ("bath.temp.hh", Trigger.ACK, AlarmState.ACKED),  # ack_all: in definition order
        ("bath.temp.h", Trigger.ACK, AlarmState.ACKED),
        ("bath.temp.hh", Trigger.CLEAR, AlarmState.NORMAL),
        ("bath.temp.h", Trigger.CLEAR, AlarmState.NORMAL),
    ], steps
    by = {(r.alarm_id, r.trigger): r for r in rows}
    assert by[("bath.temp.h", Trigger.ACTIVATE)].value > 60.0
    assert by[("bath.temp.hh", Trigger.ACTIVATE)].value > 62.0
    assert by[("bath.temp.hh", Trigger.CLEAR)].value <= 61.5  # at or below HH - deadband
    assert by[("bath.temp.h", Trigger.CLEAR)].value <= 59.5   # at or below H - deadband
    assert by[("bath.temp.h", Trigger.ACK)].user == "op"
    assert peak > 62.0
