"""The real Runtime's plating port against the simulator over real sockets (in process, SQLite).

A recipe and a load go in through :class:`scada.runtime_plating.PlatingAdapter` (what the HMI calls);
the simulated hoist lowers the rack into the nickel tank (the PLC's load_present edge), the rectifier
plates it at real time for a few seconds, the rack comes out; the record read back through the adapter
from the historian has amp-hours matching the simulator's own integral and the dwell's temperature stats.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hmi.ports import Actor, CommandKind, LoadFilter, NewLoad, Role
from scada.config import PlantConfig, load_config
from scada.events import EventKind
from scada.runtime import Runtime
from scada.runtime_plating import PlatingAdapter
from simulator import PlantSimulator, SimulatorServers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plating-line.yaml"
ENGINEER = Actor("erik", Role.ENGINEER, "10.0.0.7")
OPERATOR = Actor("olga", Role.OPERATOR, "10.0.0.8")
PLATE_S = 8.0


def plant_on(tmp_path: Path, modbus_port: int, opcua_port: int) -> PlantConfig:
    text = EXAMPLE.read_text().replace("port: 15020", f"port: {modbus_port}").replace(":14840/", f":{opcua_port}/")
    f = tmp_path / "plant.yaml"
    f.write_text(text)
    return load_config(f)


async def until(pred: Callable[[], Any], within_s: float, what: str) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        v = pred()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_load_record_through_the_runtime_adapter(tmp_path: Path) -> None:
    sim = PlantSimulator(load_config(EXAMPLE), speed=1.0, seed=5)
    async with SimulatorServers(sim, modbus_port=0, opcua_port=0, scan_s=0.05) as srv:
        plant = plant_on(tmp_path, srv.modbus_port, srv.opcua_port)
        rt = Runtime(plant, db_url=f"sqlite+aiosqlite:///{tmp_path / 'scada.db'}",
                     buffer_path=tmp_path / "buffer.sqlite", migrate=True)
        await rt.start()
        try:
            port = rt.plating_port
            assert isinstance(port, PlatingAdapter)
            await until(lambda: rt.tags.get("line1.nickel.temperature.pv").good, 15, "nickel temperature Good")
            await until(lambda: rt.tags.get("line1.nickel.load_present").good, 5, "load_present read")

            body = {"part_number": "PN-RT", "steps": [{"tank": "nickel", "dwell_min_s": 2, "dwell_max_s": 600,
                                                       "current_density_a_dm2": 4.0}]}
            bad = await port.save_recipe("rt", {**body, "steps": [{**body["steps"][0], "tank": "nope"}]}, ENGINEER, "")
            assert not bad.ok and bad.kind is CommandKind.INVALID and bad.issues[0].path == "steps[0].tank"
            saved = await port.save_recipe("rt", body, ENGINEER, "first")
            assert saved.ok and saved.audited and saved.data is not None and saved.data["version"] == 1
            made = await port.create_load(NewLoad("PN-RT", 5, 20.0, "SO-RT", id="RT-1"), OPERATOR)
            assert made.ok, made.reason
            dup = await port.create_load(NewLoad("PN-RT", 5, 20.0, "SO-RT", id="RT-1"), OPERATOR)
            assert not dup.ok and dup.kind is CommandKind.CONFLICT

            sim.put_load("nickel", 20.0)  # the hoist lowers the rack: the PLC's load_present rises
            await until(lambda: any(ld["id"] == "RT-1" and ld["tank"] == "nickel" for ld in port.loads_on_line()),
                        5, "the load tracked into the nickel tank")
            (on,) = port.loads_on_line()
            assert on["visits"][0]["entry_source"] == "plc" and on["current_density_a_dm2"] == 4.0
            occupied = await port.enter("RT-1", "nickel", OPERATOR)
            assert not occupied.ok and occupied.kind is CommandKind.CONFLICT
            await until(lambda: (rt.tags.get("line1.nickel.current.pv").value or 0) > 5, 10, "current flowing")
            await asyncio.sleep(PLATE_S)
            i_exit = sim.truth()["tanks"]["nickel"]["current_a"]
            truth = sim.remove_load("nickel")  # the rack comes out: load_present falls
            assert truth is not None and truth["amp_hours"] > 0.01
            await until(lambda: port.service.tracker.loads["RT-1"].status.value == "done", 5, "the load done")
            await asyncio.sleep(1.5)  # the historian's flush interval

            rec = await port.record("RT-1")
            assert rec is not None
            d = rec.to_dict()
            (step,) = d["steps"]
            assert step["tank"] == "nickel" and step["exit_source"] == "plc"
            # the server sees each edge up to one Modbus poll late (0.25 s; two allowed) at the current then
            # flowing, and integrates integer amps: 2 % plus that much charge
            tol = 0.02 * truth["amp_hours"] + i_exit * 2 * 0.25 / 3600
            assert d["amp_hours"] == pytest.approx(truth["amp_hours"], abs=tol), (d["amp_hours"], truth, i_exit)
            assert step["temperature"]["count"] > 0 and step["temperature"]["min"] is not None
            assert abs(step["temperature"]["avg"] - sim.truth()["tanks"]["nickel"]["temperature_c"]) < 1.5
            assert 50 <= step["temperature"]["min"] <= step["temperature"]["max"] <= 60
            assert d["thickness_um"]["Ni"] == pytest.approx(truth["thickness_um"], rel=tol / truth["amp_hours"] + 0.02)
            assert "<svg class='trend'" in rec.to_html() and "RT-1,PN-RT" in rec.to_csv()
            assert (await port.find_loads(LoadFilter(part_number="PN-RT")))[0]["id"] == "RT-1"

            # the recipe save is audited once, with the requester's address, in the events table
            await asyncio.sleep(0.5)
            audits = await rt.query_events(kinds=[EventKind.AUDIT], limit=100)
            saves = [e for e in audits if e.data.get("action") == "recipe_save"]
            assert len(saves) == 1 and saves[0].data["address"] == "10.0.0.7" and saves[0].user == "erik"
        finally:
            await rt.stop()
