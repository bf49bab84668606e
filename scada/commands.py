"""Operator and engineer commands: setpoints, modes, manual outputs, interlock resets and bypasses.

Each command carries the user and role that asked. :func:`apply_command` checks it against the plant
config and the current state and returns a :class:`CommandResult` with ``ok`` and the ``reason``;
a refused command changes nothing. Every outcome (ok or refused) carries an audit :class:`Event`.

Roles: ``viewer`` may not command; ``operator`` may change setpoints within ``operator_limits``,
modes, manual outputs and resets; ``engineer`` and ``admin`` use the engineering ``limits`` and may
bypass interlocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from scada.config import PlantConfig
from scada.config.base import Range
from scada.config.control import LoopKind, LoopMode
from scada.control import LoopController, RectifierLoop
from scada.events import Event, EventKind
from scada.interlocks import ENGINEER_ROLES, ActionResult, InterlockEngine
from scada.tags import Value

OPERATOR_ROLES = frozenset({"operator"}) | ENGINEER_ROLES
MODE_CODES: dict[LoopMode, int] = {LoopMode.OFF: 0, LoopMode.MANUAL: 1, LoopMode.AUTO: 2}
"""Loop modes as published in ``<prefix>.<loop>.mode`` (tag values are numbers)."""


@dataclass(frozen=True, slots=True)
class SetSetpoint:
    tank: str
    loop: str
    value: float
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class SetMode:
    tank: str
    loop: str
    mode: LoopMode | str | int
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class SetManualOutput:
    """Output of a loop in MANUAL: percent (PID), on/off (on/off, dosing), amps (rectifier)."""

    tank: str
    loop: str
    value: float | bool
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class SetLoadArea:
    """Surface area of the load in a rectifier tank (dm2); ``None`` falls back to the configured default."""

    tank: str
    loop: str
    area_dm2: float | None
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class SetOutput:
    """Value of an output role no loop drives (make-up valve, exhaust fan, additive pump)."""

    tank: str
    output: str
    value: float | bool
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class ResetInterlock:
    tank: str
    interlock: str
    user: str
    role: str


@dataclass(frozen=True, slots=True)
class BypassInterlock:
    tank: str
    interlock: str
    duration_s: float
    user: str
    role: str
    comment: str = ""


@dataclass(frozen=True, slots=True)
class CancelBypass:
    tank: str
    interlock: str
    user: str
    role: str


Command = (SetSetpoint | SetMode | SetManualOutput | SetLoadArea | SetOutput | ResetInterlock
           | BypassInterlock | CancelBypass)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """``ok`` False always carries the reason; ``event`` is the audit record of the attempt."""

    ok: bool
    reason: str
    command: Command | None = None
    event: Event | None = None
    data: dict[str, object] = field(default_factory=dict)
    """``old`` / ``new`` values when known."""
    kind: str = "ok"
    """Refusal class: ``ok`` | ``limit`` | ``invalid`` | ``interlock`` | ``conflict`` | ``unknown`` |
    ``forbidden`` (the HMI's CommandKind vocabulary)."""


class CommandTarget(Protocol):
    """What the commands act on (the engine core implements it)."""

    plant: PlantConfig
    loops: Mapping[tuple[str, str], LoopController]
    interlocks: InterlockEngine
    output_overrides: dict[tuple[str, str], Value]

    def loop_blocked(self, tank: str, loop: str) -> str:
        """Why the loop's outputs are forced safe now ('' when they are not)."""

    def driven_roles(self, tank: str) -> set[str]:
        """Output roles a loop drives."""


def _limits(rng: Range, operator: Range | None, role: str) -> Range:
    return operator if role == "operator" and operator is not None else rng


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        return None
    return float(v)


def _parse_mode(mode: LoopMode | str | int) -> LoopMode | None:
    if isinstance(mode, LoopMode):
        return mode
    if isinstance(mode, int) and not isinstance(mode, bool):
        return {v: k for k, v in MODE_CODES.items()}.get(mode)
    if isinstance(mode, float) and mode.is_integer():
        return {v: k for k, v in MODE_CODES.items()}.get(int(mode))
    try:
        return LoopMode(str(mode).lower())
    except ValueError:
        return None


def _source(cmd: Command) -> str:
    for attr in ("loop", "interlock", "output"):
        if hasattr(cmd, attr):
            return f"{cmd.tank}.{getattr(cmd, attr)}"
    return cmd.tank


def _audit(cmd: Command, ok: bool, reason: str, ts: float, **data: object) -> Event:
    name = type(cmd).__name__
    return Event(ts=ts, kind=EventKind.AUDIT, source=_source(cmd), tank=cmd.tank, user=cmd.user,
                 state="ok" if ok else "refused", message=f"{name} by {cmd.user}: {reason}",
                 comment=getattr(cmd, "comment", None) or None,
                 data={"command": name, "role": cmd.role, **data})


def apply_command(target: CommandTarget, cmd: Command, now: float, ts: float) -> CommandResult:
    """Check and apply one command; a refusal names what was wrong and changes nothing."""
    try:
        ok, reason, data, ev = _apply(target, cmd, now, ts)
    except Exception as e:  # noqa: BLE001 - a command must never take the engine down
        ok, reason, data, ev = False, f"internal error: {e!r}", {"kind": "invalid"}, None
    kind = str(data.pop("kind", "ok" if ok else "invalid"))
    event = ev if ev is not None else _audit(cmd, ok, reason, ts, **data)
    return CommandResult(ok, reason, cmd, event, data, kind)


def _from_action(cmd: Command, r: ActionResult, ts: float) -> tuple[bool, str, dict[str, object], Event | None]:
    if r.ok and r.event is not None:
        # The interlock event is the audit record; add the role.
        ev = Event(ts=r.event.ts, kind=EventKind.AUDIT, source=r.event.source, message=r.event.message,
                   tank=r.event.tank, area=r.event.area, priority=r.event.priority, state=r.event.state,
                   user=cmd.user, comment=r.event.comment,
                   data={**r.event.data, "command": type(cmd).__name__, "role": cmd.role})
        return True, r.reason, {}, ev
    return r.ok, r.reason, {"kind": r.kind}, None


def _apply(target: CommandTarget, cmd: Command, now: float, ts: float
           ) -> tuple[bool, str, dict[str, object], Event | None]:
    if cmd.role not in OPERATOR_ROLES:
        return False, f"role {cmd.role!r} may not send commands (operator, engineer or admin needed)", {"kind": "forbidden"}, None
    try:
        tank = target.plant.tank(cmd.tank)
    except KeyError:
        return False, f"unknown tank {cmd.tank!r}", {"kind": "unknown"}, None

    if isinstance(cmd, ResetInterlock):
        return _from_action(cmd, target.interlocks.reset(cmd.tank, cmd.interlock, cmd.user, now, ts), ts)
    if isinstance(cmd, BypassInterlock):
        r = target.interlocks.bypass(cmd.tank, cmd.interlock, cmd.user, cmd.role, cmd.duration_s, now, ts,
                                     cmd.comment)
        return _from_action(cmd, r, ts)
    if isinstance(cmd, CancelBypass):
        if cmd.role not in ENGINEER_ROLES:
            return False, "cancelling a bypass needs the engineer role", {"kind": "forbidden"}, None
        return _from_action(cmd, target.interlocks.cancel_bypass(cmd.tank, cmd.interlock, cmd.user, now, ts), ts)

    if isinstance(cmd, SetOutput):
        if cmd.output not in tank.outputs:
            return False, f"tank {cmd.tank!r} has no output {cmd.output!r}", {"kind": "unknown"}, None
        if cmd.output in target.driven_roles(cmd.tank):
            return False, f"output {cmd.output!r} is driven by a loop: use the loop's mode and manual output", {"kind": "conflict"}, None
        tag = target.plant.tag(tank.outputs[cmd.output])
        if tag.is_boolean:
            if not isinstance(cmd.value, bool | int) or cmd.value not in (0, 1):
                return False, f"output {cmd.output!r} is on/off: value must be true or false", {"kind": "invalid"}, None
            value: Value = bool(cmd.value)
        else:
            x = _num(cmd.value)
            if x is None:
                return False, f"value {cmd.value!r} is not a finite number", {"kind": "invalid"}, None
            if tag.limits is not None:
                lim = _limits(tag.limits, tag.operator_limits, cmd.role)
                if not lim.contains(x):
                    return False, f"{x:g} is outside the {cmd.role} limits {lim.min:g}..{lim.max:g}", {"kind": "limit"}, None
            value = x
        key = (cmd.tank, cmd.output)
        old = target.output_overrides.get(key)
        target.output_overrides[key] = value
        return True, f"{cmd.output} set to {value}", {"old": old, "new": value}, None

    loop = target.loops.get((cmd.tank, cmd.loop))
    if loop is None:
        return False, f"unknown loop {cmd.tank}.{cmd.loop}", {"kind": "unknown"}, None
    cfg = loop.cfg

    if isinstance(cmd, SetSetpoint):
        x = _num(cmd.value)
        if x is None:
            return False, f"setpoint {cmd.value!r} is not a finite number", {"kind": "invalid"}, None
        lim = _limits(cfg.setpoint.limits, cfg.setpoint.operator_limits, cmd.role)
        if not lim.contains(x):
            who = "operator" if lim is cfg.setpoint.operator_limits else "engineering"
            return False, f"setpoint {x:g} is outside the {who} limits {lim.min:g}..{lim.max:g}", {"kind": "limit"}, None
        old = loop.sp
        loop.set_setpoint(x)
        return True, f"setpoint {old:g} -> {x:g}", {"old": old, "new": x}, None

    if isinstance(cmd, SetMode):
        mode = _parse_mode(cmd.mode)
        if mode is None:
            return False, f"unknown mode {cmd.mode!r}: use auto, manual or off", {"kind": "invalid"}, None
        blocked = target.loop_blocked(cmd.tank, cmd.loop)
        if blocked and mode is not LoopMode.OFF:
            return False, f"loop {cmd.tank}.{cmd.loop} is tripped ({blocked}): only OFF is allowed until it clears", \
                {"kind": "interlock"}, None
        old = loop.mode
        loop.set_mode(mode)
        return True, f"mode {old.value} -> {mode.value}", {"old": old.value, "new": mode.value}, None

    if isinstance(cmd, SetManualOutput):
        if loop.mode is not LoopMode.MANUAL:
            return False, f"loop {cmd.tank}.{cmd.loop} is in {loop.mode.value}: switch it to manual first", {"kind": "conflict"}, None
        blocked = target.loop_blocked(cmd.tank, cmd.loop)
        if blocked:
            return False, f"loop {cmd.tank}.{cmd.loop} is tripped ({blocked}): manual output refused", {"kind": "interlock"}, None
        if cfg.kind in (LoopKind.ONOFF, LoopKind.PH_DOSING):
            if not isinstance(cmd.value, bool | int | float) or cmd.value not in (0, 1):
                return False, "this loop's output is on/off: value must be true or false", {"kind": "invalid"}, None
            x = 1.0 if cmd.value else 0.0
        else:
            x = _num(cmd.value)  # type: ignore[assignment]
            if x is None:
                return False, f"value {cmd.value!r} is not a finite number", {"kind": "invalid"}, None
            if cfg.kind is LoopKind.PID and cfg.pid is not None:
                lo, hi = cfg.pid.out_min, cfg.pid.out_max
            else:
                assert cfg.rectifier is not None
                lo, hi = 0.0, cfg.rectifier.max_current_a
                out_tag = target.plant.tag(target.plant.tank(cmd.tank).outputs[cfg.output])
                if out_tag.limits is not None:
                    lim = _limits(out_tag.limits, out_tag.operator_limits, cmd.role)
                    lo, hi = max(lo, lim.min), min(hi, lim.max)
            if not lo <= x <= hi:
                return False, f"manual output {x:g} is outside {lo:g}..{hi:g}", {"kind": "limit"}, None
        old_out = loop.manual_out
        loop.set_manual(x)
        return True, f"manual output {old_out:g} -> {x:g}", {"old": old_out, "new": x}, None

    if isinstance(cmd, SetLoadArea):
        if not isinstance(loop, RectifierLoop):
            return False, f"loop {cmd.tank}.{cmd.loop} is not a rectifier", {"kind": "invalid"}, None
        if cmd.area_dm2 is None:
            assert cfg.rectifier is not None
            loop.set_area(cfg.rectifier.default_area_dm2)
            return True, "load area back to the configured default", {"new": loop.area_dm2}, None
        x = _num(cmd.area_dm2)
        if x is None or x <= 0:
            return False, f"load area {cmd.area_dm2!r} must be a positive number of dm2", {"kind": "invalid"}, None
        old_area = loop.area_dm2
        loop.set_area(x)
        return True, f"load area {old_area} -> {x:g} dm2", {"old": old_area, "new": x}, None

    return False, f"unknown command {type(cmd).__name__}", {"kind": "invalid"}, None


# ---------------------------------------------------------------------------- tag-addressed commands

_LOOP_SUFFIX: dict[str, Callable[[str, str, object, str, str], Command]] = {
    "sp": lambda t, lp, v, u, r: SetSetpoint(t, lp, v, u, r),  # type: ignore[arg-type]
    "mode": lambda t, lp, v, u, r: SetMode(t, lp, v, u, r),  # type: ignore[arg-type]
    "out": lambda t, lp, v, u, r: SetManualOutput(t, lp, v, u, r),  # type: ignore[arg-type]
    "area_dm2": lambda t, lp, v, u, r: SetLoadArea(t, lp, v, u, r),  # type: ignore[arg-type]
}


def command_for_tag(plant: PlantConfig, tag: str, value: object, user: str, role: str) -> Command | CommandResult:
    """Map a write to a published tag (``<prefix>.<loop>.sp|mode|out|area_dm2``) or to an undriven output
    tag onto a command; an unknown tag gives a refused :class:`CommandResult`."""
    for tank in plant.tanks:
        prefix = tank.tag_prefix(plant.line.prefix) + "."
        if tag.startswith(prefix):
            rest = tag[len(prefix):]
            loop_id, _, suffix = rest.rpartition(".")
            if suffix in _LOOP_SUFFIX and any(lp.id == loop_id for lp in tank.loops):
                return _LOOP_SUFFIX[suffix](tank.id, loop_id, value, user, role)
        for role_name, name in tank.outputs.items():
            if name == tag:
                return SetOutput(tank.id, role_name, value, user, role)  # type: ignore[arg-type]
    return CommandResult(False, f"unknown tag {tag!r}: not a setpoint, mode or output the server accepts",
                         kind="unknown")
