"""The whole scan pipeline on the example plant with FakeDrivers and a fake clock (``scan_once``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from scada.commands import (
    BypassInterlock,
    CommandResult,
    ResetInterlock,
    SetManualOutput,
    SetMode,
    SetOutput,
    SetSetpoint,
    command_for_tag,
)
from scada.config import PlantConfig
from scada.config.control import LoopMode
from scada.engine import ScanCore, ScanEngine, ScanResult
from scada.events import EventKind
from scada.tags import Quality, QualityReason
from tests.engine.support import FakeClock
from tests.engine.world import World


class WallClock(FakeClock):
    """The real epoch clock, for runner tests on real time."""

    def __call__(self) -> float:
        return time.time()


HEATERS = ["line1.soak.heater", "line1.ecleaner.heater", "line1.nickel.heater", "line1.chrome.heater"]


@pytest.fixture
async def world(plant: PlantConfig) -> World:
    w = World(plant)
    await w.scan(3)
    return w


async def test_healthy_plant_runs_every_loop(world: World) -> None:
    r = await world.scan()
    assert not r.forced, r.forced
    assert r.groups["line1.nickel.temperature.pv"].pv.quality is Quality.GOOD
    assert world.store.get("line1.nickel.temperature.pv").value == pytest.approx(54.05)
    assert world.value("line1.nickel.heater") is True           # below SP: time-proportioned on
    assert world.value("line1.chrome.exhaust.command") is True  # undriven output at its initial value
    assert world.store.get("line1.nickel.temp.mode").value == 2
    assert world.store.get("line1.nickel.interlock.dry_fire").value is False
    assert r.loops["nickel.rectifier"].reason == "no load present"


async def test_heartbeat_every_scan_and_only_changes_written(world: World) -> None:
    hb = [w["line1.heartbeat"] for w in world.write_log]
    assert hb == [1, 2, 3]
    world.write_log.clear()
    await world.scan()
    assert set(world.write_log[0]) <= {"line1.heartbeat", *HEATERS}
    world.write_log.clear()
    await world.scan(n=1, dt=world.plant.scan.output_refresh_s)          # refresh: everything again
    outputs = {n for t in world.plant.tanks for n in t.outputs.values()}
    assert outputs <= set(world.write_log[0])


async def test_level_low_trips_heater_in_one_scan_and_reset_rules(world: World) -> None:
    world.set({"line1.nickel.level.low": True})
    r = await world.scan()
    assert world.value("line1.nickel.heater") is False
    v = r.interlocks["nickel.dry_fire"]
    assert v.forcing and v.first_out == "level_low"
    assert any(e.kind is EventKind.INTERLOCK and e.source == "nickel.dry_fire" and e.state == "tripped"
               for e in r.events)
    refused = world.engine.execute(ResetInterlock("nickel", "dry_fire", "olga", "operator"))
    assert not refused.ok and "cause persists" in refused.reason
    world.set({"line1.nickel.level.low": False})
    await world.scan()
    assert world.value("line1.nickel.heater") is False                   # latched
    assert world.engine.execute(ResetInterlock("nickel", "dry_fire", "olga", "operator")).ok
    await world.scan()
    assert world.value("line1.nickel.heater") is True


async def test_one_bad_temperature_probe_keeps_the_vote_good(world: World) -> None:
    world.drivers["plc1"].mark_bad("line1.nickel.temp.b", QualityReason.SENSOR_FAILURE, "open circuit")
    r = await world.scan()
    g = r.groups["line1.nickel.temperature.pv"]
    assert g.pv.quality is Quality.GOOD and g.degraded
    assert world.store.get("line1.nickel.temperature.degraded").value is True
    assert not r.interlocks["nickel.over_temp"].forcing
    assert world.value("line1.nickel.heater") is True


async def test_open_circuit_probe_by_ne43_current(world: World) -> None:
    world.set({"line1.nickel.temp.a": -10.0})         # 2.4 mA on a 4-20 mA input: wire break
    r = await world.scan()
    probe = r.groups["line1.nickel.temperature.pv"].probes[0]
    assert probe.quality is Quality.BAD and probe.reason == QualityReason.SENSOR_FAILURE and "NE 43" in probe.detail
    assert r.groups["line1.nickel.temperature.pv"].pv.good


async def test_two_bad_probes_trip_the_heater(world: World) -> None:
    for p in "ab":
        world.drivers["plc1"].mark_bad(f"line1.nickel.temp.{p}", QualityReason.SENSOR_FAILURE, "open circuit")
    r = await world.scan()
    assert r.groups["line1.nickel.temperature.pv"].pv.quality is Quality.UNCERTAIN
    v = r.interlocks["nickel.over_temp"]
    assert v.forcing and v.first_out == "temperature > 68" and "uncertain" in v.first_out_reason
    assert world.value("line1.nickel.heater") is False


async def test_estop_makes_everything_safe(world: World) -> None:
    world.set({"line1.chrome.load_present": True, "line1.nickel.load_present": True})
    await world.scan(8)
    assert world.value("line1.nickel.rect.enable") is True
    world.set({"line1.estop": True})
    r = await world.scan()
    for t in HEATERS + ["line1.nickel.acid_pump", "line1.nickel.rect.enable", "line1.chrome.rect.enable",
                        "line1.chrome.cooler"]:
        assert world.value(t) is False, t
    assert world.value("line1.nickel.rect.setpoint") == 0 and world.value("line1.chrome.rect.setpoint") == 0
    assert r.line_first_out is not None and r.line_first_out.condition == "line.estop"
    refused = world.engine.execute(BypassInterlock("nickel", "estop", 60, "erik", "engineer", "test"))
    assert not refused.ok and "not bypassable" in refused.reason


async def test_rectifier_ramps_to_cd_times_area(world: World) -> None:
    world.set({"line1.nickel.load_present": True})
    await world.scan(int(20 / 0.25) + 2)
    assert world.value("line1.nickel.rect.setpoint") == pytest.approx(4.0 * 50)
    assert world.value("line1.nickel.rect.enable") is True
    world.set({"line1.nickel.load_present": False})
    await world.scan()
    assert world.value("line1.nickel.rect.setpoint") == 0 and world.value("line1.nickel.rect.enable") is False


async def test_chrome_exhaust_off_stops_rectifier_and_heater(world: World) -> None:
    world.set({"line1.chrome.load_present": True})
    await world.scan(4)
    world.set({"line1.chrome.exhaust.running": False})
    r = await world.scan()
    assert r.interlocks["chrome.exhaust"].first_out == "not exhaust_fan_running"
    assert world.value("line1.chrome.rect.enable") is False and world.value("line1.chrome.heater") is False


async def test_plc_comm_loss_outputs_safe_and_event(world: World) -> None:
    world.drivers["plc1"].fail("connection refused")
    r = await world.scan()
    lost = [e for e in r.events if e.kind is EventKind.SYSTEM and e.source == "plc1"]
    assert lost and lost[0].state == "lost" and "connection refused" in lost[0].message
    assert all(r.outputs[t] is False for t in HEATERS)
    failed = [e for e in r.events if e.state == "write_failed"]
    assert failed and "not connected" in failed[0].message
    assert r.groups["line1.nickel.temperature.pv"].pv.reason == QualityReason.COMM_FAILURE
    world.drivers["plc1"].fail(None)
    r = await world.scan()
    assert any(e.state == "recovered" and e.source == "plc1" for e in r.events)
    assert world.value("line1.nickel.heater") is False           # latched trips wait for a reset
    for il in ("over_temp",):
        assert world.engine.execute(ResetInterlock("nickel", il, "olga", "operator")).ok


async def test_stale_driver_counts_as_comm_loss(world: World) -> None:
    world.polling = False
    r = None
    for _ in range(40):
        r = await world.scan()
        if any(e.source == "plc1" and e.state == "lost" for e in r.events):
            break
    assert r is not None and any(e.source == "plc1" and e.state == "lost" for e in r.events)
    assert "stale" in r.groups["line1.nickel.temperature.pv"].pv.detail
    assert all(r.outputs[t] is False for t in HEATERS)


async def test_loop_exception_trips_only_that_loop(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    lp = world.engine.core.loops[("nickel", "temp")]

    def boom(*a: object, **k: object) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(lp, "step", boom)
    r = await world.scan()
    assert r.outputs["line1.nickel.heater"] is False
    assert any(e.state == "faulted" and e.source == "nickel.temp" and "bug" in e.message for e in r.events)
    assert not r.loops["chrome.temp"].safe and not r.loops["nickel.ph"].safe   # the rest keeps running
    assert r.loops["nickel.temp"].safe and "loop fault" in r.loops["nickel.temp"].reason
    refused = world.engine.execute(SetMode("nickel", "temp", "manual", "olga", "operator"))
    assert not refused.ok and "fault" in refused.reason
    monkeypatch.undo()
    r = await world.scan()
    assert any(e.state == "recovered" and e.source == "nickel.temp" for e in r.events)


async def test_listeners_get_results_and_a_broken_one_does_not_stop_the_scan(world: World) -> None:
    got: list[ScanResult] = []
    world.engine.add_listener(lambda r: 1 / 0)
    unsubscribe = world.engine.add_listener(got.append)
    await world.scan(2)
    assert len(got) == 2 and got[1].seq == got[0].seq + 1
    assert world.engine.stats.listener_errors == 2
    unsubscribe()
    await world.scan()
    assert len(got) == 2


async def test_command_audit_event_rides_on_the_next_result(world: World) -> None:
    res = world.engine.execute(SetSetpoint("nickel", "temp", 57.0, "olga", "operator"))
    assert res.ok and res.event is not None and res.event.kind is EventKind.AUDIT
    r = await world.scan()
    assert any(e.kind is EventKind.AUDIT and e.user == "olga" for e in r.events)
    assert world.store.get("line1.nickel.temp.sp").value == 57.0


@pytest.mark.parametrize(
    ("cmd", "why", "kind"),
    [
        (SetSetpoint("nickel", "temp", 62.0, "olga", "operator"), "operator limits 50..60", "limit"),
        (SetSetpoint("nickel", "temp", 70.0, "erik", "engineer"), "engineering limits 40..65", "limit"),
        (SetSetpoint("nickel", "temp", float("nan"), "erik", "engineer"), "not a finite number", "invalid"),
        (SetSetpoint("nickel", "nope", 55.0, "olga", "operator"), "unknown loop", "unknown"),
        (SetSetpoint("zinc", "temp", 55.0, "olga", "operator"), "unknown tank", "unknown"),
        (SetSetpoint("nickel", "temp", 55.0, "vic", "viewer"), "may not send commands", "forbidden"),
        (SetMode("nickel", "temp", "turbo", "olga", "operator"), "unknown mode", "invalid"),
        (SetManualOutput("nickel", "temp", 50.0, "olga", "operator"), "switch it to manual first", "conflict"),
        (ResetInterlock("nickel", "dry_fire", "olga", "operator"), "not latched", "conflict"),
        (BypassInterlock("nickel", "over_temp", 60, "olga", "operator", "x"), "engineer", "forbidden"),
        (BypassInterlock("nickel", "dry_fire", 60, "erik", "engineer", "x"), "not bypassable", "conflict"),
        (SetOutput("nickel", "heater", True, "olga", "operator"), "driven by a loop", "conflict"),
        (SetOutput("nickel", "nope", True, "olga", "operator"), "no output", "unknown"),
    ],
)
async def test_command_refusals_change_nothing(world: World, cmd: object, why: str, kind: str) -> None:
    before = world.engine.core.loops[("nickel", "temp")].sp
    res = world.engine.execute(cmd)  # type: ignore[arg-type]
    assert not res.ok and why in res.reason, res.reason
    assert res.kind == kind
    assert res.event is not None and res.event.state == "refused"
    assert world.engine.core.loops[("nickel", "temp")].sp == before


async def test_engineer_limits_and_mode_on_tripped_loop(world: World) -> None:
    assert world.engine.execute(SetSetpoint("nickel", "temp", 62.0, "erik", "engineer")).ok
    world.set({"line1.nickel.level.low": True})
    await world.scan()
    for mode in ("manual", "auto"):
        world.engine.core.loops[("nickel", "temp")].mode = LoopMode.OFF
        r = world.engine.execute(SetMode("nickel", "temp", mode, "olga", "operator"))
        assert not r.ok and "tripped" in r.reason and "dry_fire" in r.reason
    assert world.engine.execute(SetMode("nickel", "temp", "off", "olga", "operator")).ok


async def test_manual_output_obeys_interlocks(world: World) -> None:
    assert world.engine.execute(SetMode("nickel", "ph", "manual", "olga", "operator")).ok
    assert world.engine.execute(SetManualOutput("nickel", "ph", True, "olga", "operator")).ok
    await world.scan()
    assert world.value("line1.nickel.acid_pump") is True
    world.set({"line1.nickel.level.low_low": True})
    await world.scan()
    assert world.value("line1.nickel.acid_pump") is False


async def test_undriven_output_command(world: World) -> None:
    assert world.engine.execute(SetOutput("nickel", "makeup_valve", True, "olga", "operator")).ok
    await world.scan()
    assert world.value("line1.nickel.makeup_valve") is True


def test_command_for_tag_mapping(plant: PlantConfig) -> None:
    c = command_for_tag(plant, "line1.nickel.temp.sp", 56.0, "olga", "operator")
    assert isinstance(c, SetSetpoint) and (c.tank, c.loop, c.value) == ("nickel", "temp", 56.0)
    assert isinstance(command_for_tag(plant, "line1.nickel.ph.mode", 1, "olga", "operator"), SetMode)
    assert isinstance(command_for_tag(plant, "line1.nickel.makeup_valve", True, "olga", "operator"), SetOutput)
    bad = command_for_tag(plant, "line1.nickel.nothing.sp", 1, "olga", "operator")
    assert isinstance(bad, CommandResult) and not bad.ok and "unknown tag" in bad.reason


def test_derived_names_are_declared(plant: PlantConfig) -> None:
    core = ScanCore(plant)
    assert "line1.nickel.temperature.pv" in core.derived
    assert "line1.nickel.interlock.estop.state" in core.derived
    assert len(core.derived) == len(set(core.derived))


async def test_runner_keeps_period_and_stops_safe(plant: PlantConfig) -> None:
    fast = plant.model_copy(update={"scan": plant.scan.model_copy(update={"period_s": 0.02})})
    w = World(fast, WallClock())
    w.engine = ScanEngine(fast, w.store, w.write)      # real clocks
    await w.engine.start()
    await asyncio.sleep(0.25)
    await w.engine.stop()
    s = w.engine.stats.summary()
    assert 8 <= s["scans"] <= 14, s
    assert s["lateness_p50_ms"] is not None and s["lateness_p50_ms"] < 20
    assert all(w.value(t) is False for t in HEATERS)           # stop() wrote the safe state


async def test_watchdog_writes_safe_outputs_when_a_scan_hangs(plant: PlantConfig) -> None:
    fast = plant.model_copy(update={"scan": plant.scan.model_copy(update={"period_s": 0.02})})
    w = World(fast, WallClock())
    hang = asyncio.Event()
    calls: list[dict[str, object]] = []

    async def writer(values: dict[str, object]) -> list:
        calls.append(values)
        if len(calls) == 3:
            await hang.wait()                   # the third scan's write never returns
        return await w.write(values)  # type: ignore[arg-type]

    w.engine = ScanEngine(fast, w.store, writer)
    await w.engine.start()
    await asyncio.sleep(0.3)
    hang.set()
    await asyncio.sleep(0.05)
    await w.engine.stop(safe=False)
    assert w.engine.stats.stalls >= 1
    assert any(all(v is False or v == 0 for v in c.values()) and "line1.nickel.heater" in c for c in calls[3:])


async def test_interlock_input_change_scans_at_once(plant: PlantConfig) -> None:
    slow = plant.model_copy(update={"scan": plant.scan.model_copy(update={"period_s": 1.0})})
    w = World(slow, WallClock())
    w.engine = ScanEngine(slow, w.store, w.write)
    for d in w.drivers.values():
        d.read()
    assert "line1.estop" in w.engine.fast_tags and "line1.nickel.level.low" in w.engine.fast_tags
    await w.engine.start()
    await asyncio.sleep(0.3)                    # mid-period
    w.set({"line1.estop": True})
    w.drivers["plc1"].read()
    await asyncio.sleep(0.1)
    try:
        assert w.engine.stats.fast_scans >= 1
        assert w.value("line1.nickel.heater") is False
        assert w.engine.stats.scans == 2       # the first periodic scan plus the fast one
    finally:
        await w.engine.stop()
