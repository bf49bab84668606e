"""The alarm engine on a fake clock: delays, deadbands, chattering, operator commands, suppression, floods."""

from __future__ import annotations

import pytest

from alarms.definitions import HISTORIAN_BUFFERING, SCAN_OVERRUN
from alarms.engine import AlarmEngine
from alarms.model import AlarmState, Trigger
from alarms.stream import AlarmEvent, FloodEvent
from scada.config.alarms import AlarmSettings
from scada.tags import NE107, QualityReason, SubscriptionClosed
from tests.alarms.support import LEVEL, PH, TEMP, U_TEMP, FakeClock, bad, good, make_plant, normal_values

SP = {"l1.t.temp.sp": 55.0}


def run(engine: AlarmEngine, clock: FakeClock, seconds: float, dt: float = 1.0, **vals: float) -> list:
    """Scan every ``dt`` for ``seconds`` with the given values; return every emitted item."""
    out = []
    t_end = clock() + seconds
    while clock() < t_end - 1e-9:
        clock.advance(dt)
        out += engine.evaluate(clock(), normal_values(**vals), SP)
    return out


def ids(items: list, trigger: Trigger | None = None) -> list[str]:
    return [e.alarm_id for e in items if isinstance(e, AlarmEvent) and (trigger is None or e.trigger is trigger)]


# ---------------------------------------------------------------- limits, deadband, delays


def test_high_alarm_waits_for_on_delay_then_clears_with_deadband(engine: AlarmEngine, clock: FakeClock) -> None:
    assert run(engine, clock, 4, temp=60.5) == []  # above H for 4 s < 5 s on-delay
    ev = run(engine, clock, 2, temp=60.5)
    assert ids(ev) == ["t.temp.h"]
    assert engine.status("t.temp.h").state is AlarmState.UNACK
    assert engine.status("t.temp.h").value == 60.5
    # back below the limit but inside the deadband: still active
    assert "t.temp.h" not in ids(run(engine, clock, 10, temp=59.7))
    assert engine.status("t.temp.h").active
    ev = run(engine, clock, 1, temp=59.4)
    assert "t.temp.h" in ids(ev, Trigger.CLEAR)
    assert engine.status("t.temp.h").state is AlarmState.RTN_UNACK


def test_delay_restarts_when_the_condition_drops_out(engine: AlarmEngine, clock: FakeClock) -> None:
    for _ in range(5):
        run(engine, clock, 3, temp=61.0)
        run(engine, clock, 1, temp=55.0)
    assert engine.status("t.temp.h").state is AlarmState.NORMAL


def test_low_low_and_off_delay() -> None:
    clock = FakeClock()

    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"][0].update(on_delay_s=0, off_delay_s=10)

    e = AlarmEngine(make_plant(edit), clock)
    e.evaluate(clock(), normal_values(), SP)
    assert set(ids(run(e, clock, 1, temp=44.0))) == {"t.temp.l", "t.temp.ll"}
    assert ids(run(e, clock, 9, temp=55.0)) == []  # off-delay holds it
    assert set(ids(run(e, clock, 2, temp=55.0), Trigger.CLEAR)) == {"t.temp.l", "t.temp.ll"}


def test_chattering_input_does_not_flood_thanks_to_deadband_and_delay(engine: AlarmEngine, clock: FakeClock) -> None:
    noisy = [60.1, 59.9, 60.2, 59.8] * 50  # noise around the H limit, every 0.25 s
    events = []
    for v in noisy:
        clock.advance(0.25)
        events += engine.evaluate(clock(), normal_values(temp=v), {"l1.t.temp.sp": 60.0})
    assert ids(events) == ["t.temp.h"]  # one activation, never cleared inside the deadband
    assert engine.summary().chattering == []


