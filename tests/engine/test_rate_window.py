"""Rate-of-change on fast scans: one quantisation step 15 ms after the last scan is not a spike."""

from __future__ import annotations

from scada.config.tanks import SensorGroupConfig
from scada.tags import Quality, Sample
from scada.validation import ProbeValidator


def _validator() -> ProbeValidator:
    group = SensorGroupConfig(tags=["line1.t.a"], rate_limit_per_s=2.0)
    return ProbeValidator("line1.t.a", group)


def test_quantisation_step_on_a_fast_scan_is_accepted() -> None:
    v = _validator()
    assert v.validate(Sample.good_value(55.0, 0.0), now=0.0).sample.quality is Quality.GOOD
    r = v.validate(Sample.good_value(55.1, 0.015), now=0.015)
    assert r.sample.quality is Quality.GOOD and "spike" not in r.flags


def test_a_real_spike_is_still_rejected_on_a_fast_scan() -> None:
    v = _validator()
    v.validate(Sample.good_value(55.0, 0.0), now=0.0)
    r = v.validate(Sample.good_value(60.0, 0.015), now=0.015)
    assert "spike" in r.flags and r.sample.value == 55.0 and r.sample.quality is Quality.UNCERTAIN
