"""Journal: conversion both ways, writer (batching, retries, overflow resync), restore, queries (in memory)."""

from __future__ import annotations

import asyncio

from alarms.definitions import SCAN_OVERRUN
from alarms.engine import AlarmEngine
from alarms.journal import (
    CHECKPOINT_SOURCE,
    OVERFLOW_SOURCE,
    JournalWriter,
    from_event,
    restore_from_journal,
    to_event,
)
from alarms.model import AlarmState, Trigger
from alarms.stream import AlarmEvent, FloodEvent
from scada.config.alarms import AlarmSettings
from scada.events import EventKind
from tests.alarms.journal_scenario import run_journal_scenario, snapshot
from tests.alarms.support import FakeClock, FakeEventStore, make_plant, normal_values


def test_alarm_event_round_trip() -> None:
    ev = AlarmEvent(ts=10.0, alarm_id="t.temp.h", trigger=Trigger.SHELVE, state=AlarmState.SHELVED,
                    prev_state=AlarmState.UNACK, active=True, priority="high", area="a1", tank="t",
                    message="Tank T: temperature high (> 60 degC)", value=60.4, user="bob", comment="probe swap",
                    count=3, since=5.0, shelved_by="bob", shelve_reason="probe swap", shelved_until=610.0,
                    changed_ts=10.0)
    e = to_event(ev)
    assert (e.kind, e.source, e.state, e.priority, e.tank, e.area, e.user, e.value) == (
        EventKind.ALARM, "t.temp.h", "shelved", "high", "t", "a1", "bob", 60.4)
    assert e.data["trigger"] == "shelve" and e.data["prev_state"] == "unack" and e.data["count"] == 3
    assert from_event(e) == ev


def test_flood_event_round_trip() -> None:
    f = FloodEvent(ts=1.0, area="a1", flooding=True, count=11)
    e = to_event(f)
    assert e.kind is EventKind.SYSTEM and e.state == "flood" and "a1" in e.message
    assert from_event(e) == f


async def test_journal_round_trip_and_restore_in_memory() -> None:
    await run_journal_scenario(FakeEventStore())


async def test_failed_writes_are_retried_not_dropped() -> None:
    clock = FakeClock()
    store = FakeEventStore()
    store.fail_next = 2
    engine = AlarmEngine(make_plant(), clock)
    writer = JournalWriter(engine, store, flush_s=0.01, retry_s=0.01)
    task = asyncio.create_task(writer.run())
    engine.set_condition(SCAN_OVERRUN, True, now=clock.advance(1))
    await asyncio.sleep(0.1)
    writer.stop()
    await task
    assert writer.write_errors == 2 and "database down" in writer.last_error
    transitions = [e for e in store.events if e.source == SCAN_OVERRUN and e.data["trigger"] != "snapshot"]
    assert [e.state for e in transitions] == ["unack"]


async def test_stream_overflow_is_journaled_and_resynced() -> None:
    clock = FakeClock()
    store = FakeEventStore()
    engine = AlarmEngine(make_plant(), clock, settings=AlarmSettings(stream_maxsize=10))
    writer = JournalWriter(engine, store, flush_s=0.01)
    for i in range(30):  # nobody drains: the journal's queue overflows
        engine.define_external(f"ext.e{i}", area="zz")
        engine.set_condition(f"ext.e{i}", True, now=clock.advance(1))
    await writer.flush()
    assert writer.overflows == 1 and engine.stream_overflows == 1
    overflow = [e for e in store.events if e.source == OVERFLOW_SOURCE]
    assert len(overflow) == 1 and "overflow" in overflow[0].message
    assert any(e.source == CHECKPOINT_SOURCE for e in store.events)
    # the resync snapshot alone is enough to restore every alarm
    engine2 = AlarmEngine(make_plant(), clock)
    for i in range(30):
        engine2.define_external(f"ext.e{i}", area="zz")
    await restore_from_journal(engine2, store)
    assert snapshot(engine2) == snapshot(engine)


async def test_restore_reads_back_only_to_the_last_checkpoint() -> None:
    clock = FakeClock()
    store = FakeEventStore()
    engine = AlarmEngine(make_plant(), clock)
    engine.evaluate(clock.advance(1), normal_values(level=True), {})
    w1 = JournalWriter(engine, store, flush_s=0.01)
    await w1.flush()
    # a new writer (a restart) writes a checkpoint with the snapshot; older records are not needed
    engine.ack("t.level_low", "ann", now=clock.advance(1))
    w2 = JournalWriter(engine, store, flush_s=0.01)
    task = asyncio.create_task(w2.run())
    await asyncio.sleep(0.05)
    w2.stop()
    await task
    store.events = [e for e in store.events if e.id and e.id > 1]  # even with the old history gone...
    engine2 = AlarmEngine(make_plant(), clock)
    await restore_from_journal(engine2, store)
    assert engine2.status("t.level_low").state is AlarmState.ACKED  # ...the checkpoint restores it
    assert engine2.status("t.level_low").ack_user == "ann"


async def test_restore_skips_alarms_no_longer_defined() -> None:
    clock = FakeClock()
    store = FakeEventStore()
    engine = AlarmEngine(make_plant(), clock)
    engine.define_external("ext.gone")
    w = JournalWriter(engine, store)
    engine.set_condition("ext.gone", True, now=clock.advance(1))
    await w.flush()
    res = await restore_from_journal(AlarmEngine(make_plant(), clock), store)
    assert res.unknown == ("ext.gone",)


async def test_condition_that_cleared_while_down_becomes_rtn_unack_on_first_scan() -> None:
    clock = FakeClock()
    store = FakeEventStore()
    engine = AlarmEngine(make_plant(), clock)
    w = JournalWriter(engine, store)
    engine.evaluate(clock.advance(1), normal_values(level=True), {})
    await w.flush()
    engine2 = AlarmEngine(make_plant(), clock)
    await restore_from_journal(engine2, store)
    assert engine2.status("t.level_low").state is AlarmState.UNACK
    ev = engine2.evaluate(clock.advance(60), normal_values(level=False), {})
    assert [(e.alarm_id, e.state) for e in ev] == [("t.level_low", AlarmState.RTN_UNACK)]
    assert engine2.annunciating
