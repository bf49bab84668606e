"""The plating migration: one head, upgrade/downgrade on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from historian import current, downgrade, make_engine, upgrade
from historian.db import alembic_config

PLATING = {"recipes", "loads", "load_steps", "amp_hour_counters"}


def test_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    plain = base.replace("postgresql+asyncpg://", "postgresql://", 1)
    schema = f"platmig_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?search_path={schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_downgrade(url: str) -> None:
    await upgrade(url, "0002_plating")
    assert await current(url) == "0002_plating"
    assert PLATING <= await _tables(url)
    await downgrade(url, "0001_initial")
    tables = await _tables(url)
    assert not PLATING & tables and {"tags", "events"} <= tables
    await upgrade(url)
    assert PLATING <= await _tables(url)
