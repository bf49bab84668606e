"""The composition root over real sockets: simulator (Modbus + OPC UA) -> Runtime -> SQL, on both databases.

Checks what only the assembled system can show: values flow from the wire to the voted PVs and into the
database, commands reach the PLC, an e-stop trips and latches and is reset, a PLC communication loss
raises the driver-down alarm and drives outputs safe, and a restart restores alarm state from the journal.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hmi.ports import Actor, CommandKind, InterlockStatus, Role, RuntimeStatus
from scada.config import LoopMode, PlantConfig, load_config
from scada.events import EventKind
from scada.runtime import Runtime
from simulator import PlantSimulator, SimulatorServers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plating-line.yaml"
OPERATOR = Actor("olga", Role.OPERATOR, "127.0.0.1")
ENGINEER = Actor("erik", Role.ENGINEER, "127.0.0.1")
VIEWER = Actor("vic", Role.VIEWER, "127.0.0.1")


def plant_on(tmp_path: Path, modbus_port: int, opcua_port: int) -> PlantConfig:
    text = EXAMPLE.read_text().replace("port: 15020", f"port: {modbus_port}").replace(":14840/", f":{opcua_port}/")
    f = tmp_path / "plant.yaml"
    f.write_text(text)
    return load_config(f)


async def until(pred: Callable[[], Any], limit_s: float, what: str, info: Callable[[], Any] = lambda: "") -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit_s}s waiting for {what} {info()}")
        await asyncio.sleep(0.05)


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'scada.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    await _reset_pg(url)
    yield url
    await _reset_pg(url)  # the session database is shared: leave no journal (latched trips) behind


async def _reset_pg(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    eng = create_async_engine(url)
    async with eng.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await eng.dispose()


@pytest.mark.slow
async def test_runtime_end_to_end_in_process(tmp_path: Path, db_url: str) -> None:
    sim = PlantSimulator(load_config(EXAMPLE), speed=1.0, seed=3)
    async with SimulatorServers(sim, modbus_port=0, opcua_port=0, scan_s=0.05) as srv:
        plant = plant_on(tmp_path, srv.modbus_port, srv.opcua_port)
        rt = Runtime(plant, db_url=db_url, buffer_path=tmp_path / "buffer.sqlite", migrate=True)
        await rt.start()
        try:
            pv = "line1.nickel.temperature.pv"
            await until(lambda: rt.tags.get(pv).good, 15, "voted nickel temperature Good")
            await until(lambda: rt.tags.get("line1.rinse1.conductivity").good, 15, "OPC UA value Good")
            await until(lambda: rt.ready()[0], 10, "ready")
            # a start must not annunciate interlocks whose inputs were merely unread yet
            await asyncio.sleep(1.0)
            noise = [a.id for a in rt.active_alarms() if "waiting_for_initial_data" in a.message]
            assert noise == []
            truth = sim.truth()
            t_true = truth["tanks"]["nickel"]["temperature_c"]
            assert abs(float(rt.tags.get(pv).value) - t_true) < 1.0  # type: ignore[arg-type]

            st = await rt.status()
            assert isinstance(st, RuntimeStatus)
            states = {d["name"]: d["state"] for d in st.drivers}
            assert states["plc1"] == "ok" and states["ua1"] == "ok"
            assert states["mqtt"] == "connected" or "SCADA_REQUIRE_MQTT" not in os.environ, states
            assert st.scan["scans"] > 0 and st.historian["running"]

            # a setpoint within the operator range is applied; beyond it is refused with the limit
            r = await rt.set_setpoint("nickel", "temp", 57.0, OPERATOR)
            assert r.ok, r.reason
            assert rt.engine.core.loops[("nickel", "temp")].sp == 57.0
            r = await rt.set_setpoint("nickel", "temp", 64.0, OPERATOR)
            assert not r.ok and r.kind is CommandKind.LIMIT and "60" in r.reason
            r = await rt.set_setpoint("nickel", "temp", 64.0, ENGINEER)
            assert r.ok, r.reason
            r = await rt.set_loop_mode("nickel", "temp", LoopMode.MANUAL, VIEWER)
            assert not r.ok and r.kind is CommandKind.FORBIDDEN

            # e-stop: every heater off at the PLC, interlocks latched, alarm listed; reset after release
            sim.set_estop(True)
            await until(lambda: not any(sim.read_tag(f"line1.{t}.heater") for t in ("soak", "ecleaner", "nickel", "chrome")),
                        5, "heaters de-energised at the PLC")
            await until(lambda: next(i for i in rt.interlock_states() if (i.tank, i.interlock) == ("nickel", "estop"))
                        .status is InterlockStatus.TRIPPED, 5, "e-stop tripped")
            await until(lambda: any(a.id == "line.interlock.estop" and a.active for a in rt.active_alarms()), 5,
                        "e-stop alarm")
            sim.set_estop(False)
            await until(lambda: next(i for i in rt.interlock_states() if (i.tank, i.interlock) == ("nickel", "estop"))
                        .status is InterlockStatus.LATCHED, 5, "e-stop latched after release",
                        lambda: (rt.interlock_states(), rt.tags.get("line1.estop")))
            r = await rt.reset_interlock("nickel", "estop", OPERATOR)
            assert r.ok, r.reason
            r = await rt.ack_alarm("line.interlock.estop", OPERATOR, "e-stop test")
            assert r.ok, r.reason
            r = await rt.ack_alarm("line.interlock.estop", OPERATOR, "again")
            assert not r.ok and r.kind is CommandKind.CONFLICT
            assert (await rt.ack_alarm("no.such.alarm", OPERATOR, "")).kind is CommandKind.UNKNOWN

            # PLC communication loss: tags Bad, driver-down alarm, outputs safe at the PLC (its watchdog)
            fid = sim.inject({"kind": "comm_drop", "duration_s": 3600})
            await until(lambda: not rt.tags.get("line1.nickel.temp.a").good, 3, "PLC tags Bad")
            await until(lambda: any(a.id == "system.driver.plc1.down" for a in rt.active_alarms()), 6,
                        "driver-down alarm")
            await until(lambda: sim.truth()["watchdog"]["tripped"], 8, "PLC watchdog trip")
            sim.clear_faults(fid)
            await until(lambda: rt.tags.get("line1.nickel.temp.a").good, 8, "recovery after the PLC returns")

            # the history is in the database
            await asyncio.sleep(1.5)
            rows = await rt.history_raw([pv], time.time() - 120, time.time() + 1, 10_000)
            assert rows and all(p.tag == pv for p in rows)
        finally:
            await rt.stop()

        # restart on the same database: the acknowledged e-stop alarm and the driver alarm history survive
        rt2 = Runtime(plant, db_url=db_url, buffer_path=tmp_path / "buffer.sqlite")
        await rt2.start()
        try:
            events = await rt2.query_events(kinds=[EventKind.ALARM], limit=1000)
            assert any(e.source == "line.interlock.estop" for e in events)
            status = rt2.alarms.status("line.interlock.estop")
            assert status.state.value in ("acked", "normal", "rtn_unack")
        finally:
            await rt2.stop()