def test_without_deadband_a_chattering_alarm_stays_one_alarm_and_is_reported() -> None:
    clock = FakeClock()

    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"][0].update(deadband=0, on_delay_s=0)

    e = AlarmEngine(make_plant(edit), clock)
    e.evaluate(clock(), normal_values(), SP)
    events = []
    for v in [60.5, 59.5] * 10:
        clock.advance(2.0)
        events += e.evaluate(clock(), normal_values(temp=v), {"l1.t.temp.sp": 60.0})
    acts = ids(events, Trigger.ACTIVATE)
    assert acts == ["t.temp.h"] * 10
    assert [a.alarm_id for a in e.active()] == ["t.temp.h"]  # one row on the list
    st = e.status("t.temp.h")
    assert st.count == 10  # ... with the repeats counted
    s = e.summary()
    assert s.chattering[0].alarm_id == "t.temp.h" and s.chattering[0].activations_window >= 3
    assert s.alarms_last_10min == 1  # a repeat is not a new alarm for flood counting
    assert not e.flooding()


def test_bad_quality_holds_limit_alarm_and_raises_quality_alarm(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 6, temp=61.0)
    assert engine.status("t.temp.h").active
    events = []
    for _ in range(6):
        clock.advance(1)
        vals = normal_values() | {TEMP: bad(QualityReason.SENSOR_FAILURE, ne107=NE107.FAILURE, detail="3.2 mA")}
        events += engine.evaluate(clock(), vals, SP)
    assert ids(events) == ["t.temperature.quality"]
    assert engine.status("t.temp.h").active  # never cleared because the sensor died
    q = engine.status("t.temperature.quality")
    assert "sensor failure" in q.message and "NE 107 F" in q.message and "3.2 mA" in q.message


def test_waiting_for_initial_data_is_not_a_quality_alarm(small_plant, clock: FakeClock) -> None:
    e = AlarmEngine(small_plant, clock)
    vals = normal_values() | {TEMP: bad(QualityReason.WAITING_FOR_INITIAL_DATA)}
    for _ in range(20):
        clock.advance(1)
        assert e.evaluate(clock(), vals, SP) == []


def test_comm_loss_quality_alarm(engine: AlarmEngine, clock: FakeClock) -> None:
    events = []
    for _ in range(6):
        clock.advance(1)
        events += engine.evaluate(clock(), normal_values() | {PH: bad(QualityReason.COMM_FAILURE)}, SP)
    assert ids(events) == ["t.ph.quality"]
    assert "comm failure" in engine.status("t.ph.quality").message


def test_deviation_uses_the_loop_setpoint(engine: AlarmEngine, clock: FakeClock) -> None:
    events = []
    for _ in range(12):
        clock.advance(1)
        events += engine.evaluate(clock(), normal_values(temp=58.5), {"l1.t.temp.sp": 55.0})
    assert ids(events) == ["t.temp_dev"]
    # the operator moves the setpoint: the deviation is gone
    clock.advance(1)
    assert ids(engine.evaluate(clock(), normal_values(temp=58.5), {"l1.t.temp.sp": 58.0})) == ["t.temp_dev"]
    assert not engine.status("t.temp_dev").active
    # no setpoint at all: held, not guessed
    clock.advance(1)
    assert engine.evaluate(clock(), normal_values(temp=70.0), {}) == []


def test_rate_of_change_alarm() -> None:
    clock = FakeClock()

    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"].append({"id": "temp_rate", "kind": "rate", "source": "temperature",
                                         "rate_per_min": 2.0, "rate_window_s": 30})

    e = AlarmEngine(make_plant(edit), clock)
    temp = 55.0
    events = []
    for _ in range(60):  # 1 degC/min: fine
        clock.advance(1)
        temp += 1 / 60
        events += e.evaluate(clock(), normal_values(temp=temp), SP)
    assert "t.temp_rate" not in ids(events)
    for _ in range(30):  # 4 degC/min: alarm
        clock.advance(1)
        temp += 4 / 60
        events += e.evaluate(clock(), normal_values(temp=temp), SP)
    assert "t.temp_rate" in ids(events, Trigger.ACTIVATE)


