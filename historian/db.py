"""Database URL, engine and schema revision: the only way the schema is created or changed.

``upgrade``/``downgrade``/``current`` run the Alembic migrations shipped inside the package (no
alembic.ini needed in the working directory). The server calls :func:`check_schema` at start and
refuses to run against a database whose revision is behind or ahead of this software.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///scada.db"
URL_ENV = "SCADA_DATABASE_URL"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(RuntimeError):
    """The database schema is missing, behind or ahead of this software; the message says the fix."""


def resolve_url(url: str | None = None) -> str:
    """The database URL: the argument, else ``SCADA_DATABASE_URL``, else the SQLite file ``scada.db``.

    Plain ``sqlite:///`` and ``postgresql://`` URLs get the async drivers (aiosqlite, asyncpg).
    """
    u = url or os.environ.get(URL_ENV) or DEFAULT_URL
    for plain, asynced in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if u.startswith(plain):
            return asynced + u[len(plain):]
    return u


def display_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str | None = None, *, busy_timeout_ms: int = 5000, **kwargs: Any) -> AsyncEngine:
    """An async engine for the historian database.

    SQLite: WAL journal, synchronous=NORMAL, foreign keys, ``busy_timeout``. PostgreSQL: an optional
    ``?search_path=schema`` URL parameter puts the historian in its own schema; JIT is off.
    """
    u = make_url(resolve_url(url))
    if u.get_backend_name() == "postgresql":
        search_path = u.query.get("search_path")
        u = u.difference_update_query(["search_path"])
        # jit off: our queries are short index range scans; JIT compiling them cost 15+ ms each time
        settings = {"application_name": "scada-historian", "jit": "off"}
        if search_path:
            settings["search_path"] = str(search_path)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("server_settings", settings)
        connect_args.setdefault("timeout", 5)
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(u, connect_args=connect_args, **kwargs)
    engine = create_async_engine(u, **kwargs)
    if u.get_backend_name() == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.close()

    return engine


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["configure_logger"] = False
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current(url: str | None = None) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()


async def _migrate(url: str | None, action: str, revision: str) -> None:
    cfg = alembic_config()

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the newest this software knows)."""
    await _migrate(url, "upgrade", revision)


async def downgrade(url: str | None, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` removes every historian table)."""
    await _migrate(url, "downgrade", revision)


async def check_schema(engine: AsyncEngine) -> None:
    """Refuse a database whose schema revision is not this software's head, saying how to fix it."""
    url = display_url(engine.url.render_as_string(hide_password=False))
    async with engine.connect() as conn:
        rev = await conn.run_sync(_current)
    head = head_revision()
    if rev == head:
        return
    fix = f"run: scada db upgrade --db {url}"
    if rev is None:
        raise SchemaError(f"database {url} has no historian schema (empty or not initialised); {fix}")
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revision(rev)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        raise SchemaError(
            f"database {url} is at schema revision {rev!r}, which this software (head {head!r}) does not "
            "know: it was upgraded by a newer version. Run that newer version, or downgrade the database "
            "with it (scada db downgrade REV)"
        ) from None
    raise SchemaError(f"database {url} is at schema revision {rev!r}, behind this software ({head!r}); {fix}")
