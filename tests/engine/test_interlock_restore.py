"""Latched interlocks survive a restart: rebuilt from the interlock journal (newest record first)."""

from __future__ import annotations

from scada.config import PlantConfig
from scada.events import Event, EventKind
from scada.interlocks import InterlockEngine, InterlockStatus


def _engine(plant: PlantConfig) -> InterlockEngine:
    return InterlockEngine((t.id, t.area, t.interlocks) for t in plant.tanks)


def ev(source: str, state: str, ts: float, **data: object) -> Event:
    return Event(ts=ts, kind=EventKind.INTERLOCK, source=source, state=state, message=f"{source} {state}", data=data)


def test_last_record_decides(plant: PlantConfig) -> None:
    eng = _engine(plant)
    journal = [  # newest first
        ev("nickel.over_temp", "latched", 30, first_out="temperature > 68"),
        ev("nickel.over_temp", "tripped", 20, first_out="temperature > 68"),
        ev("soak.over_temp", "reset", 25),
        ev("soak.over_temp", "latched", 10),
        ev("chrome.exhaust", "tripped", 5, first_out="not exhaust_fan_running"),
        ev("nickel.ph_dosing", "tripped", 5),  # latch: false in the example -> not restored
        ev("no.such", "latched", 1),
    ]
    assert sorted(eng.restore_latched(journal)) == ["chrome.exhaust", "nickel.over_temp"]
    v = eng.view("nickel.over_temp")
    assert v.status is InterlockStatus.LATCHED and v.forcing and v.first_out == "temperature > 68"
    assert eng.view("soak.over_temp").status is InterlockStatus.NORMAL
    assert eng.view("nickel.ph_dosing").status is InterlockStatus.NORMAL


def test_restored_latch_needs_a_reset(plant: PlantConfig) -> None:
    eng = _engine(plant)
    eng.restore_latched([ev("soak.over_temp", "latched", 10, first_out="temperature > 90")])
    r = eng.reset("soak", "over_temp", "olga", now=1.0, ts=100.0)
    assert r.ok
    assert eng.view("soak.over_temp").status is InterlockStatus.NORMAL
