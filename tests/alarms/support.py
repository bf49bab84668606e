"""Helpers for alarm tests: a small plant, a fake clock, sample constructors (pure: no sockets, no wall clock)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from scada.config import PlantConfig, parse_config
from scada.tags import NE107, Quality, QualityReason, Sample

BASE: dict[str, Any] = {
    "line": {"prefix": "l1", "estop": "l1.estop"},
    "tags": [
        {"name": "l1.estop"},
        {"name": "l1.t.temp.a", "unit": "degC"},
        {"name": "l1.t.ph.a"},
        {"name": "l1.t.level_low"},
        {"name": "l1.t.load_present"},
        {"name": "l1.t.heater", "access": "read_write"},
        {"name": "l1.u.temp.a"},
        {"name": "l1.u.heater", "access": "read_write"},
    ],
    "tanks": [
        {
            "id": "t", "name": "Tank T", "process": "watts_nickel", "volume_l": 100, "area": "a1",
            "window": {"temperature_c": {"min": 50, "max": 60}, "ph": {"min": 3.8, "max": 4.6}},
            "sensors": {
                "temperature": {"tags": ["l1.t.temp.a"], "unit": "degC"},
                "ph": {"tags": ["l1.t.ph.a"], "unit": "pH"},
            },
            "inputs": {"level_low": "l1.t.level_low", "load_present": "l1.t.load_present"},
            "outputs": {"heater": "l1.t.heater"},
            "loops": [{"id": "temp", "kind": "pid", "pv": "temperature", "output": "heater",
                       "setpoint": {"initial": 55, "limits": {"min": 40, "max": 65}}, "pid": {"kp": 10}}],
            "interlocks": [
                {"id": "over_temp", "description": "Heater off above 68", "trip_when": ["temperature > 68"],
                 "acts_on": ["heater"]},
                {"id": "estop", "trip_when": ["line.estop"], "acts_on": ["heater"], "bypassable": False},
            ],
            "alarms": [
                {"id": "temp", "kind": "limit", "source": "temperature", "hh": 62, "h": 60, "l": 50, "ll": 45,
                 "deadband": 0.5, "on_delay_s": 5, "priority": "high"},
                {"id": "temp_dev", "kind": "deviation", "source": "temperature", "deviation": 3.0,
                 "on_delay_s": 10, "priority": "medium"},
                {"id": "level_low", "kind": "discrete", "source": "level_low", "priority": "critical",
                 "message": "Level low"},
            ],
        },
        {
            "id": "u", "name": "Tank U", "process": "soak_cleaner", "volume_l": 100, "area": "a2",
            "window": {"temperature_c": {"min": 60, "max": 80}},
            "sensors": {"temperature": {"tags": ["l1.u.temp.a"], "unit": "degC"}},
            "outputs": {"heater": "l1.u.heater"},
            "interlocks": [
                {"id": "over_temp", "trip_when": ["temperature > 82"], "acts_on": ["heater"]},
                {"id": "estop", "trip_when": ["line.estop"], "acts_on": ["heater"], "bypassable": False},
            ],
        },
    ],
}


def make_plant(edit: Callable[[dict[str, Any]], None] | None = None) -> PlantConfig:
    data = copy.deepcopy(BASE)
    if edit:
        edit(data)
    return parse_config(data)


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


def good(v: float | bool, ts: float = 0.0) -> Sample:
    return Sample.good_value(v, ts)


def bad(reason: QualityReason, ts: float = 0.0, ne107: NE107 = NE107.OK, detail: str = "") -> Sample:
    return Sample(value=None, quality=Quality.BAD, server_ts=ts, reason=reason, ne107=ne107, detail=detail)


TEMP = "l1.t.temperature.pv"
PH = "l1.t.ph.pv"
LEVEL = "l1.t.level_low"
U_TEMP = "l1.u.temperature.pv"


def normal_values(temp: float = 55.0, ph: float = 4.2, level: bool = False, u_temp: float = 70.0) -> dict[str, Sample]:
    return {TEMP: good(temp), PH: good(ph), LEVEL: good(level), "l1.t.load_present": good(True),
            U_TEMP: good(u_temp), "l1.estop": good(False)}




class FakeEventStore:
    """In-memory stand-in for the historian's event API (same filters, ordering and paging)."""

    def __init__(self) -> None:
        from scada.events import Event

        self.events: list[Event] = []
        self.fail_next = 0

    async def write_events(self, events: list) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database down")
        import dataclasses

        for e in events:
            self.events.append(dataclasses.replace(e, id=len(self.events) + 1))

    async def query_events(self, *, start=None, end=None, kinds=None, tank=None, priority=None,  # noqa: ANN001
                           state=None, source=None, limit=1000, offset=0, newest_first=True) -> list:
        rows = [e for e in self.events
                if (start is None or e.ts >= start) and (end is None or e.ts < end)
                and (not kinds or str(e.kind) in [str(k) for k in kinds])
                and all(v is None or getattr(e, k) == v
                        for k, v in (("tank", tank), ("priority", priority), ("state", state), ("source", source)))]
        rows.sort(key=lambda e: (e.ts, e.id), reverse=newest_first)
        return rows[offset: offset + limit]
