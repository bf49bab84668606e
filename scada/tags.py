"""Tag model: a value never travels without its quality and its timestamps.

A :class:`Sample` is what every package passes around: drivers produce them, the scan
engine validates and votes them, alarms and the historian consume them, the HMI shows
them. Quality follows the OPC UA status-code families (Good / Uncertain / Bad) with a
reason, so that an operator and a database query can both tell *why* a value is not
trustworthy. Sensors also carry a NAMUR NE 107 status.

:class:`TagStore` holds the current value of every tag and fans changes out to any
number of subscribers. Publishing is synchronous and never waits on a consumer: each
subscription declares its policy (coalesce to the latest value, or a bounded lossless
queue that drops the subscriber when it overflows). A slow consumer therefore costs
itself, never the scan.
"""

from __future__ import annotations

import asyncio
import fnmatch
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum

Value = float | int | bool | None


class Quality(Enum):
    """OPC UA quality family. Ordered: BAD < UNCERTAIN < GOOD."""

    BAD = 0
    UNCERTAIN = 1
    GOOD = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    def __lt__(self, other: Quality) -> bool:
        return self.value < other.value

    def __le__(self, other: Quality) -> bool:
        return self.value <= other.value


class QualityReason(StrEnum):
    """Why a sample has the quality it has (``none`` for plain Good)."""

    NONE = "none"
    WAITING_FOR_INITIAL_DATA = "waiting_for_initial_data"
    COMM_FAILURE = "comm_failure"
    NOT_CONNECTED = "not_connected"
    DEVICE_FAILURE = "device_failure"  # exception response, PLC-side fault
    SENSOR_FAILURE = "sensor_failure"  # NE 43 failure current, wire break
    OUT_OF_RANGE = "out_of_range"
    CONFIG_ERROR = "config_error"
    LAST_KNOWN_VALUE = "last_known_value"
    SUBSTITUTED = "substituted"
    SENSOR_NOT_ACCURATE = "sensor_not_accurate"  # NE 43 saturated, frozen, rate reject
    DISCREPANCY = "discrepancy"  # redundant channels disagree
    OUT_OF_SERVICE = "out_of_service"


# OPC UA status codes (Part 4 / Part 8) for each reason, so quality can be exported as-is.
_OPCUA_STATUS: dict[tuple[Quality, QualityReason], int] = {
    (Quality.GOOD, QualityReason.NONE): 0x00000000,
    (Quality.GOOD, QualityReason.SUBSTITUTED): 0x00000000,
    (Quality.UNCERTAIN, QualityReason.LAST_KNOWN_VALUE): 0x40900000,
    (Quality.UNCERTAIN, QualityReason.SUBSTITUTED): 0x40910000,
    (Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE): 0x40930000,
    (Quality.UNCERTAIN, QualityReason.OUT_OF_RANGE): 0x40940000,
    (Quality.UNCERTAIN, QualityReason.DISCREPANCY): 0x40000000,
    (Quality.BAD, QualityReason.WAITING_FOR_INITIAL_DATA): 0x80320000,
    (Quality.BAD, QualityReason.COMM_FAILURE): 0x80050000,
    (Quality.BAD, QualityReason.NOT_CONNECTED): 0x808A0000,
    (Quality.BAD, QualityReason.DEVICE_FAILURE): 0x808B0000,
    (Quality.BAD, QualityReason.SENSOR_FAILURE): 0x808C0000,
    (Quality.BAD, QualityReason.OUT_OF_RANGE): 0x803C0000,
    (Quality.BAD, QualityReason.CONFIG_ERROR): 0x80890000,
    (Quality.BAD, QualityReason.OUT_OF_SERVICE): 0x808D0000,
    (Quality.BAD, QualityReason.LAST_KNOWN_VALUE): 0x80000000,
    (Quality.BAD, QualityReason.DISCREPANCY): 0x80000000,
}
_FAMILY_STATUS = {Quality.GOOD: 0x00000000, Quality.UNCERTAIN: 0x40000000, Quality.BAD: 0x80000000}


