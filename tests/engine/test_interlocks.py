"""Interlocks: fail-safe conditions, trip / latch / reset, first-out, bypass and its expiry (fake clock)."""

from __future__ import annotations

import pytest

from scada.conditions import parse_condition
from scada.config.interlocks import InterlockConfig
from scada.interlocks import InterlockEngine, InterlockInputs, InterlockStatus, evaluate_condition
from scada.tags import QualityReason, Sample
from tests.engine.support import bad, good, uncertain


def il(**kw: object) -> InterlockConfig:
    base: dict[str, object] = {"id": "over_temp", "trip_when": ["temperature > 68", "temperature not good"],
                               "acts_on": ["heater"]}
    base.update(kw)
    return InterlockConfig.model_validate(base)


def engine(*configs: InterlockConfig) -> InterlockEngine:
    return InterlockEngine([("nickel", "line", configs)])


def inputs(**values: Sample) -> dict[str, InterlockInputs]:
    return {"nickel": InterlockInputs({k.replace("__", "."): v for k, v in values.items()})}


@pytest.mark.parametrize(
    ("text", "sample", "tripped"),
    [
        ("temperature > 68", good(69.0), True),
        ("temperature > 68", good(68.0), False),
        ("temperature >= 68", good(68.0), True),
        ("temperature < 10", good(5.0), True),
        ("temperature != 5", good(5.0), False),
        ("level_low", good(True), True),
        ("level_low", good(False), False),
        ("not exhaust_fan_running", good(False), True),
        ("not exhaust_fan_running", good(True), False),
        ("temperature not good", good(50.0), False),
        # fail-safe: Bad or Uncertain trips every form
        ("temperature > 68", bad(), True),
        ("temperature > 68", uncertain(20.0), True),
        ("level_low", bad(value=False), True),
        ("not exhaust_fan_running", uncertain(True), True),
        ("temperature not good", uncertain(50.0), True),
        ("ph disagree", bad(), True),
    ],
)
def test_condition_table(text: str, sample: Sample, tripped: bool) -> None:
    cond = parse_condition(text)
    r = evaluate_condition(cond, InterlockInputs({cond.ref: sample}))
    assert r.tripped is tripped
    if tripped:
        assert r.reason


def test_missing_reference_trips() -> None:
    r = evaluate_condition(parse_condition("level_low"), InterlockInputs({}))
    assert r.tripped and "no value" in r.reason


def test_disagree_uses_the_group_flag() -> None:
    c = parse_condition("ph disagree")
    assert evaluate_condition(c, InterlockInputs({"ph": good(4.2)}, {"ph": True})).tripped
    assert not evaluate_condition(c, InterlockInputs({"ph": good(4.2)}, {"ph": False})).tripped


def test_trip_latch_refused_reset_then_reset() -> None:
    e = engine(il())
    r = e.evaluate(inputs(temperature=good(55.0)), 0.0, 100.0)
    assert r.forced == {} and r.views["nickel.over_temp"].status is InterlockStatus.NORMAL
    r = e.evaluate(inputs(temperature=good(70.0)), 1.0, 101.0)
    assert r.forced == {"nickel": frozenset({"heater"})}
    v = r.views["nickel.over_temp"]
    assert v.status is InterlockStatus.TRIPPED and v.first_out == "temperature > 68"
    assert [ev.state for ev in r.events] == ["tripped"]
    refused = e.reset("nickel", "over_temp", "olga", 1.5, 101.5)
    assert not refused.ok and "cause persists" in refused.reason and "70" in refused.reason
    r = e.evaluate(inputs(temperature=good(60.0)), 2.0, 102.0)
    assert r.views["nickel.over_temp"].status is InterlockStatus.LATCHED
    assert r.forced == {"nickel": frozenset({"heater"})}      # still forcing until reset
    ok = e.reset("nickel", "over_temp", "olga", 2.5, 102.5)
    assert ok.ok and ok.event is not None and ok.event.user == "olga"
    r = e.evaluate(inputs(temperature=good(60.0)), 3.0, 103.0)
    assert r.forced == {} and r.views["nickel.over_temp"].status is InterlockStatus.NORMAL


def test_reset_of_a_normal_interlock_is_refused() -> None:
    e = engine(il())
    e.evaluate(inputs(temperature=good(55.0)), 0.0, 0.0)
    r = e.reset("nickel", "over_temp", "olga", 0.0, 0.0)
    assert not r.ok and "not latched" in r.reason
    assert not e.reset("nickel", "nope", "olga", 0.0, 0.0).ok


