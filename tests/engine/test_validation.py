"""Per-probe validation rules, table-driven, with a fake clock (no sockets, no wall clock)."""

from __future__ import annotations

import math

import pytest

from scada.tags import NE107, Quality, QualityReason
from scada.validation import ProbeValidator, SlidingRange, loop_current_ma, ne43_check
from tests.engine.support import bad, good, group, ma_tag, uncertain


@pytest.mark.parametrize(
    ("ma", "quality", "ne107"),
    [
        (2.0, Quality.BAD, NE107.FAILURE),       # wire break
        (3.59, Quality.BAD, NE107.FAILURE),
        (3.7, Quality.BAD, NE107.FAILURE),       # gap between failure and measurement limit
        (3.9, Quality.UNCERTAIN, NE107.OUT_OF_SPECIFICATION),  # saturated low
        (4.0, None, None),
        (12.0, None, None),
        (20.0, None, None),
        (20.3, Quality.UNCERTAIN, NE107.OUT_OF_SPECIFICATION),  # saturated high
        (20.8, Quality.BAD, NE107.FAILURE),      # gap
        (21.5, Quality.BAD, NE107.FAILURE),      # failure high
    ],
)
def test_ne43_bands(ma: float, quality: Quality | None, ne107: NE107 | None) -> None:
    v = ne43_check(ma)
    if quality is None:
        assert v is None
    else:
        assert v is not None and v.quality is quality and v.ne107 is ne107


@pytest.mark.parametrize(
    ("raw", "quality", "reason"),
    [
        (4000 + 16000 * (2.5 - 4) / 16, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (4000 + 1000 * (3.9 - 4), Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),
        (12000, Quality.GOOD, QualityReason.NONE),
        (1000 * 20.3, Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),
        (1000 * 22.0, Quality.BAD, QualityReason.SENSOR_FAILURE),
    ],
)
def test_ne43_from_raw_through_the_scale(raw: float, quality: Quality, reason: QualityReason) -> None:
    tag = ma_tag()
    v = ProbeValidator(tag, group())
    value = tag.scale.to_eng(raw)  # type: ignore[union-attr]
    r = v.validate(good(value, raw=raw), now=0.0)
    assert r.sample.quality is quality
    assert r.sample.reason == reason


def test_loop_current_without_raw_uses_the_value() -> None:
    assert loop_current_ma(ma_tag(), good(50.0)) == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("value", "quality", "reason"),
    [
        (50.0, Quality.GOOD, QualityReason.NONE),
        (-10.0, Quality.GOOD, QualityReason.NONE),
        (110.0, Quality.GOOD, QualityReason.NONE),
        (-10.5, Quality.BAD, QualityReason.OUT_OF_RANGE),
        (250.0, Quality.BAD, QualityReason.OUT_OF_RANGE),
        (math.nan, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (math.inf, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (None, Quality.BAD, QualityReason.SENSOR_FAILURE),
        (True, Quality.BAD, QualityReason.SENSOR_FAILURE),
    ],
)
def test_range_and_non_numbers(value: object, quality: Quality, reason: QualityReason) -> None:
    v = ProbeValidator("t.p.a", group(range={"min": -10, "max": 110}))
    r = v.validate(good(value), 0.0)  # type: ignore[arg-type]
    assert (r.sample.quality, r.sample.reason) == (quality, reason)


@pytest.mark.parametrize("reason", [QualityReason.COMM_FAILURE, QualityReason.DEVICE_FAILURE,
                                    QualityReason.WAITING_FOR_INITIAL_DATA])
def test_driver_bad_stays_bad_with_its_reason(reason: QualityReason) -> None:
    v = ProbeValidator("t.p.a", group(range={"min": 0, "max": 100}))
    r = v.validate(bad(reason, value=50.0), 0.0)
    assert r.sample.quality is Quality.BAD and r.sample.reason == reason


def test_driver_uncertain_stays_uncertain() -> None:
    v = ProbeValidator("t.p.a", group())
    assert v.validate(uncertain(5.0), 0.0).sample.quality is Quality.UNCERTAIN


def test_spike_is_rejected_and_last_good_held_as_uncertain() -> None:
    v = ProbeValidator("t.p.a", group(rate_limit_per_s=2.0), max_hold_scans=3)
    assert v.validate(good(50.0), 0.0).sample.good
    r = v.validate(good(60.0), 0.25)           # 40 degC/s
    assert r.sample.quality is Quality.UNCERTAIN
    assert r.sample.value == 50.0
    assert r.sample.reason == QualityReason.LAST_KNOWN_VALUE
    assert "spike" in r.flags
    r = v.validate(good(50.2), 0.5)            # spike gone: back to Good
    assert r.sample.good and r.sample.value == 50.2


def test_hold_never_lasts_more_than_n_scans() -> None:
    v = ProbeValidator("t.p.a", group(rate_limit_per_s=2.0), max_hold_scans=3)
    v.validate(good(50.0), 0.0)
    held = [v.validate(good(80.0), 0.25 * i).sample for i in range(1, 4)]
    assert all(s.value == 50.0 and s.quality is Quality.UNCERTAIN for s in held)
    r = v.validate(good(80.0), 1.0)            # a persistent step is real
    assert r.sample.value == 80.0 and "step_accepted" in r.flags
    assert r.sample.quality is Quality.UNCERTAIN
    assert v.validate(good(80.1), 1.25).sample.good


def test_slow_change_passes_the_rate_limit() -> None:
    v = ProbeValidator("t.p.a", group(rate_limit_per_s=2.0))
    for i in range(20):
        assert v.validate(good(50.0 + 0.4 * i), 0.25 * i).sample.good


def test_bad_sample_then_recovery_is_not_a_spike() -> None:
    v = ProbeValidator("t.p.a", group(rate_limit_per_s=2.0))
    v.validate(good(50.0), 0.0)
    v.validate(bad(), 0.25)
    assert v.validate(good(50.1), 0.5).sample.good


def test_stillness_needs_a_full_window() -> None:
    v = ProbeValidator("t.p.a", group(frozen={"window_s": 10, "epsilon": 0.01}))
    results = [v.validate(good(50.0), float(t)) for t in range(12)]
    assert not results[5].still
    assert results[11].still and not results[11].moving


def test_sliding_range_follows_the_window() -> None:
    w = SlidingRange(5.0)
    for t, x in enumerate([1.0, 9.0, 3.0, 4.0, 5.0, 4.0, 4.5, 4.2, 4.1]):
        w.add(float(t), x)
    # window covers t >= 3: values 4, 5, 4, 4.5, 4.2, 4.1
    assert w.spread() == pytest.approx(1.0)