class NE107(StrEnum):
    """NAMUR NE 107 device status. F/C are invalid, S uncertain, M valid with a maintenance flag."""

    OK = "ok"
    FAILURE = "F"
    CHECK_FUNCTION = "C"
    OUT_OF_SPECIFICATION = "S"
    MAINTENANCE_REQUIRED = "M"

    def quality(self) -> Quality:
        """NE 107 to SCADA quality, as in the domain notes (§5.2)."""
        if self in (NE107.FAILURE, NE107.CHECK_FUNCTION):
            return Quality.BAD
        if self is NE107.OUT_OF_SPECIFICATION:
            return Quality.UNCERTAIN
        return Quality.GOOD


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of one tag: value, quality with reason, and both timestamps (epoch seconds, UTC).

    ``raw`` is the device value before scaling (e.g. the ADC count of a 4-20 mA input), kept so that
    validation can apply NAMUR NE 43 to the loop current. ``detail`` is a short human text
    (e.g. "exception code 2: illegal data address").
    """

    value: Value
    quality: Quality
    server_ts: float
    source_ts: float | None = None
    reason: QualityReason = QualityReason.NONE
    raw: float | None = None
    ne107: NE107 = NE107.OK
    detail: str = ""

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD

    @property
    def usable(self) -> bool:
        """Good or Uncertain with a finite value: may feed control, never alone a trip reset."""
        if self.quality is Quality.BAD or self.value is None:
            return False
        return not (isinstance(self.value, float) and not math.isfinite(self.value))

    @property
    def opcua_status(self) -> int:
        return _OPCUA_STATUS.get((self.quality, self.reason), _FAMILY_STATUS[self.quality])

    def same_reading(self, other: Sample | None) -> bool:
        """True when value, quality and reason are unchanged (timestamps ignored)."""
        return (
            other is not None
            and other.value == self.value
            and other.quality is self.quality
            and other.reason == self.reason
            and other.ne107 == self.ne107
        )

    def with_quality(self, quality: Quality, reason: QualityReason, detail: str = "") -> Sample:
        return replace(self, quality=quality, reason=reason, detail=detail)

    @classmethod
    def good_value(cls, value: Value, ts: float, source_ts: float | None = None, raw: float | None = None) -> Sample:
        return cls(value=value, quality=Quality.GOOD, server_ts=ts, source_ts=source_ts, raw=raw)

    @classmethod
    def bad(cls, reason: QualityReason, ts: float, detail: str = "", value: Value = None) -> Sample:
        return cls(value=value, quality=Quality.BAD, server_ts=ts, reason=reason, detail=detail)

    def to_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "quality": self.quality.label,
            "reason": str(self.reason),
            "server_ts": self.server_ts,
            "source_ts": self.source_ts,
            "ne107": str(self.ne107),
            "detail": self.detail,
        }


class SubscriptionClosed(Exception):
    """Raised to a consumer whose subscription was dropped (overflow) or closed."""


@dataclass(eq=False)
class Subscription:
    """One consumer's view of the tag store.

    ``policy="coalesce"``: only the latest sample per tag is kept until the consumer reads
    (the HMI's way). ``policy="queue"``: every change is kept in order up to ``maxsize``;
    on overflow the subscription is dropped and the consumer is told (the alarm engine's
    and historian's way: they must know they missed something rather than silently lose it).
    """

    store: TagStore
    name: str
    policy: str
    patterns: tuple[str, ...]
    maxsize: int
    _pending: dict[str, Sample] = field(default_factory=dict)
    _queue: deque[tuple[str, Sample]] = field(default_factory=deque)
    _event: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    close_reason: str = ""
    delivered: int = 0
    coalesced: int = 0

    def matches(self, tag: str) -> bool:
        return not self.patterns or any(fnmatch.fnmatchcase(tag, p) for p in self.patterns)

    def _offer(self, tag: str, sample: Sample) -> None:
        if self.closed:
            return
        if self.policy == "coalesce":
            if tag in self._pending:
                self.coalesced += 1
            self._pending[tag] = sample
        else:
            if len(self._queue) >= self.maxsize:
                self._close(f"overflow: more than {self.maxsize} changes pending")
                return
            self._queue.append((tag, sample))
        self._event.set()

    def _close(self, reason: str) -> None:
        self.closed = True
        self.close_reason = reason
        self._pending.clear()
        self._queue.clear()
        self._event.set()
        self.store._drop(self)

    def close(self) -> None:
        if not self.closed:
            self._close("closed by consumer")

    def pending(self) -> int:
        return len(self._pending) if self.policy == "coalesce" else len(self._queue)

    def drain(self) -> list[tuple[str, Sample]]:
        """Take everything pending now without waiting (may be empty)."""
        if self.policy == "coalesce":
            items = list(self._pending.items())
            self._pending.clear()
        else:
            items = list(self._queue)
            self._queue.clear()
        self._event.clear()
        self.delivered += len(items)
        return items

    async def get(self, timeout: float | None = None) -> list[tuple[str, Sample]]:  # noqa: ASYNC109
        """Wait for at least one change (or ``timeout``) and take all pending changes."""
        if self.closed:
            raise SubscriptionClosed(self.close_reason)
        if not self.pending():
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), timeout)
            except TimeoutError:
                return []
            if self.closed:
                raise SubscriptionClosed(self.close_reason)
        return self.drain()


class TagStore:
    """Current value of every tag plus a non-blocking change fan-out."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._values: dict[str, Sample] = {}
        self._subs: list[Subscription] = []
        self._clock = clock
        self.dropped_subscriptions = 0

    def declare(self, names: Iterable[str]) -> None:
        """Create tags as Bad/waiting so that a tag never reads as a silent missing key."""
        now = self._clock()
        for n in names:
            self._values.setdefault(n, Sample.bad(QualityReason.WAITING_FOR_INITIAL_DATA, now))

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __len__(self) -> int:
        return len(self._values)

    def get(self, name: str) -> Sample:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"unknown tag {name!r}") from None

    def snapshot(self) -> dict[str, Sample]:
        """A consistent copy of every current value (the scan reads from one snapshot)."""
        return dict(self._values)

    def names(self) -> list[str]:
        return list(self._values)

    def publish(self, changes: Mapping[str, Sample], *, only_changed: bool = True) -> list[str]:
        """Store new samples and offer the changed ones to subscribers. Never awaits, never blocks."""
        changed: list[str] = []
        for name, sample in changes.items():
            old = self._values.get(name)
            self._values[name] = sample
            if only_changed and sample.same_reading(old):
                continue
            changed.append(name)
        if changed and self._subs:
            for sub in list(self._subs):
                for name in changed:
                    if sub.matches(name):
                        sub._offer(name, self._values[name])
        return changed

    def subscribe(
        self,
        name: str,
        patterns: Iterable[str] = (),
        *,
        policy: str = "coalesce",
        maxsize: int = 10_000,
        initial: bool = True,
    ) -> Subscription:
        """Subscribe to tags matching glob ``patterns`` (all tags when empty)."""
        if policy not in ("coalesce", "queue"):
            raise ValueError(f"unknown subscription policy {policy!r}: use 'coalesce' or 'queue'")
        sub = Subscription(store=self, name=name, policy=policy, patterns=tuple(patterns), maxsize=maxsize)
        self._subs.append(sub)
        if initial:
            for tag, sample in self._values.items():
                if sub.matches(tag):
                    sub._offer(tag, sample)
        return sub

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            if sub.close_reason.startswith("overflow"):
                self.dropped_subscriptions += 1

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs)
