"""A load through the simulated line (accelerated, no sockets): simulator -> scan core -> plating layer.

The simulator's own rectifier current integral and Faraday thickness are the truth; the plating
layer only sees what a driver would read (decoded registers: integer amps) and what the engine votes.
"""

from __future__ import annotations

from typing import Any

import pytest

from scada.commands import ResetInterlock, SetLoadArea, SetOutput, SetSetpoint
from scada.config import PlantConfig
from scada.engine import ScanCore
from scada.events import Event, EventKind
from scada.plating import LoadRequest, PlatingLine, RecipeBook, build_record
from scada.tags import Sample
from simulator.plant import PlantSimulator

T0 = 1_800_000_000.0
SCAN_S = 0.5


class Line:
    """The closed loop on a fake clock."""

    def __init__(self, plant: PlantConfig, book: RecipeBook) -> None:
        self.plant = plant
        self.sim = PlantSimulator(plant, speed=1.0, watchdog=False, dt_s=0.1, seed=3)
        self.core = ScanCore(plant)
        self.plating = PlatingLine(plant, book=book)
        self.ts = T0
        self.events: list[Event] = []
        self.history: dict[str, list[Sample]] = {}
        self.inputs = [t.name for t in plant.tags if t.device is not None]
        self.temp_offset: dict[str, float] = {}
        self.pump_on: dict[str, bool] = {}

    def scan(self) -> None:
        ts = self.ts
        snap: dict[str, Sample] = {}
        for name in self.inputs:
            v = self.sim.read_tag(name)
            for prefix, off in self.temp_offset.items():
                if name.startswith(prefix) and isinstance(v, float):
                    v += off
            snap[name] = Sample.good_value(v, ts)
        core = self.core.compute(snap, ts, ts)
        values = {**snap, **core.published}
        res = self.plating.scan(values, ts)
        self.events += list(core.events) + res.events
        for ch in self.plating.rectifier_changes():
            self.core.execute(SetLoadArea(ch.tank, ch.loop, ch.area_dm2, "plating", "engineer"), ts, ts)
            if ch.current_density_a_dm2 is not None:
                r = self.core.execute(SetSetpoint(ch.tank, ch.loop, ch.current_density_a_dm2, "plating", "engineer"),
                                      ts, ts)
                assert r.ok, r.reason
        for tag, on in res.outputs.items():
            if self.pump_on.get(tag) != on:
                self.pump_on[tag] = on
                self.core.execute(SetOutput("nickel", "additive_pump", on, "plating", "engineer"), ts, ts)
        for name, value in core.outputs.items():
            self.sim.write_tag(name, value)
        for tag in ("line1.nickel.temperature.pv", "line1.nickel.ph.pv", "line1.nickel.current.pv",
                    "line1.chrome.temperature.pv", "line1.chrome.current.pv"):
            if tag in values and int(round((ts - T0) / SCAN_S)) % 2 == 0:
                self.history.setdefault(tag, []).append(values[tag])
        self.sim.advance(SCAN_S)
        self.ts += SCAN_S

    def run(self, seconds: float) -> None:
        for _ in range(int(round(seconds / SCAN_S))):
            self.scan()


def _recipe(plant: PlantConfig) -> RecipeBook:
    book = RecipeBook()
    body: dict[str, Any] = {"part_number": "SIM-1", "steps": [
        {"tank": "nickel", "dwell_min_s": 280, "dwell_max_s": 330, "current_density_a_dm2": 4.0,
         "temperature_c": {"min": 50, "max": 60}},
        {"tank": "chrome", "dwell_min_s": 280, "dwell_max_s": 330, "current_density_a_dm2": 31.0,
         "temperature_c": {"min": 52, "max": 60}},
    ]}
    res = book.propose("sim-1", body, plant, user="eng", ts=T0)
    assert res.ok and res.recipe is not None, res.reason
    book.add(res.recipe)
    return book


def _through_the_line(plant: PlantConfig, excursion: bool) -> tuple[Line, dict[str, dict[str, float]]]:
    line = Line(plant, _recipe(plant))
    assert line.plating.tracker.create_load(LoadRequest("SIM-1", 4, 20.0, "SO-SIM", id="SIM-R1"),
                                            ts=T0, user="op").ok
    # the chrome exhaust fan starts with the first scans; its interlock latched meanwhile: reset it
    for _ in range(120):
        line.run(1.0)
        if line.core.execute(ResetInterlock("chrome", "exhaust", "op", "operator"), line.ts, line.ts).ok:
            break
    else:
        pytest.fail("the chrome exhaust interlock could not be reset")
    line.run(1.0)
    truth: dict[str, dict[str, float]] = {}
    for tank in ("nickel", "chrome"):
        line.sim.put_load(tank, 20.0)  # the hoist lowers the load: load_present rises
        if excursion and tank == "nickel":
            line.run(100)
            line.temp_offset["line1.nickel.temp."] = 7.0  # all three probes read 7 degC high for 30 s
            line.run(30)
            line.temp_offset.clear()
            line.run(170)
        else:
            line.run(300)
        got = line.sim.remove_load(tank)
        assert got is not None
        truth[tank] = got
        line.run(10)
    return line, truth


def test_load_through_the_simulated_line(plant: PlantConfig) -> None:
    line, truth = _through_the_line(plant, excursion=False)
    load = line.plating.tracker.loads["SIM-R1"]
    assert [v.tank for v in load.visits] == ["nickel", "chrome"]
    assert all(v.entry_source == "plc" for v in load.visits)
    rec = build_record(load, line.plating.tracker.recipe_of(load), plant, line.history, line.events, now=line.ts)
    for step, tank in zip(rec.steps, ("nickel", "chrome"), strict=True):
        assert truth[tank]["amp_hours"] > 0.5
        assert step.amp_hours == pytest.approx(truth[tank]["amp_hours"], rel=0.01), tank
        assert step.thickness_um == pytest.approx(truth[tank]["thickness_um"], rel=0.02), tank
    assert rec.conforming, rec.nonconformities
    start = load.visits[0].entry_ts
    assert not any(e.kind is EventKind.INTERLOCK and e.state == "tripped" and e.ts >= start for e in line.events)


def test_temperature_excursion_in_the_simulated_line(plant: PlantConfig) -> None:
    line, _ = _through_the_line(plant, excursion=True)
    load = line.plating.tracker.loads["SIM-R1"]
    rec = build_record(load, line.plating.tracker.recipe_of(load), plant, line.history, line.events, now=line.ts)
    assert not rec.conforming
    assert any("nickel: temperature above window" in r for r in rec.nonconformities), rec.nonconformities
