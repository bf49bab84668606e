"""``scada user add`` / ``scada user list`` against a real (temporary) SQLite historian database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hmi.cli import register
from hmi.security import verify_password

historian_db = pytest.importorskip("historian.db")


@pytest.fixture
def cli(tmp_path: Path) -> tuple[typer.Typer, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    asyncio.run(historian_db.upgrade(url))
    app = typer.Typer()
    register(app)
    return app, url


def test_add_and_list(cli: tuple[typer.Typer, str]) -> None:
    app, url = cli
    r = CliRunner().invoke(app, ["user", "add", "anna", "--role", "engineer", "--password-stdin", "--db", url],
                           input="s3cret-password\n")
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["user", "list", "--db", url])
    assert r.exit_code == 0 and "anna" in r.output and "engineer" in r.output
    from historian.users import get_user

    async def stored():  # noqa: ANN202
        eng = historian_db.make_engine(url)
        try:
            return await get_user(eng, "anna")
        finally:
            await eng.dispose()

    user = asyncio.run(stored())
    assert user is not None and user.password_hash.startswith("$argon2")
    assert verify_password("s3cret-password", user.password_hash)


def test_prompted_password(cli: tuple[typer.Typer, str]) -> None:
    app, url = cli
    r = CliRunner().invoke(app, ["user", "add", "bob", "--role", "operator", "--db", url],
                           input="long-password\nlong-password\n")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("args", "stdin", "code", "needle"), [
    (["user", "add", "<img>", "--role", "admin", "--password-stdin"], "long-password\n", 1, "user name"),
    (["user", "add", "carl", "--role", "admin", "--password-stdin"], "short\n", 1, "password"),
    (["user", "add", "carl", "--role", "god", "--password-stdin"], "long-password\n", 2, "role"),
])
def test_refusals(cli: tuple[typer.Typer, str], args: list[str], stdin: str, code: int, needle: str) -> None:
    app, url = cli
    r = CliRunner().invoke(app, [*args, "--db", url], input=stdin)
    assert r.exit_code == code and needle in r.output


def test_duplicate_and_missing_schema(cli: tuple[typer.Typer, str], tmp_path: Path) -> None:
    app, url = cli
    args = ["user", "add", "dora", "--role", "viewer", "--password-stdin", "--db", url]
    assert CliRunner().invoke(app, args, input="long-password\n").exit_code == 0
    r = CliRunner().invoke(app, args, input="long-password\n")
    assert r.exit_code == 1 and "already exists" in r.output
    empty = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    r = CliRunner().invoke(app, ["user", "list", "--db", empty])
    assert r.exit_code == 1 and "scada db upgrade" in r.output
