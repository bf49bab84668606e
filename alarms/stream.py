"""Records the alarm engine emits, and the lossless live stream that carries them to consumers.

Every change is an :class:`AlarmEvent` that carries the *whole* state of the alarm after the change, so
that the latest journal entry of an alarm is enough to restore it (see ``alarms/journal.py``). Flood
start/end is a :class:`FloodEvent`.

The stream is lossless and bounded: each subscriber has its own queue; the engine never waits on one.
When a queue overflows, that subscription is closed with the reason and the engine counts it; the
consumer gets :class:`scada.tags.SubscriptionClosed` on its next read and must resynchronise (the journal
writer writes an overflow record plus a snapshot of every alarm). Nothing is ever dropped silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field

from alarms.model import AlarmState, Trigger
from scada.tags import SubscriptionClosed


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """One transition of one alarm, with the alarm's complete state after it."""

    ts: float
    alarm_id: str
    trigger: Trigger | None
    """``None`` for a snapshot (state as it is, no transition), written on resync."""
    state: AlarmState
    prev_state: AlarmState
    active: bool
    """The process condition (after deadband and delays)."""
    priority: str
    area: str
    tank: str | None = None
    message: str = ""
    value: float | None = None
    user: str | None = None
    comment: str | None = None
    count: int = 0
    """Activations of this alarm since it was last normal (duplicate suppression: one alarm, N repeats)."""
    since: float | None = None
    """When the alarm (this occurrence) first became active."""
    ack_user: str | None = None
    ack_ts: float | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    shelved_until: float | None = None
    suppress_reason: str | None = None
    oos_by: str | None = None
    oos_reason: str | None = None
    changed_ts: float | None = None
    """When the alarm last changed state (a snapshot's ``ts`` is when it was taken)."""

    @property
    def annunciate(self) -> bool:
        return self.state.unacknowledged and self.priority != "log"

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["trigger"] = self.trigger.value if self.trigger else None
        d["state"] = self.state.value
        d["prev_state"] = self.prev_state.value
        d["annunciate"] = self.annunciate
        return d


@dataclass(frozen=True, slots=True)
class FloodEvent:
    """An area entered or left alarm flood (ISA-18.2: > 10 new alarms in 10 minutes)."""

    ts: float
    area: str
    flooding: bool
    count: int
    """New alarms in the window when the state changed."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


StreamItem = AlarmEvent | FloodEvent


@dataclass(eq=False)
class AlarmSubscription:
    """One consumer's queue of alarm changes (lossless; overflow closes it with the reason)."""

    name: str
    maxsize: int
    _on_close: Callable[[AlarmSubscription], None]
    _queue: deque[StreamItem] = field(default_factory=deque)
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    close_reason: str = ""
    delivered: int = 0

    def _offer(self, items: list[StreamItem]) -> None:
        if self.closed or not items:
            return
        if len(self._queue) + len(items) > self.maxsize:
            self._close(f"overflow: more than {self.maxsize} alarm changes pending for {self.name!r}")
            return
        self._queue.extend(items)
        self._event.set()

    def _close(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        self._queue.clear()
        self._event.set()
        self._on_close(self)

    def close(self) -> None:
        if not self.closed:
            self._close("closed by consumer")

    def pending(self) -> int:
        return len(self._queue)

    def drain(self) -> list[StreamItem]:
        """Everything pending now, without waiting; raises if the subscription was closed."""
        if self.closed:
            raise SubscriptionClosed(self.close_reason)
        items = list(self._queue)
        self._queue.clear()
        self._event.clear()
        self.delivered += len(items)
        return items

    async def get(self, wait_s: float | None = None) -> list[StreamItem]:
        """Wait for at least one change (at most ``wait_s``, then ``[]``) and take all pending."""
        if self.closed:
            raise SubscriptionClosed(self.close_reason)
        if not self._queue:
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), wait_s)
            except TimeoutError:
                return []
        return self.drain()

    async def __aiter__(self) -> AsyncIterator[StreamItem]:
        while True:
            for item in await self.get():
                yield item