def test_discrete_alarm(engine: AlarmEngine, clock: FakeClock) -> None:
    ev = run(engine, clock, 1, level=True)
    assert ids(ev) == ["t.level_low"]
    assert engine.status("t.level_low").message == "Level low"
    assert ids(run(engine, clock, 1, level=False)) == ["t.level_low"]


# ---------------------------------------------------------------- operator commands


def test_acknowledge_and_refusals(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    assert engine.annunciating
    r = engine.ack("t.level_low", "", now=clock())
    assert not r.ok and "user" in r.reason
    r = engine.ack("nope", "ann", now=clock())
    assert not r.ok and "unknown alarm" in r.reason
    r = engine.ack("t.level_low", "ann", "topping up", now=clock())
    assert r.ok and r.events[0].state is AlarmState.ACKED
    assert r.events[0].user == "ann" and r.events[0].comment == "topping up"
    assert not engine.annunciating
    r = engine.ack("t.level_low", "bob", now=clock())
    assert not r.ok and "already acknowledged" in r.reason
    r = engine.ack("t.temp.h", "bob", now=clock())  # a normal alarm
    assert not r.ok and "already acknowledged" in r.reason
    assert engine.status("t.level_low").ack_user == "ann"


def test_annunciation_stays_on_after_return_to_normal_until_acknowledged(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    run(engine, clock, 1, level=False)
    assert engine.status("t.level_low").state is AlarmState.RTN_UNACK
    assert engine.annunciating and [a.alarm_id for a in engine.active()] == ["t.level_low"]
    assert engine.active()[0].annunciate
    r = engine.ack("t.level_low", "ann", now=clock())
    assert r.ok and r.events[0].state is AlarmState.NORMAL
    assert not engine.annunciating and engine.active() == []


def test_repeat_while_unacknowledged_is_one_alarm(engine: AlarmEngine, clock: FakeClock) -> None:
    for _ in range(5):
        run(engine, clock, 1, level=True)
        run(engine, clock, 1, level=False)
    st = engine.status("t.level_low")
    assert st.count == 5 and st.state is AlarmState.RTN_UNACK
    assert engine.summary().alarms_last_10min == 1


def test_ack_all_by_area(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 6, level=True, temp=61, u_temp=85)
    r = engine.ack_all("ann", area="a1", now=clock())
    assert r.ok and {e.alarm_id for e in r.events} == {"t.level_low", "t.temp.h"}
    assert [a.alarm_id for a in engine.active() if a.annunciate] == ["u.temperature_limits.hh", "u.temperature_limits.h"]
    assert not engine.ack_all("ann", area="a1", now=clock()).ok


def test_shelve_refusals_and_expiry(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    assert "reason" in engine.shelve("t.level_low", "ann", "", 600, now=clock()).reason
    assert "user" in engine.shelve("t.level_low", "", "sensor swap", 600, now=clock()).reason
    r = engine.shelve("t.level_low", "ann", "sensor swap", 9 * 3600, now=clock())
    assert not r.ok and "maximum shelve time" in r.reason
    assert "unknown" in engine.shelve("x.y", "ann", "why", 60, now=clock()).reason
    r = engine.shelve("t.level_low", "ann", "level switch being replaced", 600, now=clock())
    assert r.ok and r.events[0].state is AlarmState.SHELVED
    assert r.events[0].shelved_until == clock() + 600 and r.events[0].shelve_reason == "level switch being replaced"
    assert engine.active() == [] and not engine.annunciating
    assert [a.alarm_id for a in engine.alarms([AlarmState.SHELVED])] == ["t.level_low"]
    assert "shelved" in engine.ack("t.level_low", "bob", now=clock()).reason
    # the condition is still tracked while shelved; at expiry the alarm returns as a new one
    events = run(engine, clock, 599, level=True)
    assert ids(events) == []
    events = run(engine, clock, 2, level=True)
    assert [(e.trigger, e.state, e.user, e.comment) for e in events if isinstance(e, AlarmEvent)] == [
        (Trigger.UNSHELVE, AlarmState.UNACK, "system", "shelve expired")]
    assert engine.status("t.level_low").shelved_by is None


def test_shelved_alarm_that_cleared_returns_to_normal(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    engine.shelve("t.level_low", "ann", "known", 60, now=clock())
    run(engine, clock, 5, level=False)
    r = engine.unshelve("t.level_low", "ann", now=clock())
    assert r.ok and r.events[0].state is AlarmState.NORMAL
    assert not engine.unshelve("t.level_low", "ann", now=clock()).ok


def test_out_of_service(engine: AlarmEngine, clock: FakeClock) -> None:
    assert "reason" in engine.set_out_of_service("t.level_low", "tech", True, "", now=clock()).reason
    r = engine.set_out_of_service("t.level_low", "tech", True, "switch removed", now=clock())
    assert r.ok and r.events[0].state is AlarmState.OUT_OF_SERVICE and r.events[0].oos_reason == "switch removed"
    assert ids(run(engine, clock, 3, level=True)) == []
    r = engine.set_out_of_service("t.level_low", "tech", False, now=clock())
    assert r.ok and r.events[0].state is AlarmState.UNACK  # active on return: annunciated


def test_log_priority_is_journaled_but_never_listed_or_annunciated() -> None:
    clock = FakeClock()

    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"][2]["priority"] = "log"

    e = AlarmEngine(make_plant(edit), clock)
    sub = e.subscribe("journal")
    e.evaluate(clock.advance(1), normal_values(level=True), SP)
    items = sub.drain()
    assert [(x.alarm_id, x.state) for x in items] == [("t.level_low", AlarmState.ACKED)]
    assert e.active() == [] and not e.annunciating
    assert "log-only" in e.ack("t.level_low", "ann", now=clock()).reason
    e.evaluate(clock.advance(1), normal_values(level=False), SP)
    assert [(x.alarm_id, x.state) for x in sub.drain()] == [("t.level_low", AlarmState.NORMAL)]


# ---------------------------------------------------------------- suppression by design


def test_tank_out_of_service_suppresses_its_alarms(clock: FakeClock) -> None:
    def edit(d: dict) -> None:
        d["tanks"][0]["in_service"] = False

    e = AlarmEngine(make_plant(edit), clock)
    events = e.evaluate(clock.advance(1), normal_values(level=True), SP)
    assert {x.state for x in events if x.tank == "t"} == {AlarmState.SUPPRESSED}
    assert all(x.suppress_reason == "tank t out of service" for x in events if x.tank == "t")
    assert e.active() == []


def test_runtime_tank_suppression_and_release(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    assert engine.set_tank_suppressed("t", "tank idle").ok
    assert not engine.set_tank_suppressed("zz", "idle").ok
    run(engine, clock, 1, level=True)
    st = engine.status("t.level_low")
    assert st.state is AlarmState.SUPPRESSED and st.suppress_reason == "tank idle"
    engine.set_tank_suppressed("t", None)
    ev = run(engine, clock, 1, level=True)
    assert ("t.level_low", AlarmState.UNACK) in [(x.alarm_id, x.state) for x in ev]
    assert engine.status("t.temp.h").state is AlarmState.NORMAL


def test_suppress_when_condition(clock: FakeClock) -> None:
    def edit(d: dict) -> None:
        d["tanks"][0]["alarms"][2]["suppress_when"] = ["not load_present"]

    e = AlarmEngine(make_plant(edit), clock)
    vals = normal_values(level=True) | {"l1.t.load_present": good(False)}
    e.evaluate(clock.advance(1), vals, SP)
    st = e.status("t.level_low")
    assert st.state is AlarmState.SUPPRESSED and st.suppress_reason == "suppressed while not load_present"
    e.evaluate(clock.advance(1), normal_values(level=True), SP)
    assert e.status("t.level_low").state is AlarmState.UNACK


def test_custom_suppression_predicate(small_plant, clock: FakeClock) -> None:
    e = AlarmEngine(small_plant, clock, suppress=lambda d, v: "night shift" if d.id == "t.level_low" else None)
    e.evaluate(clock.advance(1), normal_values(level=True), SP)
    assert e.status("t.level_low").state is AlarmState.SUPPRESSED


# ---------------------------------------------------------------- external, interlock, system alarms


def test_system_alarms_by_set_condition(engine: AlarmEngine, clock: FakeClock) -> None:
    r = engine.set_condition(SCAN_OVERRUN, True, value=0.41, message="scan took 410 ms", now=clock())
    assert r.ok and r.events[0].state is AlarmState.UNACK and r.events[0].message == "scan took 410 ms"
    assert r.events[0].value == 0.41
    assert not engine.set_condition("nope", True).ok
    assert "evaluated from" in engine.set_condition("t.temp.h", True).reason
    d = engine.define_external("system.disk_full", priority="low", message="Disk almost full", on_delay_s=30)
    assert d.area == "system"
    assert engine.set_condition("system.disk_full", True, now=clock()).events == ()
    assert engine.tick(clock.advance(31))[0].alarm_id == "system.disk_full"
    with pytest.raises(ValueError):
        engine.define_external("t.temp.h")
    r = engine.set_condition(HISTORIAN_BUFFERING, False, now=clock())
    assert r.ok and r.events == ()


def test_interlock_trip_carries_first_out_and_estop_is_one_alarm(engine: AlarmEngine, clock: FakeClock) -> None:
    r = engine.set_interlock("t", "over_temp", True, first_out="temperature > 68", now=clock())
    assert r.ok and "first out: temperature > 68" in r.events[0].message
    assert r.events[0].priority == "critical"
    # e-stop trips every tank: one line alarm
    assert engine.set_interlock("t", "estop", True, first_out="line.estop", now=clock()).events[0].alarm_id == \
        "line.interlock.estop"
    assert engine.set_interlock("u", "estop", True, now=clock()).events == ()
    assert engine.set_interlock("t", "estop", False, now=clock()).events == ()  # u still tripped
    ev = engine.set_interlock("u", "estop", False, now=clock()).events
    assert ev[0].trigger is Trigger.CLEAR
    assert not engine.set_interlock("t", "nope", True).ok


# ---------------------------------------------------------------- lists, flood, metrics, stream


def test_active_list_sorted_by_priority_then_newest(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 6, temp=61)       # t.temp.h (high)
    run(engine, clock, 1, level=True, temp=61)   # t.level_low (critical)
    engine.set_condition(HISTORIAN_BUFFERING, True, now=clock.advance(1))  # medium
    engine.set_condition(SCAN_OVERRUN, True, now=clock.advance(1))  # high, newer than t.temp.h
    assert [a.alarm_id for a in engine.active()] == [
        "t.level_low", SCAN_OVERRUN, "t.temp.h", HISTORIAN_BUFFERING]


def test_flood_starts_above_10_in_10_minutes_and_ends_below_5() -> None:
    clock = FakeClock()
    e = AlarmEngine(make_plant(), clock)
    for i in range(11):
        e.define_external(f"ext.a{i}", area="a9", priority="low")
    items = []
    for i in range(11):
        r = e.set_condition(f"ext.a{i}", True, now=clock.advance(10))
        assert r.ok
        items += e.tick(clock())
    floods = [x for x in items if isinstance(x, FloodEvent)]
    assert [(f.area, f.flooding, f.count) for f in floods] == [("a9", True, 11)]
    assert e.summary().flood == {"a9": True} and e.flooding("a9")
    assert e.tick(clock.advance(500)) == []  # 4 min... still > 5 in window
    # after 10 minutes the early ones age out
    out = e.tick(clock.advance(100))
    assert [(f.flooding) for f in out if isinstance(f, FloodEvent)] == [False]
    assert not e.flooding()


def test_standing_alarms(engine: AlarmEngine, clock: FakeClock) -> None:
    engine.set_condition(SCAN_OVERRUN, True, now=clock())
    assert engine.summary(clock() + 3600).standing == []
    assert engine.summary(clock() + 25 * 3600).standing == [SCAN_OVERRUN]
    e2 = AlarmEngine(make_plant(), clock, settings=AlarmSettings(standing_s=60))
    e2.set_condition(SCAN_OVERRUN, True, now=clock())
    assert e2.summary(clock() + 61).standing == [SCAN_OVERRUN]


def test_summary_counts(engine: AlarmEngine, clock: FakeClock) -> None:
    run(engine, clock, 1, level=True)
    s = engine.summary()
    assert s.by_state["unack"] == 1 and s.by_priority["critical"] == 1 and s.unacknowledged == 1
    assert s.annunciating and s.total == len(engine.definitions)


async def test_stream_is_lossless_and_overflow_is_reported(engine: AlarmEngine, clock: FakeClock) -> None:
    sub = engine.subscribe("hmi")
    small = engine.subscribe("slow", maxsize=10)
    for i in range(20):
        engine.define_external(f"ext.s{i}", area="zz")
        engine.set_condition(f"ext.s{i}", True, now=clock.advance(1))
    got = await sub.get(wait_s=0.1)
    assert [x.alarm_id for x in got if isinstance(x, AlarmEvent)] == [f"ext.s{i}" for i in range(20)]
    assert engine.stream_overflows == 1
    with pytest.raises(SubscriptionClosed, match="overflow"):
        await small.get(wait_s=0.1)
    assert await sub.get(wait_s=0.01) == []


async def test_stream_async_iteration(engine: AlarmEngine, clock: FakeClock) -> None:
    sub = engine.subscribe()
    engine.set_condition(SCAN_OVERRUN, True, now=clock())
    it = sub.__aiter__()
    first = await it.__anext__()
    assert first.alarm_id == SCAN_OVERRUN


def test_u_tank_defaults_below_interlock(engine: AlarmEngine, clock: FakeClock) -> None:
    assert engine.status("u.temperature_limits.hh").defn.limit == 81.0  # (80 + 82) / 2, below the trip
    assert ids(run(engine, clock, 6, u_temp=81.5), Trigger.ACTIVATE) == ["u.temperature_limits.hh",
                                                                         "u.temperature_limits.h"]
    assert engine.status("u.temperature_limits.hh").defn.area == "a2"
    assert U_TEMP in [d.tag for d in engine.definitions]
    assert LEVEL in [d.tag for d in engine.definitions]


def test_interlock_alarm_from_the_scan_engine_tags(engine: AlarmEngine, clock: FakeClock) -> None:
    from scada.tags import Quality, Sample

    def il(v: bool, detail: str = "") -> Sample:
        return Sample(value=v, quality=Quality.GOOD, server_ts=clock(), detail=detail)

    vals = normal_values() | {"l1.t.interlock.over_temp": il(True, "first out: temperature > 68"),
                              "l1.t.interlock.estop": il(False), "l1.u.interlock.estop": il(True)}
    ev = engine.evaluate(clock.advance(1), vals, SP)
    got = {e.alarm_id: e.message for e in ev}
    assert "first out: temperature > 68" in got["t.interlock.over_temp"]
    assert "line.interlock.estop" in got
    vals |= {"l1.t.interlock.over_temp": il(False), "l1.u.interlock.estop": il(False)}
    ev = engine.evaluate(clock.advance(1), vals, SP)
    assert {e.alarm_id for e in ev if e.trigger is Trigger.CLEAR} == {"t.interlock.over_temp", "line.interlock.estop"}


def test_deviation_reads_the_published_setpoint_tag(engine: AlarmEngine, clock: FakeClock) -> None:
    events = []
    for _ in range(12):
        vals = normal_values(temp=58.5) | {"l1.t.temp.sp": good(55.0)}
        events += engine.evaluate(clock.advance(1), vals)
    assert "t.temp_dev" in ids(events, Trigger.ACTIVATE)
