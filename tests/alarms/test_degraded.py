"""A redundant group that lost a probe raises its own alarm: the next failure would lose the measurement."""

from __future__ import annotations

from alarms import AlarmEngine
from scada.config import PlantConfig
from scada.tags import Sample


def test_degraded_redundancy_is_alarmed_after_its_delay(plant: PlantConfig) -> None:
    eng = AlarmEngine(plant, clock=lambda: 0.0)
    aid = "nickel.temperature.degraded"
    assert eng.status(aid).defn.priority == "high"  # the temperature group feeds the over_temp interlock
    tag = "line1.nickel.temperature.degraded"
    eng.evaluate(0.0, {tag: Sample.good_value(False, 0.0)})
    assert not eng.status(aid).active
    eng.evaluate(1.0, {tag: Sample.good_value(True, 1.0)})
    assert not eng.status(aid).active  # on-delay 5 s
    eng.evaluate(7.0, {tag: Sample.good_value(True, 7.0)})
    st = eng.status(aid)
    assert st.active and "redundancy degraded" in st.defn.message
    assert "rinse1.conductivity.degraded" not in {a.alarm_id for a in eng.alarms()}  # single probe: no alarm
