"""``scada user add NAME --role ROLE`` and ``scada user list``: HMI users in the historian database.

Passwords are prompted (twice, hidden) or read from stdin (``--password-stdin``, one line) and
stored only as argon2 hashes.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from hmi.ports import Role
from hmi.security import check_password, check_username, hash_password

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $SCADA_DATABASE_URL, else sqlite file scada.db)."),
]


async def _with_engine(url: str | None, fn):  # noqa: ANN001, ANN202
    from historian import db

    engine = db.make_engine(db.resolve_url(url))
    try:
        await db.check_schema(engine)
        return await fn(engine)
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    """Add the ``user`` sub-command group to the ``scada`` CLI."""
    users = typer.Typer(help="HMI users (viewer < operator < engineer < admin).", no_args_is_help=True)

    @users.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -).")],
        role: Annotated[Role, typer.Option("--role", help="viewer, operator, engineer or admin.")],
        password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
        url: DbOption = None,
    ) -> None:
        """Create a user; the password is prompted unless --password-stdin."""
        from historian.users import UserExists, create_user

        try:
            check_username(name)
            if password_stdin:
                password = sys.stdin.readline().rstrip("\r\n")
            else:
                password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
            check_password(password)
        except ValueError as e:
            typer.echo(f"refused: {e}", err=True)
            raise typer.Exit(1) from None
        pw_hash = hash_password(password)
        try:
            asyncio.run(_with_engine(url, lambda eng: create_user(eng, username=name, password_hash=pw_hash, role=role.value)))
        except UserExists as e:
            typer.echo(f"refused: {e}", err=True)
            raise typer.Exit(1) from None
        except Exception as e:  # noqa: BLE001 - a plain message, never a traceback
            typer.echo(f"could not add user: {e}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"user {name!r} added with role {role.value}")

    @users.command("list")
    def list_(url: DbOption = None) -> None:
        """List users: name, role, created, disabled."""
        from historian.users import list_users

        try:
            rows = asyncio.run(_with_engine(url, list_users))
        except Exception as e:  # noqa: BLE001
            typer.echo(f"could not list users: {e}", err=True)
            raise typer.Exit(1) from None
        if not rows:
            typer.echo("no users (add one: scada user add NAME --role admin)")
            return
        typer.echo(f"{'user':<24} {'role':<9} {'created (UTC)':<20} state")
        for u in rows:
            created = datetime.fromtimestamp(u.created_ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            typer.echo(f"{u.username:<24} {u.role:<9} {created:<20} {'disabled' if u.disabled else 'active'}")

    app.add_typer(users, name="user")
