"""Logging policy: which samples of a tag the historian stores (pure, no I/O, no clock).

Each tag gets a :class:`TagPolicy` built from its ``TagConfig.history``. The historian offers it
every change it receives (:meth:`TagPolicy.offer`) and calls :meth:`TagPolicy.tick` on each flush
with the current time; both return the :class:`Record` rows to store. Guarantees, proved by the
property tests in ``tests/historian/test_policy.py``:

* ``on_change``: every offered value lies within ``deadband`` of the last stored value before it
  (store when ``|v - last_stored| > deadband``), and stored rows are never further apart than
  ``max_interval_s`` plus the gap to the next offered sample or tick (the heartbeat).
* ``swinging_door``: every offered value lies within ``deadband`` (the stated maximum error) of the
  straight line between the two stored rows around it. The stored rows are original samples, and a
  new row is only archived once the line to it is proved to pass within the error of every point
  in between (a strict variant of Bristol's swinging door: no point is ever outside the corridor).
* ``periodic``: the held value is stored at least every ``period_s`` (on the sample or the tick).
* ``off``: nothing is stored.

In every mode except ``off`` a change of quality (or its reason) is always stored, preceded by the
last held sample so that the line up to the change is exact. Non-numeric values (bool, None) are
stored on every change. Timestamps are the server timestamp; a sample not newer than the previous
one of the same tag is refused (``offer`` returns ``None``) so that the caller can count it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from scada.config.tags import HistoryPolicy, TagConfig
from scada.tags import Quality, QualityReason, Sample, Value

_EPS = 1e-9
_INF = math.inf
_NO_REASON = QualityReason.NONE


class Record(NamedTuple):
    """One row to store: a tag's value at ``ts`` with its quality. ``value`` is None or finite.

    A NamedTuple because the writer creates one per stored sample (cheap to build and to copy).
    """

    tag: str
    ts: float
    value: float | None
    quality: Quality
    reason: str | None


_new_record = tuple.__new__  # Record(...) without the Python-level NamedTuple __new__ frame (hot path)

Row = tuple[str, float, float | None, int, str | None]
"""A row as the writer queues it: ``(tag, ts, value, quality as int, reason)``.

Plain tuples of atoms, unlike :class:`Record` (whose ``Quality`` member is a GC-tracked object):
the garbage collector stops tracking them at its first pass, so a deep writer queue costs it
nothing. With Records queued, full collections walked every queued row (~0.8 us per row).
"""


def as_row(r: Record) -> Row:
    """The writer's row of a record."""
    return (r.tag, r.ts, r.value, r.quality.value, r.reason)


_GOOD = Quality.GOOD


def effective_deadband(cfg: TagConfig) -> float:
    """Absolute deadband of a tag: the larger of ``deadband`` and ``deadband_percent`` of the span.

    The span is the scale's engineering span, else the engineering limits; without either the
    percentage cannot be resolved and only the absolute deadband applies.
    """
    h = cfg.history
    band = h.deadband
    if h.deadband_percent > 0:
        span = 0.0
        if cfg.scale is not None:
            span = abs(cfg.scale.eng_max - cfg.scale.eng_min)
        elif cfg.limits is not None:
            span = cfg.limits.max - cfg.limits.min
        band = max(band, span * h.deadband_percent / 100.0)
    return band


def _numeric(v: Value) -> float | None:
    """The value as a float for deadband maths, or None for bool/None (stored on any change)."""
    if v is None or isinstance(v, bool):
        return None
    return float(v)


