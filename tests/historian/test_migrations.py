"""Schema: migrations up and down on empty and populated databases, the revision check, the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from historian import (
    Historian,
    SchemaError,
    check_schema,
    current,
    downgrade,
    head_revision,
    make_engine,
    upgrade,
)
from scada.tags import Sample

from .conftest import tag

TABLES = {"tags", "samples", "events", "users"}


async def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_and_downgrade_on_empty_database(db_url: str) -> None:
    assert await current(db_url) is None
    await upgrade(db_url)
    assert await current(db_url) == head_revision()
    assert TABLES <= await tables(db_url)
    await downgrade(db_url, "base")
    assert await current(db_url) is None
    assert not (TABLES & await tables(db_url))
    await upgrade(db_url)  # and back up again
    assert await current(db_url) == head_revision()


async def test_down_and_up_on_populated_database(db_url: str, tmp_path: Path) -> None:
    await upgrade(db_url)
    h = Historian(db_url, tmp_path / "b.db", [tag("line1.a.temp")], flush_interval_s=0.05)
    await h.start()
    h.submit({"line1.a.temp": Sample.good_value(1.5, time.time())})
    await h.create_user("op", "hash", "operator")
    await h.stop()
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM samples"))).scalar() >= 1
        assert (await conn.execute(text("SELECT count(*) FROM v_samples"))).scalar() >= 1
    await engine.dispose()
    await downgrade(db_url, "base")
    assert not (TABLES & await tables(db_url))
    await upgrade(db_url)
    assert TABLES <= await tables(db_url)


async def test_layout_is_clustered_per_tag_and_time(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                sql = (await conn.execute(text("SELECT sql FROM sqlite_master WHERE name='samples'"))).scalar()
                assert "WITHOUT ROWID" in sql.upper() and "PRIMARY KEY (tag_id, ts)" in sql
            else:
                rows = (await conn.execute(text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'samples' "
                    "AND schemaname = current_schema()"))).all()
                defs = {n: d for n, d in rows}
                assert "brin" in defs["ix_samples_ts_brin"].lower()
                assert "(tag_id, ts)" in defs["pk_samples"]
    finally:
        await engine.dispose()


async def test_check_schema_refuses_behind_and_ahead(db_url: str, tmp_path: Path) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaError, match="scada db upgrade --db"):
            await check_schema(engine)
        with pytest.raises(SchemaError, match="no historian schema"):
            await Historian(db_url, tmp_path / "b.db").start()
        await upgrade(db_url)
        await check_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        with pytest.raises(SchemaError, match="newer version"):
            await check_schema(engine)
    finally:
        await engine.dispose()


def test_cli_upgrade_current_downgrade(tmp_path: Path) -> None:
    import typer

    from historian.cli import register

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """root"""

    register(app)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    r = runner.invoke(app, ["db", "current", "--db", url])
    assert r.exit_code == 2 and "none" in r.output
    r = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert r.exit_code == 0, r.output
    assert head_revision() in r.output
    r = runner.invoke(app, ["db", "current", "--db", url])
    assert r.exit_code == 0 and "up to date" in r.output
    r = runner.invoke(app, ["db", "downgrade", "base", "--db", url])
    assert r.exit_code == 0 and "none" in r.output
    r = runner.invoke(app, ["db", "upgrade", "--db", "postgresql://nobody@127.0.0.1:1/x"])
    assert r.exit_code == 1 and "upgrade failed" in r.output
