"""Database writes: tag registration, idempotent sample and event inserts.

Inserts are ``ON CONFLICT DO NOTHING`` on the natural key (samples: ``(tag_id, ts)``, events:
``uid``) so that a batch forwarded twice (a crash between the database commit and the buffer
delete, or a timeout after the server had committed) is stored once. Both SQLite and PostgreSQL
understand the same statements; only the connection differs.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from historian.policy import Record, Row, as_row, effective_deadband
from scada.config.tags import TagConfig
from scada.events import Event

INSERT_SAMPLES = text(
    "INSERT INTO samples (tag_id, ts, value, quality, reason) "
    "VALUES (:tag_id, :ts, :value, :quality, :reason) ON CONFLICT DO NOTHING"
)
_INSERT_EVENTS = text(
    "INSERT INTO events (uid, ts, kind, source, message, tank, area, priority, state, value, username, "
    "comment, data) VALUES (:uid, :ts, :kind, :source, :message, :tank, :area, :priority, :state, :value, "
    ":username, :comment, :data) ON CONFLICT (uid) DO NOTHING"
)
_UPSERT_TAG = text(
    "INSERT INTO tags (name, unit, description, history_mode, deadband, retention_days, auto_registered, "
    "created_ts) VALUES (:name, :unit, :description, :history_mode, :deadband, :retention_days, "
    ":auto_registered, :created_ts) ON CONFLICT (name) DO UPDATE SET unit = excluded.unit, "
    "description = excluded.description, history_mode = excluded.history_mode, "
    "deadband = excluded.deadband, retention_days = excluded.retention_days, auto_registered = excluded.auto_registered"
)
_INSERT_TAG_IF_NEW = text(
    "INSERT INTO tags (name, unit, description, history_mode, deadband, retention_days, auto_registered, "
    "created_ts) VALUES (:name, '', :description, 'on_change', 0, NULL, :auto_registered, :created_ts) "
    "ON CONFLICT (name) DO NOTHING"
)
_SELECT_IDS = text("SELECT id, name FROM tags WHERE name IN :names").bindparams(
    bindparam("names", expanding=True)
)


class TagIds:
    """Name -> id cache of the ``tags`` table; unknown names are registered on first write."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def get(self, name: str) -> int | None:
        return self._ids.get(name)

    @property
    def known(self) -> dict[str, int]:
        """The cached name -> id map (read-only use)."""
        return self._ids

    async def sync_configs(self, conn: AsyncConnection, tags: Iterable[TagConfig], now: float) -> None:
        """Insert or update the metadata of configured tags, then load every id."""
        rows = [
            {
                "name": t.name, "unit": t.unit, "description": t.description, "history_mode": t.history.mode,
                "deadband": effective_deadband(t), "retention_days": t.history.retention_days,
                "auto_registered": False, "created_ts": now,
            }
            for t in tags
        ]
        if rows:
            await conn.execute(_UPSERT_TAG, rows)
        res = await conn.execute(text("SELECT id, name FROM tags"))
        self._ids = {name: int(i) for i, name in res.all()}

    async def resolve(self, conn: AsyncConnection, names: set[str], now: float) -> dict[str, int]:
        missing = [n for n in names if n not in self._ids]
        if missing:
            await conn.execute(
                _INSERT_TAG_IF_NEW,
                [{"name": n, "description": "auto-registered by the historian", "auto_registered": True,
                  "created_ts": now} for n in missing],
            )
            res = await conn.execute(_SELECT_IDS, {"names": missing})
            for i, name in res.all():
                self._ids[name] = int(i)
        return self._ids


_SQLITE_INSERT = (
    "INSERT INTO samples (tag_id, ts, value, quality, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS samples_in (tag_id integer, ts double precision, value double precision, "
    "quality smallint, reason varchar(40)) ON COMMIT DELETE ROWS"
)
_PG_MERGE = "INSERT INTO samples SELECT tag_id, ts, value, quality, reason FROM samples_in ON CONFLICT DO NOTHING"


async def insert_samples(engine: AsyncEngine, ids: TagIds, records: list[Record], now: float) -> None:
    """Insert records in one transaction (duplicates of (tag, ts) are ignored); see :func:`insert_rows`."""
    await insert_rows(engine, ids, [as_row(r) for r in records], now)


