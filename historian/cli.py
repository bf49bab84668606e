"""``scada db``: create, upgrade, inspect and downgrade the historian schema (Alembic, packaged)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from historian import db

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $SCADA_DATABASE_URL, else sqlite file scada.db)."),
]


def register(app: typer.Typer) -> None:
    """Add the ``db`` sub-command group to the ``scada`` CLI."""
    dbapp = typer.Typer(help="Historian database schema (migrations).", no_args_is_help=True)

    @dbapp.command("upgrade")
    def upgrade_cmd(
        url: DbOption = None,
        revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    ) -> None:
        """Create or migrate the schema up to the newest revision this software knows."""
        u = db.resolve_url(url)
        try:
            asyncio.run(db.upgrade(u, revision))
            rev = asyncio.run(db.current(u))
        except Exception as e:  # noqa: BLE001 - report, never a traceback
            typer.echo(f"{db.display_url(u)}: upgrade failed: {e}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{db.display_url(u)}: at revision {rev}")

    @dbapp.command("current")
    def current_cmd(url: DbOption = None) -> None:
        """Print the schema revision of the database and whether it matches this software."""
        u = db.resolve_url(url)
        try:
            rev = asyncio.run(db.current(u))
        except Exception as e:  # noqa: BLE001
            typer.echo(f"{db.display_url(u)}: cannot read the revision: {e}", err=True)
            raise typer.Exit(1) from None
        head = db.head_revision()
        state = "up to date" if rev == head else f"NOT at head {head} (run: scada db upgrade --db URL)"
        typer.echo(f"{db.display_url(u)}: revision {rev or 'none'} ({state})")
        if rev != head:
            raise typer.Exit(2)

    @dbapp.command("downgrade")
    def downgrade_cmd(
        revision: Annotated[str, typer.Argument(help="Target revision ('base' removes the schema).")],
        url: DbOption = None,
    ) -> None:
        """Migrate the schema down to REV."""
        u = db.resolve_url(url)
        try:
            asyncio.run(db.downgrade(u, revision))
            rev = asyncio.run(db.current(u))
        except Exception as e:  # noqa: BLE001
            typer.echo(f"{db.display_url(u)}: downgrade failed: {e}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{db.display_url(u)}: at revision {rev or 'none'}")

    app.add_typer(dbapp, name="db")
