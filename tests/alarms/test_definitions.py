"""Alarm definitions from the example plant: configured alarms, window defaults, interlocks, system alarms."""

from __future__ import annotations

import pytest

from alarms.definitions import (
    DefinitionError,
    DefKind,
    Level,
    build_definitions,
    by_id,
    default_window_alarms,
    driver_down_id,
)
from scada.config import PlantConfig, Priority
from tests.alarms.support import make_plant


@pytest.fixture(scope="module")
def defs(plant: PlantConfig) -> dict:
    return by_id(build_definitions(plant))


def test_configured_limit_alarm_becomes_one_alarm_per_limit(defs: dict) -> None:
    hh, h = defs["nickel.temp_limits.hh"], defs["nickel.temp_limits.h"]
    assert (hh.level, hh.limit, h.limit, hh.deadband, hh.on_delay_s) == (Level.HH, 62, 60, 0.5, 5)
    assert hh.tag == "line1.nickel.temperature.pv" and hh.area == "line" and hh.priority is Priority.HIGH
    assert "high-high" in hh.message and "62" in hh.message
    assert defs["rinse1.conductivity_h.h"].message == "Rinse contaminated (> 200 uS/cm)"
    assert "rinse1.conductivity_h.l" not in defs


def test_deviation_discrete_and_setpoint_keys(defs: dict) -> None:
    dev = defs["nickel.temp_deviation"]
    assert dev.kind is DefKind.DEVIATION and dev.setpoint_keys[0] == "line1.nickel.temp.sp"
    ex = defs["chrome.exhaust_off"]
    assert ex.kind is DefKind.DISCRETE and ex.alarm_state is False and ex.tag == "line1.chrome.exhaust.running"


@pytest.mark.parametrize(("alarm", "limit"), [
    ("soak.temperature_limits.h", 80.0), ("soak.temperature_limits.l", 60.0),
    ("soak.temperature_limits.hh", 84.0), ("soak.temperature_limits.ll", 56.0),
    ("pickle.temperature_limits.hh", 39.0), ("pickle.temperature_limits.ll", 11.0),
])
def test_window_defaults(defs: dict, alarm: str, limit: float) -> None:
    d = defs[alarm]
    assert d.limit == limit and d.origin == "default"
    assert d.priority is (Priority.HIGH if d.level in (Level.HH, Level.LL) else Priority.MEDIUM)


def test_no_default_where_the_tank_defines_its_own(defs: dict) -> None:
    assert not any(k.startswith("nickel.temperature_limits") or k.startswith("nickel.ph_limits.") and
                   defs[k].origin == "default" for k in defs)
    assert not any(k.startswith("chrome.temperature_limits") for k in defs)


def test_ph_window_default_and_hh_below_the_interlock() -> None:
    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"] = []

    plant = make_plant(edit)
    cfgs = {c.id: c for c in default_window_alarms(plant.tanks[0])}
    ph = cfgs["ph_limits"]
    assert (ph.ll, ph.l, ph.h, ph.hh, ph.deadband) == (3.6, 3.8, 4.6, 4.8, 0.05)
    t = cfgs["temperature_limits"]
    assert (t.ll, t.l, t.h, t.hh) == (48.0, 50.0, 60.0, 62.0)  # 62 < 68 trip: kept
    u = {c.id: c for c in default_window_alarms(plant.tanks[1])}["temperature_limits"]
    assert u.hh == 81.0  # 84 would be above the 82 degC over-temperature trip


def test_quality_alarm_per_sensor_group(defs: dict) -> None:
    q = [k for k in defs if k.endswith(".quality")]
    assert "nickel.temperature.quality" in q and "rinse2.conductivity.quality" in q
    assert defs["nickel.temperature.quality"].priority is Priority.HIGH  # feeds a loop and interlocks
    assert defs["nickel.voltage.quality"].priority is Priority.MEDIUM
    assert defs["nickel.temperature.quality"].on_delay_s == 5.0


def test_interlock_and_system_alarms(defs: dict, plant: PlantConfig) -> None:
    assert defs["nickel.interlock.over_temp"].priority is Priority.CRITICAL
    assert "line.interlock.estop" in defs and "nickel.interlock.estop" not in defs
    for dev in plant.devices:
        assert driver_down_id(dev.name) in defs
    assert {"system.scan_overrun", "system.historian_buffering"} <= set(defs)


def test_unknown_suppression_reference_is_refused() -> None:
    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"][2]["suppress_when"] = ["not_a_signal"]

    with pytest.raises(DefinitionError, match="not_a_signal"):
        build_definitions(make_plant(edit))


def test_discrepancy_and_dosing_defaults(defs: dict) -> None:
    d = defs["nickel.temperature.discrepancy"]
    assert d.tag == "line1.nickel.temperature.discrepancy" and d.priority is Priority.LOW
    assert "nickel.ph.discrepancy" in defs and "soak.temperature.discrepancy" not in defs
    dose = defs["nickel.ph.ineffective"]
    assert dose.tag == "line1.nickel.ph.ineffective" and dose.kind is DefKind.DISCRETE