async def insert_rows(engine: AsyncEngine, ids: TagIds, rows: list[Row], now: float) -> None:
    """Insert the writer's rows in one transaction (duplicates of (tag, ts) are ignored).

    The rows go through the driver connection of the SQLAlchemy transaction (sqlite3 executemany;
    asyncpg COPY into a session temp table, then one INSERT .. SELECT .. ON CONFLICT DO NOTHING):
    the per-row cost of SQLAlchemy's parameter handling would otherwise dominate the ingest rate.
    """
    async with engine.begin() as conn:
        tag_ids = await ids.resolve(conn, {r[0] for r in rows}, now)
        rows = _db_rows(tag_ids, rows)
        dialect = conn.dialect.name
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if dialect == "sqlite" and driver is not None:
            await driver.executemany(_SQLITE_INSERT, rows)
        elif dialect == "postgresql" and driver is not None and hasattr(driver, "copy_records_to_table"):
            await conn.exec_driver_sql(_PG_STAGE)  # through SQLAlchemy: opens its transaction
            await driver.copy_records_to_table("samples_in", records=rows,
                                               columns=["tag_id", "ts", "value", "quality", "reason"])
            await driver.execute(_PG_MERGE)
        else:  # another driver: portable path
            await conn.execute(INSERT_SAMPLES, [
                {"tag_id": t, "ts": ts, "value": v, "quality": q, "reason": rs} for t, ts, v, q, rs in rows])


def _db_rows(tag_ids: dict[str, int], rows: list[Row]) -> list[tuple[int, float, float | None, int, str | None]]:
    """The writer's rows as ``samples`` rows (tag name -> id)."""
    return [(tag_ids[t], ts, v, q, r) for t, ts, v, q, r in rows]


class SqliteSampleWriter:
    """Writes sample batches to a SQLite file through a plain ``sqlite3`` connection of its own.

    Why: through SQLAlchemy + aiosqlite a batch costs three thread hops (BEGIN, executemany, COMMIT),
    each waiting for the event loop to turn while the scan keeps it busy. Here one hop to a single
    worker thread runs BEGIN, one ``executemany`` and COMMIT: what a hand-written sqlite3 loader does,
    with the engine's settings (WAL, synchronous=NORMAL, foreign keys, busy timeout). One worker
    thread keeps the connection's transactions strictly one after another even when a caller timed
    out and moved on; after any error the connection is reopened for the next batch.
    """

    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="historian-sqlite-writer")

    def _connect(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                            check_same_thread=False)
        try:
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA foreign_keys=ON")
            c.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        except BaseException:
            c.close()
            raise
        return c

    def _write(self, tag_ids: dict[str, int], batch: list[Row]) -> None:
        rows = _db_rows(tag_ids, batch)
        c = self._conn
        if c is None:
            c = self._conn = self._connect()
        try:
            c.execute("BEGIN")
            c.executemany(_SQLITE_INSERT, rows)
            c.execute("COMMIT")
        except BaseException:
            self._conn = None
            try:
                if c.in_transaction:
                    c.execute("ROLLBACK")
            finally:
                c.close()
            raise

    async def insert(self, engine: AsyncEngine, ids: TagIds, rows: list[Row], now: float) -> None:
        """Insert rows in one transaction (duplicates of (tag, ts) are ignored); unknown tags first."""
        names = {r[0] for r in rows}
        tag_ids = ids.known
        if not names.issubset(tag_ids.keys()):
            async with engine.begin() as conn:
                tag_ids = await ids.resolve(conn, names, now)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, tag_ids, rows)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)


async def insert_events(engine: AsyncEngine, events: list[tuple[str, Event]]) -> None:
    """Insert (uid, event) pairs in one transaction (a uid already stored is ignored)."""
    async with engine.begin() as conn:
        await conn.execute(
            _INSERT_EVENTS,
            [
                {"uid": uid, "ts": e.ts, "kind": str(e.kind), "source": e.source, "message": e.message,
                 "tank": e.tank, "area": e.area, "priority": e.priority, "state": e.state,
                 "value": e.value, "username": e.user, "comment": e.comment, "data": json.dumps(e.data)}
                for uid, e in events
            ],
        )
