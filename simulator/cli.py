"""``scada simulate`` (run the plant behind Modbus TCP / OPC UA) and ``scada sim-fault`` (poke it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from scada.config import ConfigError, ModbusTcpDevice, OpcUaDevice, PlantConfig, load_config
from simulator.faults import FaultError, FaultKind, load_scenario, parse_fault
from simulator.plant import MapRow, PlantSimulator

MAP_COLUMNS = [("tag", "TAG"), ("unit_id", "UNIT"), ("table", "TABLE"), ("address", "ADDR"),
               ("plc_address", "PLC"), ("type", "TYPE"), ("word_order", "WORDS"), ("scaling", "SCALING"),
               ("unit", "EU"), ("access", "ACCESS"), ("meaning", "SIMULATES"), ("description", "DESCRIPTION")]


def format_map(rows: list[MapRow]) -> str:
    """The register map as a fixed-width table (one block per device)."""
    out: list[str] = []
    for device in dict.fromkeys(r.device for r in rows):
        dev_rows = [r for r in rows if r.device == device]
        cells = [[h for _, h in MAP_COLUMNS]] + [
            ["" if getattr(r, k) is None else str(getattr(r, k)) for k, _ in MAP_COLUMNS] for r in dev_rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(MAP_COLUMNS))]
        out.append(f"Device {device}")
        for n, c in enumerate(cells):
            out.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append("")
    out.append("Addresses are 0-based PDU offsets; PLC = 1-based 0xxxx/1xxxx/3xxxx/4xxxx notation.")
    out.append("4-20 mA inputs: open loop reads 3.5 mA, short 21.5 mA, healthy saturates at 3.8/20.5 mA.")
    return "\n".join(out)


def _load(path: Path) -> PlantConfig:
    try:
        return load_config(path)
    except ConfigError as e:
        typer.echo(f"{path}: configuration refused ({len(e.issues)} problem(s)):", err=True)
        for issue in e.issues:
            typer.echo(f"  {issue.format(str(path))}", err=True)
        raise typer.Exit(1) from None


def _default_ports(plant: PlantConfig) -> tuple[int | None, int | None]:
    mb = next((d.port for d in plant.devices if isinstance(d, ModbusTcpDevice)), None)
    ua_port: int | None = None
    for d in plant.devices:
        if isinstance(d, OpcUaDevice):
            tail = d.endpoint.split("//", 1)[-1].split("/", 1)[0]
            if ":" in tail:
                with contextlib.suppress(ValueError):
                    ua_port = int(tail.rsplit(":", 1)[1])
            break
    return mb, ua_port


async def _serve(sim: PlantSimulator, host: str, modbus_port: int | None, opcua_port: int | None,
                 control_port: int | None) -> None:
    from simulator.servers import SimulatorServers

    servers = SimulatorServers(sim, host=host, modbus_port=modbus_port, opcua_port=opcua_port,
                               control_port=control_port)
    await servers.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    ports = servers.ports()
    typer.echo(f"simulating {len(sim.tanks)} tanks at {sim.speed:g}x (seed {sim.seed}); "
               f"modbus {host}:{ports['modbus']}  opcua {servers.opcua_endpoint or '-'}  "
               f"control {servers.control_url or '-'}", err=True)
    # one machine-readable line for scripts and end-to-end tests
    typer.echo(json.dumps({"ready": True, **ports, "opcua_endpoint": servers.opcua_endpoint,
                           "opcua_namespace": servers.opcua_namespace}))
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await servers.stop()


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``sim-fault`` to the ``scada`` command line."""

    @app.command("simulate")
    def simulate(
        config: Annotated[Path, typer.Option("--config", "-c", help="Plant configuration YAML file.")],
        modbus_port: Annotated[int | None, typer.Option(help="Modbus TCP port (default: the config's device).")] = None,
        opcua_port: Annotated[int | None, typer.Option(help="OPC UA port (default: the config's endpoint).")] = None,
        no_opcua: Annotated[bool, typer.Option("--no-opcua", help="Do not start the OPC UA server.")] = False,
        speed: Annotated[float, typer.Option(help="Simulated seconds per real second.")] = 1.0,
        seed: Annotated[int, typer.Option(help="Seed of the noise (reproducible runs).")] = 0,
        scenario: Annotated[Path | None, typer.Option(help="YAML/JSON timeline of faults and loads.")] = None,
        control_port: Annotated[int | None, typer.Option(help="Port of the JSON control endpoint (off if unset).")] = None,
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
        no_watchdog: Annotated[bool, typer.Option("--no-watchdog", help="Disable the heartbeat watchdog.")] = False,
        print_map: Annotated[bool, typer.Option("--print-map", help="Print the register map and exit.")] = False,
    ) -> None:
        """Run the plant simulator: Modbus TCP + OPC UA servers serving one simulated line."""
        plant = _load(config)
        try:
            sim = PlantSimulator(plant, speed=speed, seed=seed, watchdog=not no_watchdog)
            if scenario is not None:
                sim.load_scenario(load_scenario(scenario))
        except (FaultError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        if print_map:
            typer.echo(format_map(sim.register_map()))
            return
        mb_default, ua_default = _default_ports(plant)
        mb = modbus_port if modbus_port is not None else (mb_default or 502)
        ua: int | None = None if no_opcua else (opcua_port if opcua_port is not None else (ua_default or 4840))
        try:
            asyncio.run(_serve(sim, host, mb, ua, control_port))
        except (OSError, RuntimeError, ValueError) as e:
            typer.echo(f"error: cannot start the simulator: {e}", err=True)
            raise typer.Exit(1) from None

    @app.command("sim-fault")
    def sim_fault(
        control: Annotated[str, typer.Option("--control", help="Control endpoint URL, e.g. http://127.0.0.1:9020")],
        kind: Annotated[str | None, typer.Argument(help="Fault kind: " + ", ".join(k.value for k in FaultKind))] = None,
        tag: Annotated[str | None, typer.Option(help="Probe tag (probe faults).")] = None,
        tank: Annotated[str | None, typer.Option(help="Tank id (actuator faults, --load/--unload).")] = None,
        device: Annotated[str | None, typer.Option(help="Modbus device (comm faults; default all).")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Extra fault field key=value.")] = None,
        clear: Annotated[bool, typer.Option("--clear", help="Clear every fault (or --id).")] = False,
        fault_id: Annotated[str | None, typer.Option("--id", help="Fault id to clear.")] = None,
        state: Annotated[bool, typer.Option("--state", help="Print the physical truth.")] = False,
        load: Annotated[float | None, typer.Option("--load", help="Put a load of this area (dm2) in --tank.")] = None,
        unload: Annotated[bool, typer.Option("--unload", help="Take the load out of --tank.")] = False,
        estop: Annotated[str | None, typer.Option("--estop", help="on | off")] = None,
    ) -> None:
        """Inject or clear simulator faults, move loads, read the truth (talks to --control-port)."""
        base = control.rstrip("/")
        if state:
            _call("GET", f"{base}/state")
        elif clear or fault_id:
            _call("DELETE", f"{base}/faults" + (f"/{fault_id}" if fault_id else ""))
        elif load is not None:
            _call("POST", f"{base}/loads", {"tank": tank, "area_dm2": load})
        elif unload:
            _call("DELETE", f"{base}/loads/{tank}")
        elif estop is not None:
            _call("POST", f"{base}/estop", {"active": estop.lower() in ("on", "true", "1", "open")})
        elif kind is not None:
            body: dict[str, Any] = {"kind": kind, "tag": tag, "tank": tank, "device": device}
            for kv in param or []:
                k, sep, v = kv.partition("=")
                if not sep:
                    typer.echo(f"error: --param {kv!r} is not key=value", err=True)
                    raise typer.Exit(2)
                body[k.strip()] = _scalar(v.strip())
            body = {k: v for k, v in body.items() if v is not None}
            try:
                parse_fault(body)
            except FaultError as e:
                typer.echo(f"error: {e}", err=True)
                raise typer.Exit(2) from None
            _call("POST", f"{base}/faults", body)
        else:
            _call("GET", f"{base}/faults")


def _scalar(v: str) -> Any:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def _call(method: str, url: str, body: Any = None) -> None:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - operator-given URL
            typer.echo(resp.read().decode())
    except urllib.error.HTTPError as e:
        typer.echo(f"error: {e.code}: {e.read().decode()}", err=True)
        raise typer.Exit(1) from None
    except (urllib.error.URLError, OSError) as e:
        typer.echo(f"error: cannot reach {url}: {e}", err=True)
        raise typer.Exit(1) from None
