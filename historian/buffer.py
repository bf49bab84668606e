"""Store-and-forward buffer: a local SQLite file that holds batches while the database is away.

Rows keep their arrival order (``seq``) and are deleted only after the database has committed them,
so a crash between the two gives a duplicate that the database's idempotent insert ignores, never a
loss. The file is size-limited with SQLite's ``max_page_count``: a full buffer (or a full disk)
raises :class:`BufferFull`, which the historian reports as an alarm and answers by keeping the
batch in memory. Synchronous on purpose (sqlite3 is fast for this); the historian calls it through
``asyncio.to_thread`` so the event loop never waits on the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from historian.policy import Record, Row, as_row
from scada.events import Event, EventKind
from scada.tags import Quality

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, ts REAL NOT NULL, value REAL,
    quality INTEGER NOT NULL, reason TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL,
    source TEXT NOT NULL, message TEXT, tank TEXT, area TEXT, priority TEXT, state TEXT, value REAL,
    username TEXT, comment TEXT, data TEXT);
"""

_QUALITY = {q.value: q for q in Quality}


class BufferError(RuntimeError):
    """The buffer file cannot be written (I/O error, read-only, corrupt)."""


class BufferFull(BufferError):
    """The buffer reached its size limit or the disk is full."""


class ForwardBuffer:
    """Durable FIFO of sample rows and events, bounded to ``max_bytes`` on disk."""

    def __init__(self, path: str | Path, max_bytes: int = 1 << 30) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives a power cut, not only a kill -9
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self.page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        self.max_pages = max(16, max_bytes // self.page_size)
        self._conn.execute(f"PRAGMA max_page_count={self.max_pages}")
        self.sample_rows = int(self._conn.execute("SELECT count(*) FROM samples").fetchone()[0])
        self.event_rows = int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ size
    def used_bytes(self) -> int:
        with self._lock:
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self.page_size

    def fraction(self) -> float:
        """How full the buffer is, 0..1, against its size limit."""
        return min(1.0, self.used_bytes() / (self.max_pages * self.page_size))

    @property
    def empty(self) -> bool:
        return self.sample_rows == 0 and self.event_rows == 0

    # ------------------------------------------------------------------ write
    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower():
                    raise BufferFull(f"store-and-forward buffer {self.path} is full: {e}") from e
                raise BufferError(f"store-and-forward buffer {self.path} cannot be written: {e}") from e

    def append_samples(self, records: list[Record]) -> None:
        """Append rows in order, all or nothing."""
        self.append_rows([as_row(r) for r in records])

    def append_rows(self, rows: list[Row]) -> None:
        """:meth:`append_samples` for the writer's ``(tag, ts, value, quality int, reason)`` rows."""
        self._write("INSERT INTO samples (tag, ts, value, quality, reason) VALUES (?, ?, ?, ?, ?)", rows)
        self.sample_rows += len(rows)

    def append_events(self, events: list[tuple[str, Event]]) -> None:
        """Append (uid, event) pairs in order, all or nothing."""
        self._write(
            "INSERT INTO events (uid, ts, kind, source, message, tank, area, priority, state, value, "
            "username, comment, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (uid, e.ts, str(e.kind), e.source, e.message, e.tank, e.area, e.priority, e.state, e.value,
                 e.user, e.comment, json.dumps(e.data))
                for uid, e in events
            ],
        )
        self.event_rows += len(events)

    # ------------------------------------------------------------------ read / delete
    def peek_samples(self, limit: int) -> tuple[int, list[Record]]:
        """The oldest ``limit`` rows and the seq of the last one (0 when empty)."""
        seq, rows = self.peek_rows(limit)
        return seq, [Record(r[0], r[1], r[2], _QUALITY[r[3]], r[4]) for r in rows]

    def peek_rows(self, limit: int) -> tuple[int, list[Row]]:
        """:meth:`peek_samples` as the writer's ``(tag, ts, value, quality int, reason)`` rows."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, tag, ts, value, quality, reason FROM samples ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        if not rows:
            return 0, []
        return rows[-1][0], [(r[1], r[2], r[3], r[4], r[5]) for r in rows]

    def peek_events(self, limit: int) -> tuple[int, list[tuple[str, Event]]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, uid, ts, kind, source, message, tank, area, priority, state, value, username, "
                "comment, data FROM events ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        if not rows:
            return 0, []
        out = [
            (r[1], Event(ts=r[2], kind=EventKind(r[3]), source=r[4], message=r[5] or "", tank=r[6], area=r[7],
                         priority=r[8], state=r[9], value=r[10], user=r[11], comment=r[12],
                         data=json.loads(r[13]) if r[13] else {}))
            for r in rows
        ]
        return rows[-1][0], out

    def delete_samples_upto(self, seq: int) -> None:
        """Forget rows up to ``seq`` once the database has committed them."""
        with self._lock:
            n = self._conn.execute("DELETE FROM samples WHERE seq <= ?", (seq,)).rowcount
        self.sample_rows = max(0, self.sample_rows - n)

    def delete_events_upto(self, seq: int) -> None:
        with self._lock:
            n = self._conn.execute("DELETE FROM events WHERE seq <= ?", (seq,)).rowcount
        self.event_rows = max(0, self.event_rows - n)
