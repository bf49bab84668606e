"""The historian: a non-blocking sample sink with a batched writer and store-and-forward.

``submit`` is synchronous and cheap (validate, apply the tag's logging policy, append to a list),
so the scan or the TagStore subscription never waits on the database. One flusher task writes the
list every ``flush_interval_s`` (or as soon as ``batch_size`` rows are waiting) in one transaction
per batch. When the database refuses, fails or takes longer than ``db_timeout_s``, batches go to
the local SQLite buffer instead; while the buffer holds anything, new batches are appended behind
it and the buffer is forwarded oldest first, so the database always receives rows in order. A row
is deleted from the buffer only after the database committed it, and the inserts ignore rows they
already have, so forwarding is loss-free and duplicate-free.

What a ``kill -9`` can lose: rows submitted since the last flush (at most ``flush_interval_s`` of
data) plus the batch that was in flight to the database, if that transaction had not committed.
Everything already committed to the database or to the buffer survives.

Every problem is counted in ``status()`` and turned into a flag plus a ``system`` event (sent to
``on_event`` and journalled): database unreachable, buffering, buffer filling / full / failing,
backlog, rows dropped, schema mismatch, subscription overflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from historian import queries, users
from historian.buffer import BufferError, BufferFull, ForwardBuffer
from historian.db import SchemaError, check_schema, display_url, make_engine, resolve_url
from historian.policy import Row, TagPolicy, as_row
from historian.queries import Bucket, StoredSample
from historian.store import SqliteSampleWriter, TagIds, insert_events, insert_rows
from historian.users import UserRecord
from scada.config.tags import TagConfig
from scada.events import Event, EventKind
from scada.tags import Quality, QualityReason, Sample, SubscriptionClosed, TagStore

log = logging.getLogger(__name__)

DAY_S = 86_400.0


class Historian:
    """Logs tag samples and events to SQLite or PostgreSQL without ever blocking the producer."""

    def __init__(
        self,
        url: str | None = None,
        buffer_path: str | Path = "scada-buffer.db",
        tags: Iterable[TagConfig] = (),
        *,
        flush_interval_s: float = 1.0,
        batch_size: int = 5000,
        db_timeout_s: float = 5.0,
        retry_interval_s: float = 5.0,
        buffer_max_bytes: int = 1 << 30,
        max_queue_rows: int = 2_000_000,
        backlog_rows: int | None = None,
        max_future_s: float = 300.0,
        max_past_s: float = 10 * 365 * DAY_S,
        auto_register: bool = True,
        retention_days: float | None = None,
        events_retention_days: float | None = None,
        retention_batch: int = 10_000,
        clock: Callable[[], float] = time.time,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.buffer_path = Path(buffer_path)
        self.tags = {t.name: t for t in tags}
        self.flush_interval_s = flush_interval_s
        self.batch_size = batch_size
        self.db_timeout_s = db_timeout_s
        self.retry_interval_s = retry_interval_s
        self.buffer_max_bytes = buffer_max_bytes
        self.max_queue_rows = max_queue_rows
        self.backlog_rows = backlog_rows if backlog_rows is not None else 4 * batch_size
        self.max_future_s = max_future_s
        self.max_past_s = max_past_s
        self.auto_register = auto_register
        self.retention_days = retention_days
        self.events_retention_days = events_retention_days
        self.retention_batch = retention_batch
        self._clock = clock
        self._on_event = on_event
        self._policies: dict[str, TagPolicy] = {n: TagPolicy.from_config(t) for n, t in self.tags.items()}
        self._queue: list[Row] = []
        self._event_queue: list[tuple[str, Event]] = []
        self._wake = asyncio.Event()
        self._engine: AsyncEngine | None = None
        self._sqlite_writer: SqliteSampleWriter | None = None
        self._buffer: ForwardBuffer | None = None
        self._ids = TagIds()
        self._task: asyncio.Task[None] | None = None
        self._pumps: list[asyncio.Task[None]] = []
        self._stopping = False
        self._ready = False  # schema checked and tags synced on the current database
        self._db_ok = False
        self._next_retry = 0.0
        self._flags: set[str] = set()
        self.recent_events: deque[Event] = deque(maxlen=200)
        self.counters: dict[str, int] = {
            "submitted": 0, "logged": 0, "written": 0, "buffered": 0, "forwarded": 0, "dropped": 0,
            "events_written": 0, "events_buffered": 0, "flushes": 0, "db_failures": 0, "task_errors": 0,
            "subscription_overflows": 0,
        }
        self.rejected: dict[str, int] = {}
        self.coerced: dict[str, int] = {}
        self.queue_high_water = 0
        self.last_flush_latency_s = 0.0
        self.max_flush_latency_s = 0.0
        self.rows_per_s = 0.0
        self.last_error = ""
        self._buffer_fraction = 0.0
        self._buffer_bytes = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("historian not started: await hist.start() first")
        return self._engine

    async def start(self) -> None:
        """Open the buffer and the database, check the schema, start the flusher.

        Raises :class:`SchemaError` when the database is reachable but its schema is not this
        software's; an unreachable database only starts the historian in buffering mode.
        """
        busy_ms = max(1, int(self.db_timeout_s * 500))
        self._engine = make_engine(self.url, busy_timeout_ms=busy_ms)
        u = make_url(self.url)
        if (u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:")
                and not u.query.get("uri")):
            self._sqlite_writer = SqliteSampleWriter(u.database, busy_ms)
        self._buffer = await asyncio.to_thread(ForwardBuffer, self.buffer_path, self.buffer_max_bytes)
        await self._refresh_buffer_stats()
        try:
            await asyncio.wait_for(self._ensure_ready(), self.db_timeout_s)
            self._set_db_ok(True)
        except SchemaError:
            await self._close()
            raise
        except Exception as e:  # noqa: BLE001 - any connection problem: start buffering
            self._set_db_ok(False, e)
        self._stopping = False
        self._task = asyncio.create_task(self._flusher(), name="historian-flusher")
        if self._buffer is not None and not self._buffer.empty:
            self._wake.set()

    async def stop(self) -> None:
        """Stop pumps and the flusher, write everything pending (database or buffer), close."""
        self._stopping = True
        for p in self._pumps:
            p.cancel()
        for p in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await p
        self._pumps.clear()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await self._flush(final=True)
        except Exception:  # noqa: BLE001
            log.exception("historian: final flush failed")
        await self._close()

    async def _close(self) -> None:
        if self._sqlite_writer is not None:
            writer, self._sqlite_writer = self._sqlite_writer, None
            try:
                await writer.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not stop the shutdown
                log.exception("historian: closing the SQLite writer failed")
        if self._buffer is not None:
            await asyncio.to_thread(self._buffer.close)
            self._buffer = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        await check_schema(self.engine)
        async with self.engine.begin() as conn:
            await self._ids.sync_configs(conn, self.tags.values(), self._clock())
        self._ready = True

    # ------------------------------------------------------------------ producer side
    def submit(self, changes: Mapping[str, Sample] | Iterable[tuple[str, Sample]]) -> None:
        """Offer changed samples. Synchronous, never blocks, never raises for bad input (counts it).

        The hot path (a float value and a timestamp inside the accepted window) costs a couple of
        comparisons plus :meth:`TagPolicy.offer_rows`; anything unusual goes to :meth:`_submit_slow`.
        """
        items = changes.items() if isinstance(changes, Mapping) else changes
        now = self._clock()
        lo = now - self.max_past_s
        hi = now + self.max_future_s
        queue = self._queue
        policies = self._policies
        room = self.max_queue_rows - 2  # offer_rows appends at most 2 rows
        n_in = 0
        n_logged = 0
        for name, sample in items:
            n_in += 1
            policy = policies.get(name)
            ts = sample.server_ts
            v = sample.value
            if (
                policy is not None
                and type(ts) is float and lo <= ts <= hi
                and type(v) is float and v - v == 0.0  # finite
                and len(queue) <= room
            ):
                n = policy.offer_rows(sample, queue)
                if n < 0:
                    self._reject("out_of_order")
                else:
                    n_logged += n
                continue
            n_logged += self._submit_slow(name, sample, policy, now)
        self.counters["submitted"] += n_in
        self.counters["logged"] += n_logged
        depth = len(queue)
        if depth > self.queue_high_water:
            self.queue_high_water = depth
        if depth >= self.batch_size:
            self._wake.set()

    def _submit_slow(self, name: str, sample: Sample, policy: TagPolicy | None, now: float) -> int:
        """One sample outside the hot path: unknown tag, odd timestamp or value, queue nearly full."""
        queue = self._queue
        if policy is None:
            if not self.auto_register:
                self._reject("unknown_tag")
                return 0
            policy = self._policies[name] = TagPolicy(name)
        ts = sample.server_ts
        if not isinstance(ts, int | float) or not math.isfinite(ts):
            self._reject("bad_timestamp")
            return 0
        if ts > now + self.max_future_s:
            self._reject("future_timestamp")
            return 0
        if ts < now - self.max_past_s:
            self._reject("past_timestamp")
            return 0
        v = sample.value
        if v is not None and not isinstance(v, bool):
            try:
                f = float(v)
            except (TypeError, ValueError):
                f = math.nan
                self.coerced["not_a_number"] = self.coerced.get("not_a_number", 0) + 1
            if not math.isfinite(f):
                if not isinstance(v, str):
                    self.coerced["non_finite"] = self.coerced.get("non_finite", 0) + 1
                sample = Sample(value=None, quality=Quality.BAD, server_ts=ts, reason=QualityReason.OUT_OF_RANGE,
                                detail=f"non-finite value {v!r}")
        rows: list[Row] = []
        if policy.offer_rows(sample, rows) < 0:
            self._reject("out_of_order")
            return 0
        if not rows:
            return 0
        if len(queue) + len(rows) > self.max_queue_rows:
            self.counters["dropped"] += len(rows)
            self._flag("data_dropped", True, f"historian memory queue full ({self.max_queue_rows} rows): "
                       "samples are being dropped", priority="critical")
            return 0
        queue.extend(rows)
        return len(rows)

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def attach(self, store: TagStore, patterns: Iterable[str] = (), *, maxsize: int = 100_000) -> None:
        """Log every change of ``store`` (matching ``patterns``) through a lossless queue subscription."""
        pats = tuple(patterns)
        self._pumps.append(asyncio.create_task(self._pump(store, pats, maxsize), name="historian-pump"))

    async def _pump(self, store: TagStore, patterns: tuple[str, ...], maxsize: int) -> None:
        while not self._stopping:
            sub = store.subscribe("historian", patterns, policy="queue", maxsize=maxsize)
            try:
                while True:
                    items = await sub.get(timeout=self.flush_interval_s)
                    if items:
                        self.submit(items)
            except SubscriptionClosed as e:
                self.counters["subscription_overflows"] += 1
                self._flag("subscription_overflow", True, f"historian fell behind the tag store ({e}); "
                           "changes were missed, resubscribed", priority="high")
            except asyncio.CancelledError:
                sub.close()
                raise

    # ------------------------------------------------------------------ flusher
    async def _flusher(self) -> None:
        while not self._stopping:
            more = False
            try:
                more = await self._flush()
            except Exception as e:  # noqa: BLE001 - the flusher must never die
                self.counters["task_errors"] += 1
                self.last_error = f"flusher: {e!r}"
                log.exception("historian flusher error")
            if more or self._stopping:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_interval_s)
            self._wake.clear()

    async def _flush(self, final: bool = False) -> bool:
        """Write what is pending; forward the buffer for at most a flush interval.

        Returns True when buffered rows are still waiting and the database is up (no pause).
        """
        if self._buffer is None or self._engine is None:
            return False
        now = self._clock()
        for policy in self._policies.values():
            rows = policy.tick(now)
            if final:
                rows += policy.flush()
            if rows:
                self._queue.extend([as_row(r) for r in rows])
                self.counters["logged"] += len(rows)
        depth = len(self._queue)
        self._flag("backlog", depth > self.backlog_rows,
                   f"historian backlog: {depth} rows waiting (threshold {self.backlog_rows})")
        self.counters["flushes"] += 1
        if self._event_queue:
            pending, self._event_queue = self._event_queue, []
            await self._store_events(pending)
        pending_rows, self._queue = self._queue, []
        for i in range(0, len(pending_rows), self.batch_size):
            batch = pending_rows[i:i + self.batch_size]
            if not await self._store_batch(batch):
                self._queue[:0] = pending_rows[i:]  # keep in memory, in order, retry next flush
                break
        more = False
        if not self._buffer.empty and self._retry_due():
            more = await self._forward(deadline=time.monotonic() + max(self.flush_interval_s, 0.2))
        await self._refresh_buffer_stats()
        return more and not final

    def _retry_due(self) -> bool:
        return self._db_ok or time.monotonic() >= self._next_retry

    async def _db_call(self, fn: Callable[..., Any], *args: Any) -> None:
        await asyncio.wait_for(self._db_guarded(fn, *args), self.db_timeout_s)

    async def _db_guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        await self._ensure_ready()
        await fn(*args)

    async def _insert_rows(self, rows: list[Row]) -> None:
        if self._sqlite_writer is not None:
            await self._sqlite_writer.insert(self.engine, self._ids, rows, self._clock())
        else:
            await insert_rows(self.engine, self._ids, rows, self._clock())

    async def _store_batch(self, batch: list[Row]) -> bool:
        """Put a batch somewhere durable: the database, else the buffer. False: kept in memory."""
        assert self._buffer is not None
        if self._buffer.empty and self._retry_due():
            t0 = time.perf_counter()
            try:
                await self._db_call(self._insert_rows, batch)
            except SchemaError as e:
                self._schema_problem(e)
            except Exception as e:  # noqa: BLE001 - refused, lost, timed out: buffer it
                self._set_db_ok(False, e)
            else:
                self._record_write(len(batch), time.perf_counter() - t0)
                self.counters["written"] += len(batch)
                self._set_db_ok(True)
                return True
        try:
            await asyncio.to_thread(self._buffer.append_rows, batch)
        except BufferError as e:
            self._buffer_problem(e)
            return False
        self.counters["buffered"] += len(batch)
        self._flag("buffer_error", False, "historian buffer writable again")
        self._flag("buffer_full", False, "historian buffer accepts data again")
        return True

    async def _store_events(self, pairs: list[tuple[str, Event]]) -> None:
        assert self._buffer is not None
        if self._buffer.event_rows == 0 and self._retry_due():
            try:
                await self._db_call(insert_events, self.engine, pairs)
            except SchemaError as e:
                self._schema_problem(e)
            except Exception as e:  # noqa: BLE001
                self._set_db_ok(False, e)
            else:
                self.counters["events_written"] += len(pairs)
                return
        try:
            await asyncio.to_thread(self._buffer.append_events, pairs)
            self.counters["events_buffered"] += len(pairs)
        except BufferError as e:
            self._buffer_problem(e)
            self._event_queue[:0] = pairs

    async def _forward(self, deadline: float) -> bool:
        """Forward buffered rows oldest first until empty, failure or ``deadline``. True: more to do."""
        buf = self._buffer
        assert buf is not None
        while not buf.empty:
            try:
                if buf.event_rows:
                    seq, evs = await asyncio.to_thread(buf.peek_events, self.batch_size)
                    await self._db_call(insert_events, self.engine, evs)
                    await asyncio.to_thread(buf.delete_events_upto, seq)
                    self.counters["events_written"] += len(evs)
                if buf.sample_rows:
                    seq, rows = await asyncio.to_thread(buf.peek_rows, self.batch_size)
                    t0 = time.perf_counter()
                    await self._db_call(self._insert_rows, rows)
                    self._record_write(len(rows), time.perf_counter() - t0)
                    await asyncio.to_thread(buf.delete_samples_upto, seq)
                    self.counters["forwarded"] += len(rows)
            except SchemaError as e:
                self._schema_problem(e)
                return False
            except BufferError as e:
                self._buffer_problem(e)
                return False
            except Exception as e:  # noqa: BLE001
                self._set_db_ok(False, e)
                return False
            self._set_db_ok(True)
            self._flag("buffer_full", False, "historian buffer has room again (forwarding)")
            if time.monotonic() >= deadline:
                break
        if buf.empty:
            self._flag("buffering", False, "historian buffer forwarded: the database is up to date")
        return not buf.empty

    async def _refresh_buffer_stats(self) -> None:
        buf = self._buffer
        if buf is None:
            return
        try:
            self._buffer_bytes = await asyncio.to_thread(buf.used_bytes)
        except Exception as e:  # noqa: BLE001
            self._buffer_problem(BufferError(str(e)))
            return
        self._buffer_fraction = min(1.0, self._buffer_bytes / (buf.max_pages * buf.page_size))
        if not buf.empty:
            self._flag("buffering", True, f"historian is buffering to {buf.path} (database unavailable or slow)")
        self._flag("buffer_filling", self._buffer_fraction >= 0.8,
                   f"historian buffer {self._buffer_fraction:.0%} full", priority="high")

    def _record_write(self, rows: int, dt: float) -> None:
        self.last_flush_latency_s = dt
        self.max_flush_latency_s = max(self.max_flush_latency_s, dt)
        rate = rows / dt if dt > 0 else 0.0
        self.rows_per_s = rate if self.rows_per_s == 0 else 0.8 * self.rows_per_s + 0.2 * rate

    # ------------------------------------------------------------------ health
    def _set_db_ok(self, ok: bool, err: BaseException | None = None) -> None:
        if not ok:
            self.counters["db_failures"] += 1
            self.last_error = f"database: {err!r}" if err is not None else "database unavailable"
            self._next_retry = time.monotonic() + self.retry_interval_s
            self._ready = self._ready and not isinstance(err, SchemaError)
        self._db_ok = ok
        self._flag("db_unreachable", not ok,
                   f"historian cannot write to {display_url(self.url)}: {err!r}" if not ok
                   else f"historian database {display_url(self.url)} reachable again")

    def _schema_problem(self, e: SchemaError) -> None:
        self._ready = False
        self._db_ok = False
        self._next_retry = time.monotonic() + self.retry_interval_s
        self.last_error = str(e)
        self._flag("schema_mismatch", True, str(e), priority="critical")

    def _buffer_problem(self, e: BufferError) -> None:
        self.last_error = str(e)
        if isinstance(e, BufferFull):
            self._flag("buffer_full", True, f"{e}; new data is held in memory", priority="critical")
        else:
            self._flag("buffer_error", True, f"{e}; new data is held in memory", priority="critical")

    def _flag(self, name: str, on: bool, message: str, priority: str = "high") -> None:
        if on == (name in self._flags):
            return
        if on:
            self._flags.add(name)
            log.warning("historian: %s", message)
        else:
            self._flags.discard(name)
            log.info("historian: %s", message)
        ev = Event(ts=self._clock(), kind=EventKind.SYSTEM, source=f"historian.{name}", message=message,
                   priority=priority if on else None, state="active" if on else "cleared")
        self.recent_events.append(ev)
        self._event_queue.append((uuid.uuid4().hex, ev))
        if self._on_event is not None:
            try:
                self._on_event(ev)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the historian
                log.exception("historian: on_event callback failed")

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(self._flags)

    def status(self) -> dict[str, Any]:
        """Health and backpressure figures (cached; no I/O)."""
        buf = self._buffer
        return {
            "running": self._task is not None and not self._task.done(),
            "database": display_url(self.url),
            "db_ok": self._db_ok,
            "flags": sorted(self._flags),
            "queue_depth": len(self._queue),
            "queue_high_water": self.queue_high_water,
            "buffer_path": str(self.buffer_path),
            "buffer_rows": buf.sample_rows if buf else 0,
            "buffer_events": buf.event_rows if buf else 0,
            "buffer_bytes": self._buffer_bytes,
            "buffer_fraction": round(self._buffer_fraction, 4),
            "last_flush_latency_s": self.last_flush_latency_s,
            "max_flush_latency_s": self.max_flush_latency_s,
            "rows_per_s": self.rows_per_s,
            "counters": dict(self.counters),
            "rejected": dict(self.rejected),
            "coerced": dict(self.coerced),
            "last_error": self.last_error,
        }

    # ------------------------------------------------------------------ events
    async def write_events(self, events: list[Event]) -> None:
        """Journal events: to the database, else the buffer, else memory until the next flush."""
        if not events:
            return
        if self._buffer is None:
            raise RuntimeError("historian not started: await hist.start() first")
        await self._store_events([(uuid.uuid4().hex, e) for e in events])

    async def query_events(self, **filters: Any) -> list[Event]:
        """See :func:`historian.queries.query_events` (start, end, kinds, tank, priority, state, source,
        limit, offset, newest_first)."""
        return await queries.query_events(self.engine, **filters)

    # ------------------------------------------------------------------ queries
    async def query_raw(self, tag: str, start: float, end: float) -> list[StoredSample]:
        return await queries.query_raw(self.engine, tag, start, end)

    async def query_aggregates(
        self, tags: list[str], start: float, end: float, buckets: int, *, twa: bool = True
    ) -> dict[str, list[Bucket]]:
        return await queries.query_aggregates(self.engine, tags, start, end, buckets, twa=twa)

    async def last_before(self, tag: str, ts: float) -> StoredSample | None:
        return await queries.last_before(self.engine, tag, ts)

    async def export_csv(self, tags: list[str], start: float, end: float) -> str:
        return await queries.export_csv(self.engine, tags, start, end)

    async def apply_retention(self, now: float | None = None) -> dict[str, int]:
        """Delete samples older than each tag's ``retention_days`` (else the global one) and old events."""
        now = self._clock() if now is None else now
        async with self.engine.connect() as conn:
            res = await conn.execute(text("SELECT id, name, retention_days FROM tags"))
            rows = res.all()
        deleted = 0
        for tid, _name, days in rows:
            d = days if days is not None else self.retention_days
            if d is None:
                continue
            deleted += await queries.delete_before(self.engine, int(tid), now - float(d) * DAY_S,
                                                   self.retention_batch)
        events = 0
        if self.events_retention_days is not None:
            events = await queries.delete_events_before(self.engine, now - self.events_retention_days * DAY_S,
                                                        self.retention_batch)
        return {"samples": deleted, "events": events}

    # ------------------------------------------------------------------ users (HMI)
    async def create_user(self, username: str, password_hash: str, role: str) -> UserRecord:
        return await users.create_user(self.engine, username=username, password_hash=password_hash, role=role,
                                       created_ts=self._clock())

    async def get_user(self, username: str) -> UserRecord | None:
        return await users.get_user(self.engine, username)

    async def list_users(self) -> list[UserRecord]:
        return await users.list_users(self.engine)

    async def update_user_role(self, username: str, role: str) -> UserRecord:
        return await users.update_user_role(self.engine, username, role)

    async def set_user_disabled(self, username: str, disabled: bool = True) -> UserRecord:
        return await users.set_user_disabled(self.engine, username, disabled)

    async def set_user_password_hash(self, username: str, password_hash: str) -> UserRecord:
        return await users.set_user_password_hash(self.engine, username, password_hash)
