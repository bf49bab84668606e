"""``scada run`` and ``scada demo``: the server (and, for the demo, the simulator) in one process."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DB = "sqlite+aiosqlite:///scada.db"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plating-line.yaml"
log = logging.getLogger("scada")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


async def _serve(runtime: object, settings: object, host: str, port: int, *, banner: str = "") -> None:
    """Start the runtime, serve the HMI with uvicorn until SIGINT/SIGTERM, then stop safely."""
    import uvicorn

    from hmi.app import create_app

    app = create_app(runtime, settings)  # type: ignore[arg-type]
    await runtime.start()  # type: ignore[attr-defined]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    try:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has a flag only
            await asyncio.sleep(0.05)
        if banner and server.started:
            print(banner, flush=True)
        await serving
    finally:
        await runtime.stop()  # type: ignore[attr-defined]


def with_device_ports(plant: object, modbus_port: int | None, opcua_port: int | None) -> object:
    """The plant with its (simulated) devices on the ports the simulator actually bound."""
    import re

    devices = []
    for d in plant.devices:  # type: ignore[attr-defined]
        if d.protocol == "modbus_tcp" and modbus_port:
            d = d.model_copy(update={"port": modbus_port})
        elif d.protocol == "opcua" and opcua_port:
            d = d.model_copy(update={"endpoint": re.sub(r":\d+(/|$)", f":{opcua_port}\\1", d.endpoint, count=1)})
        devices.append(d)
    return plant.model_copy(update={"devices": devices})  # type: ignore[attr-defined]


def _db_url(db: str | None) -> str:
    return db or os.environ.get("SCADA_DATABASE_URL") or DEFAULT_DB


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Annotated[Path, typer.Option("--config", "-c", help="Plant configuration YAML.")],
        db: Annotated[str | None, typer.Option(help="Database URL (default $SCADA_DATABASE_URL or SQLite scada.db).")] = None,
        host: Annotated[str, typer.Option(help="Address to serve the HMI/API on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="HTTP port.")] = 8000,
        buffer: Annotated[Path, typer.Option(help="Store-and-forward buffer file.")] = Path("scada-buffer.db"),
        migrate: Annotated[bool, typer.Option(help="Run `scada db upgrade` before starting.")] = False,
        log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    ) -> None:
        """Run the SCADA server: drivers, scan engine, alarms, historian and the web HMI."""
        from historian.db import SchemaError
        from hmi.settings import BindRefused, HmiSettings
        from scada.cli import load_or_exit
        from scada.runtime import Runtime

        _setup_logging(log_level)
        plant = load_or_exit(config)
        settings = HmiSettings()
        try:
            settings.check_bind(host)
        except BindRefused as e:
            typer.echo(f"scada run: {e}", err=True)
            raise typer.Exit(2) from None
        if settings.secret_key is None:
            # loopback only (check_bind refused anything else): sessions do not survive a restart
            log.warning("SCADA_SECRET_KEY not set: using a random key (logins end when the server restarts)")
            settings = HmiSettings(secret_key=secrets.token_urlsafe(48))
        runtime = Runtime(plant, db_url=_db_url(db), buffer_path=buffer, migrate=migrate)
        try:
            asyncio.run(_serve(runtime, settings, host, port,
                               banner=f"scada: serving {plant.line.name} on http://{host}:{port}/"))
        except SchemaError as e:
            typer.echo(f"scada run: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            pass

    @app.command("demo")
    def demo(
        config: Annotated[Path, typer.Option("--config", "-c", help="Plant file.")] = EXAMPLE,
        data_dir: Annotated[Path, typer.Option(help="Where the demo database and buffer live.")] = Path("demo-data"),
        port: Annotated[int, typer.Option(help="HTTP port of the HMI.")] = 8000,
        speed: Annotated[float, typer.Option(help="Simulator time acceleration.")] = 1.0,
        sim_modbus_port: Annotated[int | None, typer.Option(help="Simulator Modbus port (default: the plant file's; 0 = any free).")] = None,
        sim_opcua_port: Annotated[int | None, typer.Option(help="Simulator OPC UA port (default: the plant file's; 0 = any free).")] = None,
        log_level: Annotated[str, typer.Option(help="Log level.")] = "warning",
    ) -> None:
        """The full demo on this machine: simulator + server + web HMI on an SQLite file, demo users."""
        from hmi.settings import HmiSettings
        from scada.cli import load_or_exit
        from scada.runtime import Runtime

        _setup_logging(log_level)
        plant = load_or_exit(config)
        data_dir.mkdir(parents=True, exist_ok=True)
        db_url = f"sqlite+aiosqlite:///{(data_dir / 'scada-demo.db').resolve()}"
        settings = HmiSettings(demo=True, secret_key=None)
        passwords = {"admin": secrets.token_urlsafe(9), "operator": secrets.token_urlsafe(9),
                     "engineer": secrets.token_urlsafe(9)}

        async def main() -> None:
            from hmi.security import hash_password
            from simulator import PlantSimulator, SimulatorServers

            modbus_port = next((d.port for d in plant.devices if d.protocol == "modbus_tcp"), 15020)
            opcua_dev = next((d for d in plant.devices if d.protocol == "opcua"), None)
            opcua_port = int(opcua_dev.endpoint.rsplit(":", 1)[1].split("/")[0]) if opcua_dev else None
            if sim_modbus_port is not None:
                modbus_port = sim_modbus_port
            if sim_opcua_port is not None and opcua_port is not None:
                opcua_port = sim_opcua_port
            sim = PlantSimulator(plant, speed=speed, seed=1)
            async with SimulatorServers(sim, modbus_port=modbus_port, opcua_port=opcua_port, control_port=0) as srv:
                served = with_device_ports(plant, srv.modbus_port, srv.opcua_port)
                runtime = Runtime(served, db_url=db_url, buffer_path=data_dir / "buffer.sqlite", migrate=True)
                # users are set before the HMI opens (the runtime's historian must be up: start it here)
                banner_lines = [
                    "",
                    f"  Plating SCADA demo: {plant.line.name}",
                    f"  HMI:       http://127.0.0.1:{port}/      API docs: http://127.0.0.1:{port}/docs",
                    f"  Simulator: modbus 127.0.0.1:{srv.modbus_port}"
                    + (f", opc.tcp port {srv.opcua_port}" if srv.opcua_port else "")
                    + f", fault control {srv.control_url}",
                    "  Logins (demo only, new passwords every start):",
                    *[f"    {u:<9} {pw}" for u, pw in passwords.items()],
                    f"  Data: {data_dir.resolve()}   Stop with Ctrl-C.",
                    "",
                ]

                async def _users_then_serve() -> None:
                    import uvicorn

                    from hmi.app import create_app

                    await runtime.start()
                    for user, pw in passwords.items():
                        h = hash_password(pw)
                        existing = await runtime.historian.get_user(user)
                        if existing is None:
                            await runtime.historian.create_user(user, h, user)
                        else:
                            await runtime.historian.set_user_password_hash(user, h)
                    app = create_app(runtime, settings)
                    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
                    try:
                        serving = asyncio.create_task(server.serve())
                        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has a flag only
                            await asyncio.sleep(0.05)
                        if server.started:  # the banner promises a working URL: print it once it is true
                            print("\n".join(banner_lines), flush=True)
                        await serving
                    finally:
                        await runtime.stop()

                await _users_then_serve()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            pass
        except OSError as e:
            typer.echo(f"scada demo: {e} (is another demo or PLC simulator already running on these ports?)",
                       err=True)
            sys.exit(2)