def _stored_value(v: Value) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class TagPolicy:
    """Decides, sample by sample, what one tag stores. Holds only that tag's state."""

    def __init__(
        self,
        tag: str,
        mode: str = "on_change",
        deadband: float = 0.0,
        max_interval_s: float = 60.0,
        period_s: float | None = None,
    ) -> None:
        if mode not in ("on_change", "periodic", "swinging_door", "off"):
            raise ValueError(f"tag {tag!r}: unknown history mode {mode!r}")
        if deadband < 0 or not math.isfinite(deadband):
            raise ValueError(f"tag {tag!r}: deadband must be a finite number >= 0, not {deadband!r}")
        self.tag = tag
        self.mode = mode
        self.deadband = deadband
        self.max_interval_s = max_interval_s
        self.period_s = period_s if period_s is not None else max_interval_s
        self._stored: Record | None = None  # last stored row
        self._held: Record | None = None  # last offered sample not stored yet (its successor may be)
        self._last: Record | None = None  # last offered sample (stored or not)
        # swinging door: feasible slope interval from the stored pivot over the held-back points
        self._lo = -math.inf
        self._hi = math.inf
        # on_change with a plain number of unchanged quality takes the inlined path of offer_rows
        self._fast = mode == "on_change"

    @classmethod
    def from_config(cls, cfg: TagConfig) -> TagPolicy:
        h: HistoryPolicy = cfg.history
        return cls(cfg.name, h.mode, effective_deadband(cfg), h.max_interval_s, h.period_s)

    # ------------------------------------------------------------------ helpers
    def _record(self, s: Sample) -> Record:
        reason = None if s.reason == "none" else str(s.reason)
        return Record(self.tag, s.server_ts, _stored_value(s.value), s.quality, reason)

    def _store(self, r: Record) -> Record:
        self._stored = r
        self._held = None
        self._lo, self._hi = -math.inf, math.inf
        return r

    @staticmethod
    def _same_quality(a: Record, b: Record) -> bool:
        return a.quality is b.quality and a.reason == b.reason

    # ------------------------------------------------------------------ interface
    def offer(self, sample: Sample) -> list[Record] | None:
        """Rows to store for a new sample, or None when its timestamp is not newer (refused)."""
        out: list[Record] = []
        return out if self._offer(sample, out) else None

    def offer_rows(self, sample: Sample, out: list[Row]) -> int:
        """:meth:`offer` for the writer: appends :data:`Row` tuples to ``out`` and returns how many,
        or -1 when the sample is refused.

        The common case (``on_change``, a finite number, quality and reason unchanged, timestamp
        newer) is decided inline; every other case takes the general path. Both store identical
        rows (tested).
        """
        last = self._last
        if self._fast and last is not None:
            v = sample.value
            tv = type(v)
            ts = sample.server_ts
            stored = self._stored
            held = self._held
            q = sample.quality
            if (
                (tv is float or tv is int)
                and q is last.quality
                and sample.reason is _NO_REASON
                and last.reason is None
                and stored is not None
                and stored.value is not None
                and (held is None or held.value is not None)
                and last.ts < ts < _INF
            ):
                f = float(v)
                if f - f == 0.0:  # finite
                    rec = _new_record(Record, (self.tag, ts, f, q, None))
                    self._last = rec
                    if abs(f - stored.value) > self.deadband or ts - stored.ts >= self.max_interval_s:
                        self._stored = rec
                        self._held = None
                        out.append((self.tag, ts, f, 2 if q is _GOOD else q.value, None))
                        return 1
                    self._held = rec
                    return 0
        recs: list[Record] = []
        if not self._offer(sample, recs):
            return -1
        out.extend([as_row(r) for r in recs])
        return len(recs)

    def _offer(self, sample: Sample, out: list[Record]) -> bool:
        """The general path of :meth:`offer` and :meth:`offer_rows`; False when the sample is refused."""
        if self.mode == "off":
            return True
        rec = self._record(sample)
        if not math.isfinite(rec.ts) or (self._last is not None and rec.ts <= self._last.ts):
            return False
        prev = self._last
        self._last = rec
        stored = self._stored
        if stored is None:
            out.append(self._store(rec))
            return True
        if prev is not None and not self._same_quality(prev, rec):
            if self._held is not None:
                out.append(self._store(self._held))
            out.append(self._store(rec))
            return True
        if self.mode == "periodic":
            if rec.ts - stored.ts >= self.period_s - _EPS:
                out.append(self._store(rec))
            else:
                self._held = rec
            return True
        v, sv = rec.value, stored.value
        numeric = (
            v is not None and sv is not None
            and _numeric(sample.value) is not None
            and (self._held is None or self._held.value is not None)
        )
        if not numeric:
            # booleans, None and mixed values: every change is stored (a held point never differs)
            if v != sv or rec.ts - stored.ts >= self.max_interval_s:
                if self._held is not None and self.mode == "swinging_door":
                    out.append(self._store(self._held))  # close the exact segment first
                out.append(self._store(rec))
            else:
                self._held = rec
            return True
        assert v is not None and sv is not None
        if self.mode == "on_change":
            if abs(v - sv) > self.deadband or rec.ts - stored.ts >= self.max_interval_s:
                out.append(self._store(rec))
            else:
                self._held = rec
            return True
        # swinging door
        out.extend(self._door(rec))
        return True

    def _door(self, rec: Record) -> list[Record]:
        stored = self._stored
        assert stored is not None and stored.value is not None and rec.value is not None
        out: list[Record] = []
        dt = rec.ts - stored.ts
        slope = (rec.value - stored.value) / dt
        if self._held is not None and not (self._lo - _EPS <= slope <= self._hi + _EPS):
            # the line to the new point would leave the corridor of a held-back point:
            # archive the previous point (whose line was proved inside) and pivot there
            out.append(self._store(self._held))
            stored = self._stored
            assert stored is not None and stored.value is not None
            dt = rec.ts - stored.ts
        if rec.ts - stored.ts >= self.max_interval_s:
            out.append(self._store(rec))
            return out
        e = self.deadband
        self._lo = max(self._lo, (rec.value - e - stored.value) / dt)
        self._hi = min(self._hi, (rec.value + e - stored.value) / dt)
        self._held = rec
        return out

    def tick(self, now: float) -> list[Record]:
        """Rows due at ``now`` without a new sample: the heartbeat or periodic repeat."""
        if self.mode == "off" or self._stored is None or self._last is None:
            return []
        interval = self.period_s if self.mode == "periodic" else self.max_interval_s
        if now - self._stored.ts < interval - _EPS:
            return []
        out: list[Record] = []
        if self._held is not None:
            out.append(self._store(self._held))
        last = self._last
        if now > last.ts and now - self._stored.ts >= interval - _EPS:
            # nothing changed since ``last`` (the feed is change-driven): its value still holds now
            rep = Record(self.tag, now, last.value, last.quality, last.reason)
            self._last = rep
            out.append(self._store(rep))
        return out

    def flush(self) -> list[Record]:
        """On stop: store the held-back sample so the stored line ends at the last known point."""
        if self._held is None:
            return []
        return [self._store(self._held)]
