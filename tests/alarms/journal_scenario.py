"""One journal scenario run against any event store: the in-memory fake, SQLite and PostgreSQL.

Builds alarms in every interesting state, journals them through :class:`JournalWriter`, restores a new
engine from the store and checks that every alarm is exactly as it was.
"""

from __future__ import annotations

import asyncio

from alarms.definitions import HISTORIAN_BUFFERING, SCAN_OVERRUN
from alarms.engine import AlarmEngine
from alarms.journal import JournalWriter, query_journal, restore_from_journal
from alarms.model import AlarmState
from tests.alarms.support import FakeClock, make_plant, normal_values

SP = {"l1.t.temp.sp": 60.0}
T0 = 1_700_000_000.0
FIELDS = ("state", "active", "count", "since", "ack_user", "ack_ts", "shelved_by", "shelve_reason",
          "shelved_until", "suppress_reason", "oos_by", "oos_reason", "message", "value", "priority",
          "area", "tank", "changed_ts")


def snapshot(engine: AlarmEngine) -> dict[str, tuple]:
    """Every alarm's state (the live value of a normal alarm is not journaled, so it is left out)."""
    return {a.alarm_id: tuple(getattr(a, f) for f in FIELDS if a.state is not AlarmState.NORMAL or f != "value")
            for a in engine.alarms()}


async def build_states(engine: AlarmEngine, clock: FakeClock) -> None:
    """Drive ``engine`` into: unack, acked (with comment), rtn_unack x2, shelved, out of service."""
    for _ in range(6):
        engine.evaluate(clock.advance(1), normal_values(temp=61.0, level=True), SP)
    assert engine.ack("t.temp.h", "ann", "heater contactor stuck", now=clock.advance(1)).ok
    for _ in range(2):
        engine.set_condition(SCAN_OVERRUN, True, value=0.4, message="scan 400 ms", now=clock.advance(1))
        engine.set_condition(SCAN_OVERRUN, False, now=clock.advance(1))
    engine.set_condition(HISTORIAN_BUFFERING, True, now=clock.advance(1))
    assert engine.shelve(HISTORIAN_BUFFERING, "bob", "database maintenance", 3600, now=clock.advance(1)).ok
    assert engine.set_out_of_service("u.temperature_limits.h", "tech", True, "probe recalibration",
                                     now=clock.advance(1)).ok
    engine.evaluate(clock.advance(1), normal_values(temp=61.0, level=True), SP)


async def run_journal_scenario(store: object) -> None:
    clock = FakeClock(T0)
    plant = make_plant()
    engine = AlarmEngine(plant, clock)
    writer = JournalWriter(engine, store, flush_s=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run())
    await build_states(engine, clock)
    await asyncio.sleep(0.05)
    writer.stop()
    await task
    assert writer.write_errors == 0 and writer.overflows == 0
    before = snapshot(engine)
    assert before["t.level_low"][0] is AlarmState.UNACK
    assert before["t.temp.h"][0] is AlarmState.ACKED
    assert before[SCAN_OVERRUN][0] is AlarmState.RTN_UNACK and before[SCAN_OVERRUN][2] == 2
    assert before[HISTORIAN_BUFFERING][0] is AlarmState.SHELVED
    assert before["u.temperature_limits.h"][0] is AlarmState.OUT_OF_SERVICE

    # ---- restart: a new engine restored from the journal is exactly the old one
    engine2 = AlarmEngine(plant, clock)
    res = await restore_from_journal(engine2, store)  # type: ignore[arg-type]
    assert res.unknown == ()
    assert res.restored >= 5
    assert snapshot(engine2) == before
    assert engine2.annunciating
    # the same values on the first scan after the restart change nothing
    first = engine2.evaluate(clock.advance(1), normal_values(temp=61.0, level=True), SP)
    assert first == [], first
    assert engine2.ack("t.level_low", "ann", now=clock()).ok
    assert not engine2.ack("t.temp.h", "ann", now=clock()).ok  # still acknowledged

    # ---- queries: time range, tank, priority, state, alarm
    rows = await query_journal(store, alarm_id="t.temp.h", newest_first=False)  # type: ignore[arg-type]
    assert [(r.state, r.user) for r in rows] == [(AlarmState.UNACK, None), (AlarmState.ACKED, "ann")]
    assert rows[1].comment == "heater contactor stuck"
    acked = await query_journal(store, state="acked")  # type: ignore[arg-type]
    assert {r.alarm_id for r in acked} == {"t.temp.h"}
    crit = await query_journal(store, priority="critical")  # type: ignore[arg-type]
    assert {r.alarm_id for r in crit} == {"t.level_low"}
    tank_u = await query_journal(store, tank="u")  # type: ignore[arg-type]
    assert [(r.alarm_id, r.oos_reason) for r in tank_u] == [("u.temperature_limits.h", "probe recalibration")]
    window = await query_journal(store, start=T0 + 8, end=T0 + 10, newest_first=False)  # type: ignore[arg-type]
    assert [(r.alarm_id, r.state) for r in window] == [(SCAN_OVERRUN, AlarmState.UNACK),
                                                       (SCAN_OVERRUN, AlarmState.RTN_UNACK)]
    shelved = await query_journal(store, state=AlarmState.SHELVED)  # type: ignore[arg-type]
    assert shelved[0].shelved_by == "bob" and shelved[0].shelved_until is not None
