"""Helpers for the engine tests: samples, groups, a fake clock."""

from __future__ import annotations

from scada.config.tags import TagConfig
from scada.config.tanks import SensorGroupConfig
from scada.tags import Quality, QualityReason, Sample, Value


class FakeClock:
    """Monotonic and wall clock in one, moved by hand."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


def good(v: Value, ts: float = 0.0, raw: float | None = None) -> Sample:
    return Sample(value=v, quality=Quality.GOOD, server_ts=ts, source_ts=ts, raw=raw)


def bad(reason: QualityReason = QualityReason.COMM_FAILURE, ts: float = 0.0, value: Value = None) -> Sample:
    return Sample(value=value, quality=Quality.BAD, server_ts=ts, reason=reason, detail="test")


def uncertain(v: Value, ts: float = 0.0) -> Sample:
    return Sample(value=v, quality=Quality.UNCERTAIN, server_ts=ts, reason=QualityReason.SENSOR_NOT_ACCURATE)


def group(voting: str = "1oo1", n: int | None = None, **kw: object) -> SensorGroupConfig:
    n = n or int(voting[-1])
    tags = [f"t.p.{c}" for c in "abc"[:n]]
    return SensorGroupConfig(tags=tags, voting=voting, **kw)  # type: ignore[arg-type]


def ma_tag(name: str = "t.p.a") -> TagConfig:
    """A 4-20 mA probe read as microamps: 4000..20000 = 0..100."""
    return TagConfig.model_validate({
        "name": name, "device": "plc", "modbus": {"table": "input", "address": 0},
        "scale": {"raw_min": 4000, "raw_max": 20000, "eng_min": 0, "eng_max": 100}, "signal": "ma_4_20",
    })
