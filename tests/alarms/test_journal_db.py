"""Journal round trip and restart restore through the real historian, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from historian import Historian, upgrade
from tests.alarms.journal_scenario import run_journal_scenario


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test: a SQLite file, or a private schema in the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'alarms.db'}"
        return
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    plain = base.replace("postgresql+asyncpg://", "postgresql://", 1)
    schema = f"alarms_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def hist(db_url: str, tmp_path: Path) -> AsyncIterator[Historian]:
    await upgrade(db_url)
    h = Historian(db_url, tmp_path / "buffer.db", flush_interval_s=0.05, db_timeout_s=2.0,
                  retry_interval_s=0.1, clock=lambda: 1_700_000_100.0)
    await h.start()
    try:
        yield h
    finally:
        await h.stop()


async def test_journal_round_trip_and_restart_restore(hist: Historian) -> None:
    await run_journal_scenario(hist)
