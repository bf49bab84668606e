"""A whole plant on FakeDrivers with a fake clock: the engine's component-test world (also used by bench/)."""

from __future__ import annotations

from collections.abc import Mapping

from drivers.base import WriteResult
from drivers.fake import FakeDriver
from scada.config import PlantConfig
from scada.engine import ScanEngine, ScanResult
from scada.tags import TagStore, Value
from tests.engine.support import FakeClock

HEALTHY: dict[str, Value] = {
    "line1.chrome.exhaust.running": True,
    "line1.nickel.ph.a": 4.2,
    "line1.nickel.ph.b": 4.21,
}
TEMPS = {"soak": 70.0, "ecleaner": 70.0, "pickle": 22.0, "nickel": 54.0, "chrome": 55.0}


def healthy_values(plant: PlantConfig) -> dict[str, Value]:
    """Every input at a normal value: levels fine, e-stop closed, probes agreeing, fans running."""
    out: dict[str, Value] = {}
    for t in plant.tags:
        if t.device is None:
            continue
        if t.is_boolean:
            out[t.name] = False
        elif t.writable:
            out[t.name] = 0
        else:
            out[t.name] = 50.0
    for tank, temp in TEMPS.items():
        for k, p in enumerate("abc"):
            name = f"line1.{tank}.temp.{p}"
            if name in out:
                out[name] = temp + 0.05 * k
    for t in plant.tags:
        if t.name.endswith(("rect.current", "rect.voltage", "rect.amp_hours")):
            out[t.name] = 0.0
    out.update(HEALTHY)
    return out


class World:
    """The example plant on fake drivers; ``await world.scan()`` polls every driver and runs one scan."""

    def __init__(self, plant: PlantConfig, clock: FakeClock | None = None) -> None:
        self.plant = plant
        self.clock = clock or FakeClock()
        self.store = TagStore(clock=self.clock)
        self.drivers: dict[str, FakeDriver] = {}
        for d in plant.devices:
            names = [t.name for t in plant.tags if t.device == d.name]
            self.drivers[d.name] = FakeDriver(d.name, names, sink=self.store.publish, clock=self.clock)
        self.owner = {t: d for d in self.drivers.values() for t in d.tags}
        self.store.declare(self.owner)
        self.set(healthy_values(plant))
        self.write_log: list[dict[str, Value]] = []
        self.engine = ScanEngine(plant, self.store, self.write, clock=self.clock, wall=self.clock)
        self.polling = True

    def set(self, values: Mapping[str, Value]) -> None:
        for k, v in values.items():
            self.owner[k].values[k] = v

    def value(self, tag: str) -> Value:
        return self.owner[tag].values[tag]

    async def write(self, values: dict[str, Value]) -> list[WriteResult]:
        self.write_log.append(dict(values))
        out: list[WriteResult] = []
        by_driver: dict[str, dict[str, Value]] = {}
        for k, v in values.items():
            d = self.owner.get(k)
            if d is None:
                out.append(WriteResult(k, False, v, "no driver for this tag"))
            else:
                by_driver.setdefault(d.name, {})[k] = v
        for name, vals in by_driver.items():
            out += await self.drivers[name].write(vals)
        return out

    async def scan(self, n: int = 1, dt: float | None = None) -> ScanResult:
        dt = self.plant.scan.period_s if dt is None else dt
        result = None
        for _ in range(n):
            self.clock.advance(dt)
            if self.polling:
                for d in self.drivers.values():
                    d.read()
            result = await self.engine.scan_once(self.clock())
        assert result is not None
        return result
