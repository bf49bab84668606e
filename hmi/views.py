"""Pure view building and write checks: plant config + live state in, JSON-ready dicts out.

No FastAPI here, so the rules (who may write what within which limits; how a tank is
summarised; what counts as abnormal) are tested without a server.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from hmi.ports import AlarmView, CommandKind, CommandResult, InterlockState, InterlockStatus, LoopState, Role
from scada.config import LoopConfig, PlantConfig, Range, TankConfig
from scada.tags import Quality, QualityReason, Sample, Value

TREND_GROUPS = ("temperature", "ph", "current_density")


@dataclass(frozen=True, slots=True)
class TagMeta:
    """What the HMI knows about a tag from the config."""

    name: str
    unit: str = ""
    description: str = ""
    writable: bool = False
    boolean: bool = False
    limits: Range | None = None
    operator_limits: Range | None = None
    tank: str | None = None
    device: str | None = None
    kind: str = "io"
    """``io`` (a device tag), ``pv`` (voted value of a sensor group), ``derived``."""

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "unit": self.unit,
            "description": self.description,
            "writable": self.writable,
            "boolean": self.boolean,
            "limits": _range(self.limits),
            "operator_limits": _range(self.operator_limits),
            "tank": self.tank,
            "device": self.device,
            "kind": self.kind,
        }


def _range(r: Range | None) -> dict[str, float] | None:
    return None if r is None else {"min": r.min, "max": r.max}


class TagCatalog:
    """Tag metadata index built once from the plant config."""

    def __init__(self, plant: PlantConfig) -> None:
        self.plant = plant
        self.line_prefix = plant.line.prefix
        self._meta: dict[str, TagMeta] = {}
        self._tank_tags: dict[str, list[str]] = {}
        tank_of: dict[str, str] = {}
        for tank in plant.tanks:
            names: list[str] = []
            for group, sg in tank.sensors.items():
                pv = tank.pv_tag(self.line_prefix, group)
                names.append(pv)
                self._meta[pv] = TagMeta(
                    name=pv, unit=sg.unit, description=f"{tank.name}: {group} (voted {sg.voting.value})",
                    limits=sg.range, tank=tank.id, kind="pv",
                )
                for t in sg.tags:
                    names.append(t)
                    tank_of[t] = tank.id
            for t in list(tank.inputs.values()) + list(tank.outputs.values()):
                names.append(t)
                tank_of[t] = tank.id
            self._tank_tags[tank.id] = names
        for tc in plant.tags:
            self._meta[tc.name] = TagMeta(
                name=tc.name, unit=tc.unit, description=tc.description, writable=tc.writable,
                boolean=tc.is_boolean, limits=tc.limits, operator_limits=tc.operator_limits,
                tank=tank_of.get(tc.name), device=tc.device, kind="io",
            )

        self._meta_dicts = {n: m.to_dict() for n, m in self._meta.items()}

    def meta(self, name: str) -> TagMeta | None:
        return self._meta.get(name)

    def meta_dict(self, name: str) -> dict[str, object]:
        """JSON metadata of a tag, built once (``derived`` for tags the config does not name)."""
        d = self._meta_dicts.get(name)
        if d is None:  # derived tags appear at run time; cache them too (dict writes are atomic)
            d = self._meta_dicts[name] = TagMeta(name=name, kind="derived").to_dict()
        return d

    def tank_prefix(self, tank: TankConfig) -> str:
        return tank.tag_prefix(self.line_prefix)

    def in_tank(self, name: str, tank_id: str) -> bool:
        try:
            tank = self.plant.tank(tank_id)
        except KeyError:
            return False
        prefix = self.tank_prefix(tank) + "."
        return name.startswith(prefix) or name in self._tank_tags.get(tank_id, ())


def sample_dict(sample: Sample | None, now: float | None = None) -> dict[str, object]:
    """A sample as JSON; a missing sample is Bad (never an absent key that looks like zero)."""
    if sample is None:
        return {"value": None, "quality": "bad", "reason": str(QualityReason.CONFIG_ERROR), "server_ts": None,
                "source_ts": None, "ne107": "ok", "detail": "no such value in the tag store"}
    d = sample.to_dict()
    v = d["value"]
    if isinstance(v, float) and not math.isfinite(v):
        d["value"] = None
        d["detail"] = (d["detail"] or "") + " (non-finite value)"
    return d


def tag_view(name: str, sample: Sample | None, meta: Mapping[str, object]) -> dict[str, object]:
    out: dict[str, object] = {"name": name}
    out.update(sample_dict(sample))
    out.update(meta)
    return out


# ---------------------------------------------------------------- write checks


def role_range(role: Role, limits: Range | None, operator_limits: Range | None) -> tuple[Range | None, str]:
    """The range this role may write in, and its name for messages."""
    if role.at_least(Role.ENGINEER):
        return limits, "engineering limits"
    if operator_limits is not None:
        return operator_limits, "operator limits"
    return limits, "limits"


def _check_number(value: Value, what: str) -> CommandResult | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return CommandResult.refused(CommandKind.INVALID, f"{what} needs a number, got {_type_name(value)}")
    if not math.isfinite(float(value)):
        return CommandResult.refused(CommandKind.INVALID, f"{what} needs a finite number")
    return float(value)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _fmt(x: float) -> str:
    return f"{x:g}"


def check_tag_write(name: str, value: Value, meta: TagMeta | None, role: Role, known: bool) -> CommandResult | None:
    """Refusal for a tag write by ``role``, or None when it may go to the runtime."""
    if not role.at_least(Role.OPERATOR):
        return CommandResult.refused(CommandKind.FORBIDDEN, f"role {role.value} may not write; operator or higher is needed")
    if meta is None:
        if not known:
            return CommandResult.refused(CommandKind.UNKNOWN, f"unknown tag {name!r}")
        return None  # a derived tag: the runtime decides
    if not meta.writable:
        return CommandResult.refused(CommandKind.FORBIDDEN, f"tag {name!r} is read-only")
    if meta.boolean:
        if not isinstance(value, bool):
            return CommandResult.refused(CommandKind.INVALID, f"tag {name!r} is boolean: send true or false, not {_type_name(value)}")
        return None
    num = _check_number(value, f"tag {name!r}")
    if isinstance(num, CommandResult):
        return num
    return check_range(num, role, meta.limits, meta.operator_limits, f"tag {name!r}", meta.unit)


def check_range(
    value: float, role: Role, limits: Range | None, operator_limits: Range | None, what: str, unit: str
) -> CommandResult | None:
    rng, label = role_range(role, limits, operator_limits)
    if rng is not None and not rng.contains(value):
        u = f" {unit}" if unit else ""
        extra = ""
        if label == "operator limits" and limits is not None:
            extra = f" (an engineer may use {_fmt(limits.min)}..{_fmt(limits.max)}{u})"
        return CommandResult.refused(
            CommandKind.LIMIT,
            f"{_fmt(value)}{u} is outside the {label} {_fmt(rng.min)}..{_fmt(rng.max)}{u} of {what}{extra}",
        )
    return None


def find_loop(plant: PlantConfig, loop_ref: str) -> tuple[TankConfig, LoopConfig] | None:
    """``<tank>.<loop>`` to its config."""
    tank_id, _, loop_id = loop_ref.partition(".")
    try:
        tank = plant.tank(tank_id)
    except KeyError:
        return None
    for lc in tank.loops:
        if lc.id == loop_id:
            return tank, lc
    return None


def loop_unit(tank: TankConfig, lc: LoopConfig) -> str:
    if lc.kind.value == "rectifier":
        return "A/dm2"
    sg = tank.sensors.get(lc.pv)
    return sg.unit if sg else ""


def check_setpoint(tank: TankConfig, lc: LoopConfig, value: object, role: Role) -> CommandResult | float:
    if not role.at_least(Role.OPERATOR):
        return CommandResult.refused(CommandKind.FORBIDDEN, f"role {role.value} may not change setpoints; operator or higher is needed")
    what = f"loop {tank.id}.{lc.id} setpoint"
    num = _check_number(value, what)  # type: ignore[arg-type]
    if isinstance(num, CommandResult):
        return num
    refusal = check_range(num, role, lc.setpoint.limits, lc.setpoint.operator_limits, what, loop_unit(tank, lc))
    return refusal if refusal is not None else num


# ---------------------------------------------------------------- tank views


def _interlock_dict(tank: TankConfig, il_id: str, state: InterlockState | None) -> dict[str, object]:
    cfg = next(i for i in tank.interlocks if i.id == il_id)
    st = state.status.value if state else "unknown"
    return {
        "id": f"{tank.id}.{il_id}",
        "interlock": il_id,
        "description": cfg.description,
        "trip_when": list(cfg.trip_when),
        "acts_on": list(cfg.acts_on),
        "latch": cfg.latch,
        "bypassable": cfg.bypassable,
        "max_bypass_s": cfg.max_bypass_s,
        "status": st,
        "causes": list(state.causes) if state else [],
        "first_out": state.first_out if state else None,
        "since": state.since if state else None,
        "bypass_until": state.bypass_until if state else None,
        "bypass_by": state.bypass_by if state else None,
    }


def _loop_dict(tank: TankConfig, lc: LoopConfig, state: LoopState | None) -> dict[str, object]:
    sp = lc.setpoint
    return {
        "id": f"{tank.id}.{lc.id}",
        "loop": lc.id,
        "kind": lc.kind.value,
        "pv": lc.pv,
        "output_role": lc.output,
        "unit": loop_unit(tank, lc),
        "mode": state.mode.value if state else "unknown",
        "setpoint": state.setpoint if state else None,
        "working_setpoint": state.working_setpoint if state else None,
        "output": state.output if state else None,
        "detail": state.detail if state else "no state from the scan engine",
        "limits": _range(sp.limits),
        "operator_limits": _range(sp.operator_limits),
        "ramp_per_min": sp.ramp_per_min,
    }


def alarm_dict(a: AlarmView) -> dict[str, object]:
    return asdict(a)


def _worst(samples: Iterable[Mapping[str, object]]) -> str:
    order = {"bad": 0, "uncertain": 1, "good": 2}
    worst = "good"
    for s in samples:
        q = str(s.get("quality", "bad"))
        if order.get(q, 0) < order[worst]:
            worst = q
    return worst


def trend_tags(catalog: TagCatalog, tank: TankConfig, known: Iterable[str]) -> list[dict[str, object]]:
    """Which tags the tank page trends: temperature, pH, current density (with the loop giving the SP)."""
    known_set = set(known)
    out: list[dict[str, object]] = []
    for group in TREND_GROUPS:
        tag = tank.pv_tag(catalog.line_prefix, group)
        if group not in tank.sensors and tag not in known_set:
            continue
        loop = None
        for lc in tank.loops:
            if lc.pv == group or (group == "current_density" and lc.kind.value == "rectifier"):
                loop = f"{tank.id}.{lc.id}"
                break
        unit = tank.sensors[group].unit if group in tank.sensors else ("A/dm2" if group == "current_density" else "")
        out.append({"group": group, "tag": tag, "unit": unit, "loop": loop})
    return out


def tank_view(
    catalog: TagCatalog,
    tank: TankConfig,
    values: Mapping[str, Sample],
    loops: Mapping[tuple[str, str], LoopState],
    interlocks: Mapping[tuple[str, str], InterlockState],
    alarms: Iterable[AlarmView],
) -> dict[str, object]:
    """Everything the tank page shows: sensors with per-probe diagnostics, loops, interlocks, alarms."""
    lp = catalog.line_prefix
    sensors: dict[str, object] = {}
    for group, sg in tank.sensors.items():
        pv = tank.pv_tag(lp, group)
        probes = []
        for t in sg.tags:
            probes.append({"tag": t} | sample_dict(values.get(t)))
        sensors[group] = {
            "tag": pv,
            "unit": sg.unit,
            "voting": sg.voting.value,
            "range": _range(sg.range),
            "pv": sample_dict(values.get(pv)),
            "probes": probes,
        }
    inputs = {role: {"tag": t} | sample_dict(values.get(t)) for role, t in tank.inputs.items()}
    outputs = {role: {"tag": t} | sample_dict(values.get(t)) for role, t in tank.outputs.items()}
    tank_alarms = [alarm_dict(a) for a in alarms if a.tank == tank.id]
    ils = [_interlock_dict(tank, i.id, interlocks.get((tank.id, i.id))) for i in tank.interlocks]
    return {
        "id": tank.id,
        "name": tank.name,
        "process": tank.process.value,
        "area": tank.area,
        "in_service": tank.in_service,
        "window": tank.window.model_dump(),
        "sensors": sensors,
        "inputs": inputs,
        "outputs": outputs,
        "loops": [_loop_dict(tank, lc, loops.get((tank.id, lc.id))) for lc in tank.loops],
        "interlocks": ils,
        "alarms": tank_alarms,
        "trends": trend_tags(catalog, tank, values.keys()),
        "summary": _summary(sensors, ils, tank_alarms),
    }


def _summary(sensors: Mapping[str, object], ils: list[dict[str, object]], alarms: list[dict[str, object]]) -> dict[str, object]:
    pvs = [s["pv"] for s in sensors.values()]  # type: ignore[index]
    return {
        "quality": _worst(pvs),  # type: ignore[arg-type]
        "tripped": sum(1 for i in ils if i["status"] in (InterlockStatus.TRIPPED.value, InterlockStatus.LATCHED.value)),
        "bypassed": sum(1 for i in ils if i["status"] == InterlockStatus.BYPASSED.value),
        "alarms": len([a for a in alarms if a["active"]]),
        "unacked": len([a for a in alarms if not a["acked"]]),
        "worst_priority": _worst_priority(alarms),
    }


_PRIO = ["critical", "high", "medium", "low", "log"]


def _worst_priority(alarms: list[dict[str, object]]) -> str | None:
    ps = [str(a["priority"]) for a in alarms if a["state"] != "shelved"]
    for p in _PRIO:
        if p in ps:
            return p
    return None


def tank_summary(full: Mapping[str, object]) -> dict[str, object]:
    """The overview row of a tank (line overview page)."""
    sensors = full["sensors"]
    return {
        "id": full["id"],
        "name": full["name"],
        "process": full["process"],
        "in_service": full["in_service"],
        "pvs": [
            {"group": g, "tag": s["tag"], "unit": s["unit"]} | s["pv"]  # type: ignore[index, operator]
            for g, s in sensors.items()  # type: ignore[union-attr]
        ],
        "loops": [
            {k: lp[k] for k in ("id", "loop", "pv", "mode", "setpoint", "unit")}
            for lp in full["loops"]  # type: ignore[union-attr]
        ],
        "summary": full["summary"],
    }


def quality_is_bad(sample: Sample) -> bool:
    return sample.quality is Quality.BAD