def test_non_latching_clears_by_itself() -> None:
    e = engine(il(latch=False))
    e.evaluate(inputs(temperature=good(70.0)), 0.0, 0.0)
    r = e.evaluate(inputs(temperature=good(60.0)), 1.0, 1.0)
    assert r.forced == {} and [ev.state for ev in r.events] == ["normal"]


def test_bad_input_trips_and_latches() -> None:
    e = engine(il())
    r = e.evaluate(inputs(temperature=bad(QualityReason.SENSOR_FAILURE)), 0.0, 0.0)
    v = r.views["nickel.over_temp"]
    assert v.forcing and "sensor_failure" in v.first_out_reason
    r = e.evaluate(inputs(temperature=good(50.0)), 1.0, 1.0)
    assert r.views["nickel.over_temp"].status is InterlockStatus.LATCHED


def test_waiting_for_initial_data_trips_but_does_not_latch() -> None:
    e = engine(il())
    r = e.evaluate(inputs(temperature=bad(QualityReason.WAITING_FOR_INITIAL_DATA)), 0.0, 0.0)
    assert r.forced
    r = e.evaluate(inputs(temperature=good(50.0)), 1.0, 1.0)
    assert not r.forced


def test_first_out_per_interlock_and_line_wide() -> None:
    e = engine(il(), il(id="dry_fire", trip_when=["level_low"], bypassable=False))
    r = e.evaluate(inputs(temperature=good(50.0), level_low=good(True)), 0.0, 10.0)
    assert r.line_first_out is not None and r.line_first_out.interlock == "dry_fire"
    r = e.evaluate(inputs(temperature=bad(), level_low=good(True)), 1.0, 11.0)
    assert r.views["nickel.over_temp"].first_out == "temperature > 68"   # declaration order among true
    assert r.line_first_out is not None and r.line_first_out.interlock == "dry_fire"
    r = e.evaluate(inputs(temperature=good(50.0), level_low=good(False)), 2.0, 12.0)
    assert r.views["nickel.dry_fire"].first_out == "level_low"          # latched keeps its first-out
    for key in ("over_temp", "dry_fire"):
        assert e.reset("nickel", key, "olga", 2.0, 12.0).ok
    r = e.evaluate(inputs(temperature=good(50.0), level_low=good(False)), 3.0, 13.0)
    assert r.line_first_out is None


def test_bypass_suspends_forcing_until_it_expires() -> None:
    e = engine(il())
    e.evaluate(inputs(temperature=good(50.0)), 0.0, 0.0)
    res = e.bypass("nickel", "over_temp", "erik", "engineer", 60.0, 0.0, 0.0, comment="probe swap")
    assert res.ok and res.event is not None and res.event.state == "bypassed"
    r = e.evaluate(inputs(temperature=bad()), 30.0, 30.0)
    v = r.views["nickel.over_temp"]
    assert r.forced == {} and v.status is InterlockStatus.BYPASSED and v.causes
    assert v.bypass_remaining_s == pytest.approx(30.0)
    r = e.evaluate(inputs(temperature=bad()), 60.0, 60.0)
    assert r.forced == {"nickel": frozenset({"heater"})}
    assert [ev.state for ev in r.events] == ["bypass_expired", "tripped"]


@pytest.mark.parametrize(
    ("kw", "role", "duration", "comment", "why"),
    [
        ({"bypassable": False}, "engineer", 60.0, "x", "not bypassable"),
        ({}, "operator", 60.0, "x", "engineer"),
        ({}, "engineer", 7200.0, "x", "exceeds the maximum"),
        ({}, "engineer", 0.0, "x", "positive"),
        ({}, "engineer", 60.0, "  ", "comment"),
    ],
)
def test_bypass_refusals(kw: dict[str, object], role: str, duration: float, comment: str, why: str) -> None:
    e = engine(il(**kw))
    r = e.bypass("nickel", "over_temp", "erik", role, duration, 0.0, 0.0, comment=comment)
    assert not r.ok and why in r.reason
    assert e.states["nickel.over_temp"].bypass_until is None


def test_cancel_bypass_trips_again_on_the_next_scan() -> None:
    e = engine(il())
    assert e.bypass("nickel", "over_temp", "erik", "admin", 60.0, 0.0, 0.0, comment="test").ok
    e.evaluate(inputs(temperature=good(70.0)), 1.0, 1.0)
    assert e.cancel_bypass("nickel", "over_temp", "erik", 2.0, 2.0).ok
    r = e.evaluate(inputs(temperature=good(70.0)), 3.0, 3.0)
    assert r.forced and [ev.state for ev in r.events] == ["tripped"]


def test_missing_tank_inputs_trip_everything() -> None:
    e = engine(il())
    r = e.evaluate({}, 0.0, 0.0)
    assert r.forced == {"nickel": frozenset({"heater"})}
