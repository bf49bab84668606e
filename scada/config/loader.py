"""Load a plant YAML file: parse, validate every model, check every cross-reference, report all at once.

Each problem is a :class:`ConfigIssue` with the key path a plant engineer can find in the file
(``tanks[2].sensors.temperature.tags[1]``), the line number where we know it, and the reason.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scada.conditions import ConditionKind, parse_condition
from scada.config.plant import PlantConfig
from scada.config.tags import DataType, ModbusTable, TagConfig


@dataclass(frozen=True)
class ConfigIssue:
    path: str
    message: str
    line: int | None = None

    def format(self, source: str = "") -> str:
        where = f"{source}:{self.line}" if source and self.line else (source or "")
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.path or '<top>'}: {self.message}"


class ConfigError(Exception):
    """The configuration was refused; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue], source: str = "") -> None:
        self.issues = issues
        self.source = source
        super().__init__("\n".join(i.format(source) for i in issues))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# ---------------------------------------------------------------- YAML with line numbers


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: str, path: str, line: int, env: Mapping[str, str], issues: list[ConfigIssue]) -> str:
    """Replace ``${NAME}`` / ``${NAME:-default}`` with environment values (deployment overrides)."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(ConfigIssue(path, f"environment variable {name} is not set and has no default "
                                        f"(write ${{{name}:-value}})", line))
        return m.group(0)

    return _ENV_RE.sub(sub, value)


def _yaml_to_data(
    text: str, source: str, env: Mapping[str, str] | None = None
) -> tuple[Any, dict[str, int]]:
    """Parse YAML into plain data and a map key-path -> line; duplicate keys are errors.

    Plain string scalars may use ``${NAME}`` or ``${NAME:-default}`` to take a value from the
    environment (how docker-compose points the server at its simulator or database).
    """
    env = os.environ if env is None else env
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError([ConfigIssue("", f"not valid YAML: {problem}", line)], source) from None
    lines: dict[str, int] = {}
    dupes: list[ConfigIssue] = []
    constructor = yaml.SafeLoader("")

    def walk(node: yaml.Node | None, path: str) -> Any:
        if node is None:
            return None
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for k_node, v_node in node.value:
                key = constructor.construct_object(k_node, deep=True)
                sub = f"{path}.{key}" if path else str(key)
                if key in out:
                    dupes.append(ConfigIssue(sub, "duplicate key (the later value would silently win)",
                                             k_node.start_mark.line + 1))
                lines[sub] = k_node.start_mark.line + 1
                out[key] = walk(v_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str" and "${" in node.value:
            resolved = _interpolate(node.value, path, node.start_mark.line + 1, env, dupes)
            if node.style is None and resolved != node.value:
                # re-resolve plain scalars so "${PORT:-502}" becomes an int like a literal 502 would
                return yaml.safe_load(resolved) if resolved.strip() else resolved
            return resolved
        return constructor.construct_object(node, deep=True)

    data = walk(root, "")
    if dupes:
        raise ConfigError(dupes, source)
    return data, lines


def _line_for(path: str, lines: dict[str, int]) -> int | None:
    p = path
    while p:
        if p in lines:
            return lines[p]
        cut = max(p.rfind("."), p.rfind("["))
        p = p[:cut] if cut > 0 else ""
    return None


# ---------------------------------------------------------------- cross-reference checks


def _duplicates(items: list[Any], key: str, path: str) -> list[ConfigIssue]:
    counts = Counter(getattr(i, key) for i in items)
    issues = []
    seen: set[str] = set()
    for n, item in enumerate(items):
        v = getattr(item, key)
        if counts[v] > 1 and v in seen:
            issues.append(ConfigIssue(f"{path}[{n}].{key}", f"duplicate {key} {v!r}"))
        seen.add(v)
    return issues


def _modbus_overlaps(plant: PlantConfig) -> list[ConfigIssue]:
    issues = []
    tag_pos = {t.name: i for i, t in enumerate(plant.tags)}
    by_space: dict[tuple[str, ModbusTable], list[TagConfig]] = {}
    for t in plant.tags:
        if t.modbus and t.device:
            by_space.setdefault((t.device, t.modbus.table), []).append(t)
    for (device, table), tags in by_space.items():
        tags.sort(key=lambda t: t.modbus.span)  # type: ignore[union-attr]
        for a, b in zip(tags, tags[1:], strict=False):
            sa, sb = a.modbus.span, b.modbus.span  # type: ignore[union-attr]
            if sb[0] > sa[1]:
                continue
            both_bits = a.modbus.type is DataType.BIT and b.modbus.type is DataType.BIT  # type: ignore[union-attr]
            if both_bits and sa == sb and a.modbus.bit != b.modbus.bit:  # type: ignore[union-attr]
                continue
            issues.append(ConfigIssue(
                f"tags[{tag_pos[b.name]}].modbus.address",
                f"{b.name!r} ({table.value} {sb[0]}..{sb[1]}) overlaps {a.name!r} "
                f"({table.value} {sa[0]}..{sa[1]}) on device {device!r}",
            ))
    return issues


def cross_check(plant: PlantConfig) -> list[ConfigIssue]:
    """Every reference between sections, every duplicate name, every overlapping address."""
    issues: list[ConfigIssue] = []
    issues += _duplicates(plant.devices, "name", "devices")
    issues += _duplicates(plant.tags, "name", "tags")
    issues += _duplicates(plant.tanks, "id", "tanks")

    devices = {d.name: d for d in plant.devices}
    tags = {t.name: t for t in plant.tags}
    for i, t in enumerate(plant.tags):
        if t.device is None:
            continue
        dev = devices.get(t.device)
        if dev is None:
            issues.append(ConfigIssue(f"tags[{i}].device", f"unknown device {t.device!r}"))
        elif t.modbus and not dev.protocol.startswith("modbus"):
            issues.append(ConfigIssue(f"tags[{i}].modbus", f"device {t.device!r} speaks {dev.protocol}, not Modbus"))
        elif t.opcua and dev.protocol != "opcua":
            issues.append(ConfigIssue(f"tags[{i}].opcua", f"device {t.device!r} speaks {dev.protocol}, not OPC UA"))
    issues += _modbus_overlaps(plant)

    def need_tag(name: str | None, path: str, *, writable: bool = False) -> None:
        if name is None:
            return
        t = tags.get(name)
        if t is None:
            issues.append(ConfigIssue(path, f"unknown tag {name!r}"))
        elif writable and not t.writable:
            issues.append(ConfigIssue(path, f"tag {name!r} is an output here but its access is 'read'"))

    need_tag(plant.line.estop, "line.estop")
    need_tag(plant.line.heartbeat, "line.heartbeat", writable=True)
    need_tag(plant.line.plc_watchdog_tripped, "line.plc_watchdog_tripped")
    tank_ids = {t.id for t in plant.tanks}
    for i, tid in enumerate(plant.line.tank_order):
        if tid not in tank_ids:
            issues.append(ConfigIssue(f"line.tank_order[{i}]", f"unknown tank {tid!r}"))
    if len(set(plant.line.tank_order)) != len(plant.line.tank_order):
        issues.append(ConfigIssue("line.tank_order", "a tank is listed twice"))

    derived: set[str] = set()
    for ti, tank in enumerate(plant.tanks):
        base = f"tanks[{ti}]"
        for g, grp in tank.sensors.items():
            for k, name in enumerate(grp.tags):
                need_tag(name, f"{base}.sensors.{g}.tags[{k}]")
            pv = tank.pv_tag(plant.line.prefix, g)
            if pv in tags:
                issues.append(ConfigIssue(f"{base}.sensors.{g}", f"derived value {pv!r} clashes with a configured tag"))
            derived.add(pv)
        for role, name in tank.inputs.items():
            need_tag(name, f"{base}.inputs.{role}")
        for role, name in tank.outputs.items():
            need_tag(name, f"{base}.outputs.{role}", writable=True)
        issues += _duplicates(tank.loops, "id", f"{base}.loops")
        issues += _duplicates(tank.interlocks, "id", f"{base}.interlocks")
        issues += _duplicates(tank.alarms, "id", f"{base}.alarms")
        for li, loop in enumerate(tank.loops):
            lp = f"{base}.loops[{li}]"
            if loop.pv not in tank.sensors:
                issues.append(ConfigIssue(f"{lp}.pv", f"tank {tank.id!r} has no sensor group {loop.pv!r}"))
            for key in ("output", "enable_output"):
                role = getattr(loop, key)
                if role is not None and role not in tank.outputs:
                    issues.append(ConfigIssue(f"{lp}.{key}", f"tank {tank.id!r} has no output {role!r}"))
        refs = set(tank.sensors) | set(tank.inputs) | set(tank.outputs)
        line_refs = {"line.estop"} if plant.line.estop else set()
        for ii, il in enumerate(tank.interlocks):
            ip = f"{base}.interlocks[{ii}]"
            protected = False
            for ci, text in enumerate(il.trip_when):
                cond = parse_condition(text)
                if cond.ref not in refs and cond.ref not in line_refs:
                    issues.append(ConfigIssue(f"{ip}.trip_when[{ci}]",
                                              f"{cond.ref!r} is not a sensor group, input or output of tank "
                                              f"{tank.id!r} (nor a line signal)"))
                    continue
                if cond.kind is ConditionKind.DISAGREE and cond.ref not in tank.sensors:
                    issues.append(ConfigIssue(f"{ip}.trip_when[{ci}]", f"'disagree' needs a sensor group, {cond.ref!r} is not one"))
                if cond.ref == "line.estop" or (cond.ref.startswith("level_low") and "heater" in il.acts_on):
                    protected = True
            for ai, role in enumerate(il.acts_on):
                if role not in tank.outputs:
                    issues.append(ConfigIssue(f"{ip}.acts_on[{ai}]", f"tank {tank.id!r} has no output {role!r}"))
            if protected and il.bypassable:
                issues.append(ConfigIssue(f"{ip}.bypassable",
                                          "an e-stop or low-level (dry-fire) interlock must not be bypassable"))
        for ai, al in enumerate(tank.alarms):
            if al.source not in refs and al.source not in tags and al.source not in line_refs:
                issues.append(ConfigIssue(f"{base}.alarms[{ai}].source",
                                          f"{al.source!r} is not a sensor group or input of {tank.id!r} nor a tag"))
        if tank.window.current_density_a_dm2 and "rectifier_setpoint" not in tank.outputs:
            pass  # a window without a rectifier is allowed (monitoring only)
    return issues


# ---------------------------------------------------------------- entry points


def parse_config(data: Any, source: str = "", lines: dict[str, int] | None = None) -> PlantConfig:
    """Validate already-parsed data (a dict). Raises :class:`ConfigError` with every issue."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigIssue("", "the file must be a mapping with devices, tags, tanks ...", 1)], source)
    try:
        plant = PlantConfig.model_validate(data)
    except ValidationError as e:
        issues = []
        for err in e.errors():
            loc = tuple(err["loc"])
            if len(loc) > 2 and loc[0] == "devices" and loc[2] in ("modbus_tcp", "modbus_rtu", "opcua"):
                loc = loc[:2] + loc[3:]  # drop the discriminator pydantic inserts
            path = _path(loc)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see docs/configuration.md)"
            elif msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            issues.append(ConfigIssue(path, msg, _line_for(path, lines)))
        raise ConfigError(issues, source) from None
    issues = cross_check(plant)
    if issues:
        raise ConfigError([ConfigIssue(i.path, i.message, _line_for(i.path, lines)) for i in issues], source)
    return plant


def load_config(path: str | Path) -> PlantConfig:
    """Read and validate a plant YAML file. Raises :class:`ConfigError` listing every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([ConfigIssue("", f"cannot read the file: {e.strerror or e}")], str(p)) from None
    data, lines = _yaml_to_data(text, str(p))
    return parse_config(data, str(p), lines)
