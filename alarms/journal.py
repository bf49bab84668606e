"""The alarm journal: every transition as a :class:`scada.events.Event`, stored by the historian.

* :func:`to_event` / :func:`from_event` convert both ways; the event's ``data`` holds the alarm's complete
  state after the transition, so the *latest* record of each alarm is enough to restore it.
* :class:`JournalWriter` is the lossless consumer of the engine's stream: it batches records into
  ``store.write_events``; a failed write is retried (never dropped); a stream overflow is written as a
  ``system`` event and followed by a snapshot of every alarm that is not normal.
* Checkpoints: the writer starts with (and periodically writes) a ``alarms.checkpoint`` marker followed by
  a snapshot, so :func:`restore_from_journal` reads newest-first only back to the last checkpoint.
* :func:`query_journal` is the thin query helper (time range, tank, priority, state, alarm).

The store is anything with the historian's two event methods (:class:`EventStore`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from alarms.engine import AlarmEngine, RestoreResult
from alarms.model import AlarmState, Trigger
from alarms.stream import AlarmEvent, FloodEvent, StreamItem
from scada.events import Event, EventKind
from scada.tags import SubscriptionClosed

log = logging.getLogger(__name__)

FLOOD_SOURCE = "alarms.flood"
CHECKPOINT_SOURCE = "alarms.checkpoint"
OVERFLOW_SOURCE = "alarms.journal"

_DATA_FIELDS = ("count", "since", "ack_user", "ack_ts", "shelved_by", "shelve_reason", "shelved_until",
                "suppress_reason", "oos_by", "oos_reason", "changed_ts")


class EventStore(Protocol):
    """The part of the historian the journal needs."""

    async def write_events(self, events: Sequence[Event]) -> Any:
        """Store events (the historian buffers them to disk when the database is down)."""

    async def query_events(self, **filters: Any) -> list[Event]:
        """Events matching ``start``, ``end``, ``kinds``, ``tank``, ``priority``, ``state``, ``source``,
        ``limit``, ``offset``, ``newest_first``."""


def to_event(item: StreamItem) -> Event:
    """One journal record for one stream item."""
    if isinstance(item, FloodEvent):
        return Event(
            ts=item.ts, kind=EventKind.SYSTEM, source=FLOOD_SOURCE, area=item.area,
            state="flood" if item.flooding else "normal", value=float(item.count),
            message=(f"Alarm flood in area {item.area}: {item.count} alarms in 10 minutes" if item.flooding
                     else f"Alarm flood in area {item.area} ended"),
            data={"flooding": item.flooding, "count": item.count},
        )
    data: dict[str, Any] = {
        "trigger": item.trigger.value if item.trigger else "snapshot",
        "prev_state": item.prev_state.value,
        "active": item.active,
        "annunciate": item.annunciate,
    }
    for name in _DATA_FIELDS:
        v = getattr(item, name)
        if v is not None:
            data[name] = v
    return Event(
        ts=item.ts, kind=EventKind.ALARM, source=item.alarm_id, message=item.message, tank=item.tank,
        area=item.area, priority=item.priority, state=item.state.value, value=item.value, user=item.user,
        comment=item.comment, data=data,
    )


def from_event(ev: Event) -> AlarmEvent | FloodEvent | None:
    """The stream item a journal record was made from (``None`` for other events)."""
    if ev.kind is EventKind.SYSTEM and ev.source == FLOOD_SOURCE:
        return FloodEvent(ts=ev.ts, area=ev.area or "", flooding=bool(ev.data.get("flooding")),
                          count=int(ev.data.get("count", 0)))
    if ev.kind is not EventKind.ALARM or ev.state is None:
        return None
    d = ev.data or {}
    trig = d.get("trigger")
    return AlarmEvent(
        ts=ev.ts, alarm_id=ev.source,
        trigger=None if trig in (None, "snapshot") else Trigger(trig),
        state=AlarmState(ev.state), prev_state=AlarmState(d.get("prev_state", ev.state)),
        active=bool(d.get("active", False)), priority=ev.priority or "medium", area=ev.area or "",
        tank=ev.tank, message=ev.message, value=ev.value, user=ev.user, comment=ev.comment,
        count=int(d.get("count", 0)), since=d.get("since"), ack_user=d.get("ack_user"), ack_ts=d.get("ack_ts"),
        shelved_by=d.get("shelved_by"), shelve_reason=d.get("shelve_reason"),
        shelved_until=d.get("shelved_until"), suppress_reason=d.get("suppress_reason"),
        oos_by=d.get("oos_by"), oos_reason=d.get("oos_reason"), changed_ts=d.get("changed_ts"),
    )


def checkpoint_events(engine: AlarmEngine, now: float) -> list[Event]:
    """A checkpoint marker followed by a snapshot of every alarm that is not normal."""
    marker = Event(ts=now - 1e-6, kind=EventKind.SYSTEM, source=CHECKPOINT_SOURCE, state="checkpoint",
                   message="alarm state checkpoint", data={"alarms": len(engine.definitions)})
    return [marker] + [to_event(e) for e in engine.snapshot_events(now)]


def restore_engine(engine: AlarmEngine, events: Iterable[Event]) -> RestoreResult:
    """Restore the engine from journal records (any order; the latest record of each alarm wins)."""
    items = [x for x in (from_event(e) for e in events) if isinstance(x, AlarmEvent)]
    return engine.restore(items)


async def restore_from_journal(engine: AlarmEngine, store: EventStore, *, page: int = 1000,
                               since: float | None = None) -> RestoreResult:
    """Read the journal newest-first back to the last checkpoint (or ``since``) and restore the engine.

    Alarms without a record after the checkpoint and not in its snapshot were normal.
    """
    latest: dict[str, Event] = {}
    offset = 0
    while True:
        rows = await store.query_events(kinds=[EventKind.ALARM.value, EventKind.SYSTEM.value], start=since,
                                        limit=page, offset=offset, newest_first=True)
        done = False
        for ev in rows:
            if ev.kind is EventKind.SYSTEM:
                if ev.source == CHECKPOINT_SOURCE:
                    done = True
                    break
                continue
            latest.setdefault(ev.source, ev)
        if done or len(rows) < page:
            break
        offset += page
    return restore_engine(engine, latest.values())


async def query_journal(
    store: EventStore,
    *,
    start: float | None = None,
    end: float | None = None,
    tank: str | None = None,
    priority: str | None = None,
    state: AlarmState | str | None = None,
    alarm_id: str | None = None,
    limit: int = 1000,
    offset: int = 0,
    newest_first: bool = True,
    include_snapshots: bool = False,
) -> list[AlarmEvent]:
    """Alarm transitions by time range, tank, priority, state and alarm id (through the historian).

    Checkpoint/resync snapshots (``trigger`` None) are left out unless ``include_snapshots``.
    """
    rows = await store.query_events(
        start=start, end=end, kinds=[EventKind.ALARM.value], tank=tank, priority=priority,
        state=None if state is None else str(AlarmState(state).value), source=alarm_id, limit=limit,
        offset=offset, newest_first=newest_first,
    )
    out = [x for x in (from_event(e) for e in rows) if isinstance(x, AlarmEvent)]
    return out if include_snapshots else [x for x in out if x.trigger is not None]


class JournalWriter:
    """Drains the engine's stream into the store: batched, retried, never silently lossy.

    Run :meth:`run` as a task (it returns when :meth:`stop` is called, after a final flush).
    """

    def __init__(self, engine: AlarmEngine, store: EventStore, *, batch_max: int = 500,
                 flush_s: float = 0.5, retry_s: float = 1.0, checkpoint_s: float = 3600.0) -> None:
        self.engine = engine
        self.store = store
        self.batch_max = batch_max
        self.flush_s = flush_s
        self.retry_s = retry_s
        self.checkpoint_s = checkpoint_s
        self.written = 0
        self.write_errors = 0
        self.overflows = 0
        self.last_error = ""
        self._stop = asyncio.Event()
        self._sub = engine.subscribe("journal")
        self._pending: list[Event] = []
        self._last_checkpoint: float | None = None

    def stop(self) -> None:
        self._stop.set()

    async def _write(self) -> None:
        """Write the pending batch, retrying until it is stored or the writer is stopped twice over."""
        while self._pending:
            batch = self._pending[: self.batch_max]
            try:
                await self.store.write_events(batch)
            except Exception as e:  # noqa: BLE001 - any store failure: keep the batch and retry
                self.write_errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.warning("alarm journal write failed (%s); retrying in %.1f s", self.last_error, self.retry_s)
                if self._stop.is_set():
                    return
                try:
                    await asyncio.wait_for(self._stop.wait(), self.retry_s)
                except TimeoutError:
                    pass
                continue
            del self._pending[: len(batch)]
            self.written += len(batch)

    def _resync(self, reason: str) -> None:
        self.overflows += 1
        now = self.engine.clock()
        log.error("alarm journal stream closed (%s): writing an overflow record and a snapshot", reason)
        self._sub = self.engine.subscribe("journal")
        self._pending.append(Event(ts=now, kind=EventKind.SYSTEM, source=OVERFLOW_SOURCE, state="overflow",
                                   message=f"alarm journal fell behind: {reason}; state re-snapshotted"))
        self._pending += checkpoint_events(self.engine, now)
        self._last_checkpoint = now

    async def flush(self) -> None:
        """Take whatever is queued now and write it (tests and shutdown)."""
        try:
            self._pending += [to_event(x) for x in self._sub.drain()]
        except SubscriptionClosed as e:
            self._resync(str(e))
        await self._write()

    async def run(self) -> None:
        now = self.engine.clock()
        self._pending += checkpoint_events(self.engine, now)
        self._last_checkpoint = now
        while not self._stop.is_set():
            try:
                items = await self._sub.get(wait_s=self.flush_s)
                self._pending += [to_event(x) for x in items]
            except SubscriptionClosed as e:
                self._resync(str(e))
            now = self.engine.clock()
            if self._last_checkpoint is not None and now - self._last_checkpoint >= self.checkpoint_s:
                self._pending += checkpoint_events(self.engine, now)
                self._last_checkpoint = now
            await self._write()
        await self.flush()
        self._sub.close()
        if self._pending:
            log.error("alarm journal stopped with %d records unwritten (%s)", len(self._pending), self.last_error)
