"""Redundancy voting: 2oo3 median/exclusion/degradation, 1oo2, 2oo2, 1oo1, frozen probes; a hypothesis property."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scada.tags import NE107, Quality, QualityReason, Sample
from scada.voting import GroupVoter, median3
from tests.engine.support import bad, good, group, uncertain

A, B, C = "t.p.a", "t.p.b", "t.p.c"


def vote(v: GroupVoter, now: float, *samples: Sample):
    return v.vote(dict(zip((A, B, C), samples, strict=False)), now)


def test_median3() -> None:
    assert median3(1, 2, 3) == 2 and median3(3, 1, 2) == 2 and median3(5, 5, 1) == 5


@pytest.mark.parametrize(
    ("samples", "value", "quality", "degraded"),
    [
        ((good(50.0), good(50.4), good(50.2)), 50.2, Quality.GOOD, False),
        ((good(50.0), good(90.0), good(50.2)), 50.2, Quality.GOOD, False),       # outlier rejected by median
        ((good(50.0), bad(), good(50.4)), 50.2, Quality.GOOD, True),             # 2 good: average
        ((good(50.0), bad(), bad()), 50.0, Quality.UNCERTAIN, True),             # 1 good: Uncertain, degraded
        ((bad(), bad(), bad()), None, Quality.BAD, True),                        # none: Bad
        ((uncertain(50.0), good(50.4), good(50.2)), 50.3, Quality.GOOD, True),   # Uncertain does not vote
        ((uncertain(50.0), uncertain(51.0), uncertain(52.0)), 51.0, Quality.UNCERTAIN, False),  # fallback
    ],
)
def test_2oo3_table(samples: tuple[Sample, ...], value: float | None, quality: Quality, degraded: bool) -> None:
    v = GroupVoter("temperature", group("2oo3", discrepancy=2.0, discrepancy_delay_s=30))
    r = vote(v, 0.0, *samples)
    assert r.pv.quality is quality
    assert r.degraded is degraded
    if value is None:
        assert r.pv.value is None
    else:
        assert r.pv.value == pytest.approx(value)


def test_2oo3_all_bad_by_comm_says_comm_failure() -> None:
    v = GroupVoter("temperature", group("2oo3"))
    r = vote(v, 0.0, bad(), bad(), bad(QualityReason.NOT_CONNECTED))
    assert r.pv.reason == QualityReason.COMM_FAILURE and r.pv.ne107 is NE107.FAILURE


def test_2oo3_deviating_probe_is_excluded_after_the_delay_and_readmitted() -> None:
    v = GroupVoter("temperature", group("2oo3", discrepancy=2.0, discrepancy_delay_s=30))
    r = vote(v, 0.0, good(50.0), good(50.2), good(55.0))
    assert not r.probes[2].excluded and "deviating" in r.probes[2].flags
    assert r.pv.value == pytest.approx(50.2)
    r = vote(v, 29.0, good(50.0), good(50.2), good(55.0))
    assert not r.probes[2].excluded
    r = vote(v, 30.0, good(50.0), good(50.2), good(55.0))
    assert r.probes[2].excluded and r.discrepancy and r.degraded
    assert r.pv.value == pytest.approx(50.1)           # average of the two remaining
    assert r.pv.quality is Quality.GOOD and r.pv.ne107 is NE107.MAINTENANCE_REQUIRED
    assert r.probes[2].deviation == pytest.approx(4.9)
    r = vote(v, 31.0, good(50.0), good(50.2), good(50.3))   # back in line
    assert not r.probes[2].excluded and not r.discrepancy
    assert r.pv.value == pytest.approx(50.2)


def test_2oo3_deviation_that_comes_and_goes_restarts_the_timer() -> None:
    v = GroupVoter("temperature", group("2oo3", discrepancy=2.0, discrepancy_delay_s=30))
    vote(v, 0.0, good(50.0), good(50.0), good(55.0))
    vote(v, 20.0, good(50.0), good(50.0), good(50.5))
    r = vote(v, 35.0, good(50.0), good(50.0), good(55.0))
    assert not r.probes[2].excluded


def test_2oo3_two_left_disagreeing_is_uncertain_on_the_safe_side() -> None:
    v = GroupVoter("temperature", group("2oo3", discrepancy=2.0, discrepancy_delay_s=10, safe_direction="high"))
    r = vote(v, 0.0, good(50.0), bad(), good(54.0))
    assert r.pv.quality is Quality.GOOD and r.pv.value == pytest.approx(52.0)
    r = vote(v, 10.0, good(50.0), bad(), good(54.0))
    assert r.pv.quality is Quality.UNCERTAIN and r.pv.reason == QualityReason.DISCREPANCY
    assert r.pv.value == 54.0 and r.discrepancy


@pytest.mark.parametrize(("direction", "expected"), [("high", 4.3), ("low", 4.1), ("none", 4.2)])
def test_1oo2_safe_direction(direction: str, expected: float) -> None:
    v = GroupVoter("ph", group("1oo2", discrepancy=0.5, safe_direction=direction))
    r = vote(v, 0.0, good(4.1), good(4.3))
    assert r.pv.value == pytest.approx(expected) and r.pv.good


@pytest.mark.parametrize(("direction", "expected"), [("high", 4.1), ("low", 4.3), ("none", 4.2)])
def test_2oo2_picks_the_opposite_side(direction: str, expected: float) -> None:
    v = GroupVoter("ph", group("2oo2", discrepancy=0.5, safe_direction=direction))
    assert vote(v, 0.0, good(4.1), good(4.3)).pv.value == pytest.approx(expected)


@pytest.mark.parametrize("voting", ["1oo2", "2oo2"])
def test_two_channel_discrepancy_alarm_after_delay(voting: str) -> None:
    v = GroupVoter("ph", group(voting, discrepancy=0.2, discrepancy_delay_s=30, safe_direction="low"))
    assert not vote(v, 0.0, good(4.0), good(4.5)).discrepancy
    r = vote(v, 30.0, good(4.0), good(4.5))
    assert r.discrepancy and r.pv.quality is Quality.UNCERTAIN and r.pv.reason == QualityReason.DISCREPANCY
    r = vote(v, 31.0, good(4.2), good(4.25))
    assert not r.discrepancy and r.pv.good


@pytest.mark.parametrize("voting", ["1oo2", "2oo2"])
def test_two_channel_degrades_to_one_uncertain(voting: str) -> None:
    v = GroupVoter("ph", group(voting))
    r = vote(v, 0.0, good(4.2), bad())
    assert r.pv.quality is Quality.UNCERTAIN and r.degraded and r.pv.value == 4.2
    assert r.good == 1
    r = vote(v, 0.0, bad(), bad())
    assert r.pv.quality is Quality.BAD and r.good == 0


def test_1oo1_passes_the_validated_probe() -> None:
    v = GroupVoter("temperature", group("1oo1", range={"min": 0, "max": 100}))
    assert vote(v, 0.0, good(20.0)).pv.value == 20.0
    r = vote(v, 0.25, good(200.0))
    assert r.pv.quality is Quality.BAD and r.pv.reason == QualityReason.OUT_OF_RANGE
    assert r.probes[0].reason == QualityReason.OUT_OF_RANGE


def test_frozen_probe_flagged_while_partners_move() -> None:
    v = GroupVoter("temperature", group("2oo3", frozen={"window_s": 10, "epsilon": 0.01}))
    r = None
    for i in range(60):
        t = i * 0.25
        moving = 50.0 + 0.5 * math.sin(t)
        r = vote(v, t, good(moving), good(moving + 0.1), good(50.0))
    assert r is not None
    assert "frozen" in r.probes[2].flags and r.probes[2].quality is Quality.UNCERTAIN
    assert r.degraded and r.pv.good           # the two moving probes carry the vote


def test_steady_process_is_not_frozen_when_partners_are_steady_too() -> None:
    v = GroupVoter("temperature", group("2oo3", frozen={"window_s": 10, "epsilon": 0.01}))
    r = None
    for i in range(60):
        r = vote(v, i * 0.25, good(50.0), good(50.0), good(50.0))
    assert r is not None and not any("frozen" in p.flags for p in r.probes)
    assert r.pv.good and not r.degraded


def test_diagnostics_carry_value_quality_reason_deviation() -> None:
    v = GroupVoter("temperature", group("2oo3"))
    r = vote(v, 0.0, good(50.0), bad(QualityReason.SENSOR_FAILURE), good(51.0))
    d = r.probes[1].to_dict()
    assert d["quality"] == "bad" and d["reason"] == "sensor_failure" and d["deviation"] is None
    assert r.probes[0].deviation == pytest.approx(0.5)
    assert r.to_dict()["probes"][0]["tag"] == A


# ------------------------------------------------------------------------------------- property

faulty_sample = st.one_of(
    st.builds(good, st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(uncertain, st.floats(-1e6, 1e6)),
    st.builds(lambda r, v: bad(r, value=v), st.sampled_from(list(QualityReason)),
              st.one_of(st.none(), st.floats(-1e6, 1e6))),
    st.just(good(None)),
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(0.0, 100.0),
    spread=st.floats(0.0, 1.0),
    drift=st.lists(st.floats(-0.2, 0.2), min_size=1, max_size=12),
    faults=st.lists(faulty_sample, min_size=12, max_size=12),
    faulty_index=st.integers(0, 2),
)
def test_any_single_faulty_probe_in_2oo3_keeps_the_vote_with_the_healthy_ones(
    base: float, spread: float, drift: list[float], faults: list[Sample], faulty_index: int,
) -> None:
    """Whatever one probe does (any value, any quality, over several scans), the voted value stays
    between the two healthy probes and is never Bad."""
    grp = group("2oo3", range={"min": -10, "max": 110}, rate_limit_per_s=2.0, discrepancy=2.0,
                discrepancy_delay_s=1.0, frozen={"window_s": 1.0, "epsilon": 0.001})
    v = GroupVoter("temperature", grp)
    x = base
    for i, dx in enumerate(drift):
        x += dx
        now = i * 0.25
        healthy = [good(x), good(x + spread)]
        samples = list(healthy)
        samples.insert(faulty_index, faults[i])
        r = vote(v, now, *samples)
        assert r.pv.quality is not Quality.BAD
        assert isinstance(r.pv.value, float)
        tol = 1e-9
        assert x - tol <= r.pv.value <= x + spread + tol
