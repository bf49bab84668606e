"""docker-compose.yml and the Dockerfile, checked without Docker (not available on our machines).

What can break without anyone noticing until a deployment: a service command that our CLI no
longer accepts, a port or a host variable that no longer matches the plant file, a package missing
from the image, a healthcheck or a volume forgotten.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PLANT_IN_IMAGE = "/etc/scada/plant.yaml"
VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def scada_command(svc: dict[str, Any]) -> list[str]:
    cmd = svc["command"]
    assert isinstance(cmd, list), "use the exec form (a list) so no shell sits between Docker and the server"
    assert cmd[0] == "scada", cmd
    return [str(c) for c in cmd[1:]]


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return {k: str(v) for k, v in env.items()}


def plant_with(env: dict[str, str]) -> Any:
    """The plant file the image ships (the example), loaded with a service's environment."""
    from scada.config import load_config

    clean = {k: v for k, v in os.environ.items() if not VAR.fullmatch(f"${{{k}}}")}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=False):
        return load_config(ROOT / "examples" / "plating-line.yaml")


def test_expected_services_with_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "mosquitto", "simulator", "scada"} <= set(services)
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test"), f"service {name} has no healthcheck"
        assert not hc.get("disable"), f"service {name} disables its healthcheck"


def test_volumes_declared_and_used(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for svc in services.values():
        for v in svc.get("volumes") or []:
            src = v.split(":", 1)[0] if isinstance(v, str) else v.get("source")
            if src and not src.startswith((".", "/")):
                used.add(src)
    assert used, "no named volume: the database and the buffer would die with their containers"
    assert used <= declared, f"volumes used but not declared: {used - declared}"
    assert {"pgdata", "scada-data"} <= declared
    buffer_dir = str(Path(option(scada_command(services["scada"]), "--buffer") or "").parent)
    mounts = [v.split(":")[1] for v in services["scada"]["volumes"] if isinstance(v, str)]
    assert buffer_dir in mounts, f"the store-and-forward buffer ({buffer_dir}) is not on a volume: {mounts}"


def test_depends_on_waits_for_health(services: dict[str, dict[str, Any]]) -> None:
    deps = services["scada"]["depends_on"]
    for dep in ("postgres", "simulator"):
        assert deps[dep]["condition"] == "service_healthy", dep


@pytest.mark.parametrize("service", ["scada", "simulator"])
def test_service_command_is_accepted_by_our_cli(services: dict[str, dict[str, Any]], service: str) -> None:
    """``scada <cmd> --help`` exits 0, lists every option used, and the arguments parse as given."""
    import typer

    from scada.cli import _register_optional_commands, app

    args = scada_command(services[service])
    out = subprocess.run([sys.executable, "-m", "scada", args[0], "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    for opt in (a for a in args[1:] if a.startswith("--")):
        assert opt in out.stdout, f"{service}: option {opt} is not in `scada {args[0]} --help`"
    _register_optional_commands()
    group = typer.main.get_command(app)
    cmd = group.commands.get(args[0])  # type: ignore[attr-defined]
    assert cmd is not None, f"no command {args[0]!r}"
    ctx = cmd.make_context(args[0], list(args[1:]))  # raises on an unknown option or a bad value
    assert ctx.params["config"] == Path(PLANT_IN_IMAGE)


def test_dockerfile_default_command_is_accepted(services: dict[str, dict[str, Any]]) -> None:
    cmd_line = next(line for line in DOCKERFILE.read_text().splitlines() if line.startswith("CMD"))
    import json

    cmd = json.loads(cmd_line[3:].strip())
    assert cmd[:2] == ["scada", "run"]
    out = subprocess.run([sys.executable, "-m", "scada", "run", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={**os.environ, "COLUMNS": "200"})
    for opt in (a for a in cmd[2:] if a.startswith("--")):
        assert opt in out.stdout, opt


def test_hosts_and_ports_agree_with_the_plant_file(services: dict[str, dict[str, Any]]) -> None:
    scada_env = environment(services["scada"])
    text = (ROOT / "examples" / "plating-line.yaml").read_text()
    host_vars = {m.group(1) for m in VAR.finditer(text) if m.group(1).endswith("_HOST")}
    assert {"PLC1_HOST", "UA1_HOST"} <= host_vars
    for var in host_vars:
        assert var in scada_env, f"the plant file reads ${{{var}}} but the scada service does not set it"
        assert scada_env[var] in services, f"{var}={scada_env[var]} is not a service of the compose file"

    plant = plant_with(scada_env)
    sim_args = scada_command(services["simulator"])
    sim_exposed = {str(p).split("/")[0] for p in services["simulator"].get("expose") or []}
    for dev in plant.devices:
        if dev.protocol == "modbus_tcp":
            assert dev.host == "simulator"
            assert option(sim_args, "--modbus-port") == str(dev.port), "simulator Modbus port != plant device port"
            assert str(dev.port) in sim_exposed
        elif dev.protocol == "opcua":
            m = re.match(r"opc\.tcp://([^:/]+):(\d+)", dev.endpoint)
            assert m, dev.endpoint
            assert m.group(1) == "simulator"
            assert option(sim_args, "--opcua-port") == m.group(2), "simulator OPC UA port != plant endpoint port"
            assert m.group(2) in sim_exposed
    # the simulator must listen beyond its own container's loopback (`scada simulate --host`, default 127.0.0.1)
    assert option(sim_args, "--host") == "0.0.0.0", "simulator binds 127.0.0.1: the scada container cannot reach it"
    control = option(sim_args, "--control-port")
    assert control is None or control in sim_exposed


def test_server_settings_agree(services: dict[str, dict[str, Any]]) -> None:
    args = scada_command(services["scada"])
    env = environment(services["scada"])
    assert option(args, "--host") == "0.0.0.0"
    assert "SCADA_SECRET_KEY" in env and ":?" in env["SCADA_SECRET_KEY"], "the secret key must be required"
    port = option(args, "--port")
    assert any(str(p).split(":")[-1] == port for p in services["scada"].get("ports") or []), "HTTP port not published"
    assert port in str(services["scada"]["healthcheck"]["test"]), "healthcheck probes another port"
    assert "--migrate" in args, "docs/operations.md says the server runs the migrations itself in compose"
    db = env["SCADA_DATABASE_URL"]
    assert db.startswith("postgresql+asyncpg://") and "@postgres:5432/" in db
    pg_env = environment(services["postgres"])
    user = db.split("://", 1)[1].split(":", 1)[0]
    assert user == pg_env["POSTGRES_USER"] and db.rsplit("/", 1)[1] == pg_env["POSTGRES_DB"]


def test_dockerfile_copies_every_package() -> None:
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = py["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*").rstrip(".") for p in include}
    copied = set()
    for line in DOCKERFILE.read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"]:
            copied.update(p.rstrip("/").removeprefix("./") for p in parts[1:-1])
    missing = packages - copied
    assert not missing, f"Dockerfile does not COPY {sorted(missing)} (listed in pyproject's find include)"
    for pkg in packages:
        assert (ROOT / pkg / "__init__.py").exists(), pkg
    assert "examples" in copied, "the image's default plant file comes from examples/"
