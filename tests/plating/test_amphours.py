"""Amp-hour integration (vs numpy's trapezoid), Bad samples and gaps, dosing by amp-hours."""

from __future__ import annotations

import numpy as np
import pytest

from scada.config import PlantConfig
from scada.config.tanks import AdditiveConfig
from scada.events import EventKind
from scada.plating import AdditiveDoser, AmpHourCounter, PlatingLine
from scada.tags import Quality, QualityReason, Sample


def _trapz(t: np.ndarray, i: np.ndarray) -> float:
    fn = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it
    return float(fn(i, t)) / 3600.0


def test_integral_matches_numpy_trapezoid() -> None:
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.uniform(0.2, 0.3, 20_000))  # jittered 0.25 s scans
    i = 200 + 40 * np.sin(t / 60) + rng.normal(0, 5, t.size)
    c = AmpHourCounter("nickel", max_gap_s=1.0)
    for ts, cur in zip(t, i, strict=True):
        c.update(Sample.good_value(float(cur), float(ts)))
    ref = _trapz(t, i)
    assert c.total_ah == pytest.approx(ref, rel=1e-3)
    assert c.unmeasured_s == 0


def test_bad_samples_bridged_short_gaps_not_long() -> None:
    c = AmpHourCounter("nickel", max_gap_s=1.0)
    c.update(Sample.good_value(100.0, 0.0))
    c.update(Sample.bad(QualityReason.COMM_FAILURE, 0.25, value=9999.0))  # not integrated
    c.update(Sample.good_value(100.0, 0.5))  # bridged 0..0.5 at 100 A
    assert c.total_ah == pytest.approx(100 * 0.5 / 3600)
    c.update(Sample.good_value(100.0, 10.5))  # 10 s gap > 1 s: not bridged
    assert c.total_ah == pytest.approx(100 * 0.5 / 3600)
    assert c.unmeasured_s == pytest.approx(10.0)
    c.update(Sample.good_value(100.0, 11.5))
    assert c.total_ah == pytest.approx(100 * 1.5 / 3600)
    # the same reading again (no new sample this scan) adds nothing; negative current counts as 0
    c.update(Sample.good_value(100.0, 11.5))
    c.update(Sample(value=-5.0, quality=Quality.UNCERTAIN, server_ts=12.5))
    assert c.total_ah == pytest.approx(100 * 1.5 / 3600 + 50 * 1.0 / 3600)


def _doser() -> AdditiveDoser:
    cfg = AdditiveConfig(name="brightener", ml_per_kah=250, dose_ml=250, pump_ml_min=100, max_single_ml=500)
    return AdditiveDoser("nickel", cfg, "line1.nickel.additive_pump")


def test_dose_after_threshold_runs_pump_for_v_over_q() -> None:
    d = _doser()
    assert d.threshold_ah == pytest.approx(1000.0)
    on, evs = d.step(0.0, 999.0)
    assert not on and not evs
    on, evs = d.step(1.0, 1.0)
    assert on and evs[0].kind is EventKind.DOSE and evs[0].state == "started" and evs[0].value == pytest.approx(250)
    assert d.run_s == pytest.approx(150.0)  # 250 mL / 100 mL/min
    assert d.step(150.0, 0.0)[0]
    on, evs = d.step(151.0, 0.0)
    assert not on and evs[0].state == "done" and evs[0].data["volume_ml"] == pytest.approx(250)
    assert d.state.ah_since_dose == pytest.approx(0.0)


def test_backlog_capped_and_interlock_aborts_with_credit() -> None:
    d = _doser()
    on, evs = d.step(0.0, 5000.0)  # 1250 mL owed, capped at 500
    assert on and evs[0].value == pytest.approx(500)
    assert d.state.ah_since_dose == pytest.approx(3000.0)
    on, evs = d.step(60.0, 0.0, blocked="interlock estop")  # 100 mL pumped in 60 s
    assert not on and evs[0].state == "aborted" and evs[0].value == pytest.approx(100)
    assert "estop" in evs[0].message
    assert d.state.ah_since_dose == pytest.approx(3000.0 + 1600.0)  # 400 mL not pumped credited back
    on, evs = d.step(61.0, 0.0, blocked="interlock estop")
    assert not on and not evs  # no new dose while blocked


def test_line_scan_attributes_charge_and_doses(plant: PlantConfig, line: PlatingLine) -> None:
    from scada.plating import LoadRequest

    tr = line.tracker
    tr.create_load(LoadRequest("PN-100", 1, 50.0, id="R1"), ts=0.0, user="op")
    tr.enter("R1", "nickel", ts=0.0)
    line.dosers["nickel"][0].state.ah_since_dose = 999.99
    tag = "line1.nickel.current.pv"
    outs = []
    for k in range(0, 41):
        ts = k * 0.25
        res = line.scan({tag: Sample.good_value(200.0, ts)}, ts)
        outs.append(res.outputs["line1.nickel.additive_pump"])
    assert tr.loads["R1"].visits[0].amp_hours == pytest.approx(200 * 10 / 3600)
    assert line.counters["nickel"].total_ah == pytest.approx(200 * 10 / 3600)
    assert outs[0] is False and outs[-1] is True  # threshold crossed during the run
    recs = {r.tank: r for r in line.counter_records()}
    assert recs["nickel"].ah_since_dose["brightener"] < 1.0
