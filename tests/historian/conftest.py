"""Historian fixtures: one test body runs on a SQLite file and on the real PostgreSQL.

PostgreSQL tests get a private schema in the session database (``?search_path=`` in the URL,
dropped after the test), so tests never see each other's tables.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from historian import Historian, upgrade
from scada.config.tags import TagConfig


def pg_plain(url: str) -> str:
    """psycopg URL of an asyncpg SQLAlchemy URL (without our search_path parameter)."""
    return url.split("?", 1)[0].replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hist.db'}"
        return
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    schema = f"hist_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_plain(base), autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        with psycopg.connect(pg_plain(base), autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def migrated_url(db_url: str) -> str:
    await upgrade(db_url)
    return db_url


def tag(name: str, **history: object) -> TagConfig:
    return TagConfig.model_validate({"name": name, "unit": "degC", "description": f"test {name}",
                                     "history": history})


class FakeClock:
    """Settable wall clock for the historian's validation and heartbeat (epoch seconds)."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def hist(migrated_url: str, tmp_path: Path) -> AsyncIterator[Historian]:
    h = Historian(migrated_url, tmp_path / "buffer.db", [tag("line1.a.temp"), tag("line1.b.temp")],
                  flush_interval_s=0.05, db_timeout_s=2.0, retry_interval_s=0.1)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()
