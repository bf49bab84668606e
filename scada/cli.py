"""The ``scada`` command line: one entry point for integrators (check, simulate, run, demo, db, user).

Each sub-command builds what it needs from the config (composition happens in the command, never
at import time) and reports bad input as plain messages with a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer

from scada.config import ConfigError, PlantConfig, load_config

app = typer.Typer(
    name="scada",
    help="Open SCADA server for electroplating lines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version() -> str:
    try:
        return version("plating-scada")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def _version_cb(value: bool) -> None:
    if value:
        typer.echo(f"scada {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version_: Annotated[
        bool, typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Open SCADA server for electroplating lines."""


def load_or_exit(path: Path) -> PlantConfig:
    """Load a plant config, or print every problem to stderr and exit 1."""
    try:
        return load_config(path)
    except ConfigError as e:
        typer.echo(f"{path}: configuration refused ({len(e.issues)} problem(s)):", err=True)
        for issue in e.issues:
            typer.echo(f"  {issue.format(str(path))}", err=True)
        raise typer.Exit(1) from None


@app.command("check-config")
def check_config(file: Annotated[Path, typer.Argument(help="Plant configuration YAML file.")]) -> None:
    """Validate a plant configuration: exit 0 with a summary, or 1 with every error."""
    plant = load_or_exit(file)
    n_loops = sum(len(t.loops) for t in plant.tanks)
    n_il = sum(len(t.interlocks) for t in plant.tanks)
    typer.echo(
        f"{file}: OK: {len(plant.devices)} devices, {len(plant.tags)} tags, {len(plant.tanks)} tanks, "
        f"{n_loops} loops, {n_il} interlocks"
    )


@app.command("config-schema")
def config_schema() -> None:
    """Print the JSON Schema of the plant configuration (for editors and CI checks)."""
    schema = PlantConfig.model_json_schema()
    schema["title"] = "Plating SCADA plant configuration"
    typer.echo(json.dumps(schema, indent=2))


def _register_optional_commands() -> None:
    """Sub-commands that live in other packages register themselves here (imported lazily)."""
    import importlib

    for module in ("simulator.cli", "scada.runtime_cli", "historian.cli", "hmi.cli"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                continue  # that package has not landed yet
            raise
        mod.register(app)


def main(argv: list[str] | None = None) -> None:
    _register_optional_commands()
    app(args=argv, prog_name="scada")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
