"""The plating layer's scan step: load tracking, amp-hour counters and additive dosing, no I/O.

The runtime calls :meth:`PlatingLine.scan` once per scan with the scan's consistent snapshot of
tag values; it gets back the dosing-pump commands (output tag -> bool, every configured pump every
scan) and the events to journal. Which tags are read:

* ``load_present`` input of each tank (its configured tag) -> load enters/leaves;
* the voted ``current`` sensor group (``<prefix>.<tank>.current.pv``) of each tank that has one ->
  amp-hour counter, charge of the load in the tank, additive dosing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from scada.config import PlantConfig
from scada.events import Event
from scada.plating.amphours import AdditiveDoser, AmpHourCounter, DoseState
from scada.plating.loads import LineTracker, RectifierDemand
from scada.plating.recipes import RecipeBook, rectifier_loop
from scada.plating.store import CounterRecord
from scada.tags import Sample


@dataclass(frozen=True, slots=True)
class RectifierChange:
    """A rectifier tank's load changed: set the loop's load area and its CD setpoint.

    The runtime turns it into engine commands: ``SetLoadArea(tank, loop, area_dm2)`` and, when
    ``current_density_a_dm2`` is not None, ``SetSetpoint(tank, loop, current_density_a_dm2)``.
    ``area_dm2`` None = the tank is empty (the loop falls back to its default area and, without
    ``load_present``, holds the rectifier off).
    """

    tank: str
    loop: str
    area_dm2: float | None
    current_density_a_dm2: float | None
    load_id: str | None


@dataclass(frozen=True, slots=True)
class PlatingScanResult:
    outputs: dict[str, bool] = field(default_factory=dict)
    """Dosing-pump output tag -> command (write through the engine's guarded, interlocked path)."""
    events: list[Event] = field(default_factory=list)


class PlatingLine:
    """Recipes + tracker + counters + dosers of one line, stepped by the scan."""

    def __init__(self, plant: PlantConfig, *, book: RecipeBook | None = None, max_gap_scans: int = 4) -> None:
        self.plant = plant
        self.book = book or RecipeBook()
        self.tracker = LineTracker(plant, self.book)
        self.max_gap_s = max_gap_scans * plant.scan.period_s
        prefix = plant.line.prefix
        self.present_tags: dict[str, str] = {}
        self.current_tags: dict[str, str] = {}
        self.counters: dict[str, AmpHourCounter] = {}
        self.dosers: dict[str, list[AdditiveDoser]] = {}
        self.rectifier_loops: dict[str, str] = {}
        self._rect_last: dict[str, tuple[float | None, float | None, str | None]] = {}
        for tank in plant.tanks:
            loop = rectifier_loop(tank)
            if loop is not None:
                self.rectifier_loops[tank.id] = loop.id
            if "load_present" in tank.inputs:
                self.present_tags[tank.id] = tank.inputs["load_present"]
            if "current" in tank.sensors:
                self.current_tags[tank.id] = tank.pv_tag(prefix, "current")
                self.counters[tank.id] = AmpHourCounter(tank.id, self.max_gap_s)
                self.dosers[tank.id] = [AdditiveDoser(tank.id, a, tank.outputs[a.output]) for a in tank.additives]

    # ---------------------------------------------------------------- persistence glue
    def restore_counters(self, records: Mapping[str, CounterRecord]) -> None:
        for tank_id, rec in records.items():
            counter = self.counters.get(tank_id)
            if counter is None:
                continue
            counter.total_ah, counter.unmeasured_s, counter.updated_ts = rec.total_ah, rec.unmeasured_s, rec.updated_ts
            counter.resume_ts = rec.updated_ts
            for d in self.dosers.get(tank_id, []):
                d.state = DoseState(rec.ah_since_dose.get(d.config.name, 0.0), rec.last_dose_ts.get(d.config.name))

    def counter_records(self) -> list[CounterRecord]:
        out = []
        for tank_id, c in self.counters.items():
            dosers = self.dosers.get(tank_id, [])
            out.append(CounterRecord(
                tank=tank_id, total_ah=c.total_ah, unmeasured_s=c.unmeasured_s, updated_ts=c.updated_ts,
                ah_since_dose={d.config.name: d.state.ah_since_dose for d in dosers},
                last_dose_ts={d.config.name: d.state.last_dose_ts for d in dosers if d.state.last_dose_ts is not None},
            ))
        return out

    # ---------------------------------------------------------------- scan
    def scan(self, values: Mapping[str, Sample], ts: float, *, blocked: Mapping[str, str] | None = None) -> PlatingScanResult:
        """One scan. ``blocked``: output tag -> why it may not be energised now (interlock, write failure)."""
        blocked = blocked or {}
        events: list[Event] = []
        for tank_id, tag in self.present_tags.items():
            events += self.tracker.observe_load_present(tank_id, values.get(tag), ts)
        outputs: dict[str, bool] = {}
        for tank_id, counter in self.counters.items():
            integ = counter.update(values.get(self.current_tags[tank_id]))
            load = self.tracker.load_in(tank_id)
            visit = None if load is None else load.current_visit
            if visit is not None and load is not None and (integ.amp_hours or integ.unmeasured_s):
                visit.amp_hours += integ.amp_hours
                if integ.unmeasured_s and integ.start_ts is not None and integ.end_ts is not None:
                    visit.unmeasured_s += max(0.0, integ.end_ts - max(integ.start_ts, visit.entry_ts))
                self.tracker.dirty.add(load.id)
            for doser in self.dosers.get(tank_id, []):
                on, evs = doser.step(ts, integ.amp_hours, blocked=blocked.get(doser.output_tag))
                outputs[doser.output_tag] = outputs.get(doser.output_tag, False) or on
                events += evs
        events += self.tracker.tick(ts)
        return PlatingScanResult(outputs, events)

    # ---------------------------------------------------------------- scan-engine queries
    def rectifier_current_a(self, tank_id: str) -> float | None:
        return self.tracker.rectifier_current_a(tank_id)

    def area_dm2(self, tank_id: str) -> float | None:
        return self.tracker.area_dm2(tank_id)

    def rectifier_demand(self, tank_id: str) -> RectifierDemand | None:
        return self.tracker.rectifier_demand(tank_id)

    def rectifier_changes(self) -> list[RectifierChange]:
        """What changed for each rectifier loop since the last call (call after every scan and command)."""
        out = []
        for tank_id, loop_id in self.rectifier_loops.items():
            d = self.tracker.rectifier_demand(tank_id)
            now = (None, None, None) if d is None else (
                d.area_dm2, d.current_density_a_dm2 if d.current_density_a_dm2 is not None else 0.0, d.load_id)
            if self._rect_last.get(tank_id) != now:
                self._rect_last[tank_id] = now
                out.append(RectifierChange(tank_id, loop_id, now[0], now[1], now[2]))
        return out

    def dosing_tags(self) -> Iterable[str]:
        return {d.output_tag for ds in self.dosers.values() for d in ds}
