"""Alarm definitions: what to watch, built once from the plant config (plus documented defaults).

Every alarm the engine knows is an :class:`AlarmDef` with a stable id (it is the journal's ``source``):

=================================  ===============================================================
``<tank>.<cfg id>.<hh|h|l|ll>``    a configured limit alarm, one alarm per limit
``<tank>.<cfg id>``                a configured deviation, rate, discrete or quality alarm
``<tank>.<group>_limits.<lvl>``    default limits derived from the tank's process window
``<tank>.<group>.quality``         default quality alarm of a sensor group (sensor failure, comm loss)
``<tank>.<group>.discrepancy``     default: redundant probes disagree
``<tank>.<loop>.ineffective``      default: pH dosing ineffective
``<tank>.interlock.<id>``          interlock trip (first-out in the message), set by the scan engine
``line.interlock.<id>``            an interlock tripped only by line signals (e-stop): one for the line
``system.<...>``                   system alarms (scan overrun, historian buffering, driver down)
=================================  ===============================================================

Configured ids are identifiers without dots, so they never collide with the derived ones.

Defaults (only where the tank does not define its own alarm on that sensor group; see docs/alarms.md):

* temperature window ``min..max``: L = min, H = max (medium); LL/HH a margin outside
  (``max(2 degC, 20 % of the width)``; high priority), HH kept below an over-temperature interlock
  threshold ``temperature > X``; deadband ``max(0.5, 5 % of width)``; on-delay 5 s.
* pH window: the same with margin ``max(0.2, 25 % of width)``, deadband ``max(0.05, 5 %)``, on-delay 10 s.
* every sensor group: a quality alarm on Bad quality (on-delay 5 s, NAMUR NE 43 asks >= 4 s before a
  failure current counts); high priority when the group feeds an interlock or loop, else medium.
* every redundant sensor group (2 or 3 probes): ``<tank>.<group>.discrepancy`` (low) on the scan engine's
  ``<tp>.<group>.discrepancy`` flag (the engine applies ``discrepancy_delay_s``), and
  ``<tank>.<group>.degraded`` (high when the group feeds an interlock, else medium; 5 s on-delay) on
  ``<tp>.<group>.degraded``: a probe is excluded, one more failure loses the measurement.
* every pH dosing loop: ``<tank>.<loop>.ineffective`` (medium) on ``<tp>.<loop>.ineffective``.
* every interlock: a trip alarm with the interlock's priority.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from scada.conditions import Condition, parse_condition
from scada.config import AlarmConfig, AlarmKind, InterlockConfig, LoopKind, PlantConfig, Priority, TankConfig


class DefKind(StrEnum):
    LIMIT = "limit"
    DEVIATION = "deviation"
    RATE = "rate"
    DISCRETE = "discrete"
    QUALITY = "quality"
    INTERLOCK = "interlock"
    EXTERNAL = "external"  # system alarms and anything else the composition root raises


class Level(StrEnum):
    HH = "hh"
    H = "h"
    L = "l"
    LL = "ll"

    @property
    def high(self) -> bool:
        return self in (Level.HH, Level.H)


PRIORITY_RANK: dict[Priority, int] = {
    Priority.CRITICAL: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3, Priority.LOG: 4,
}

SCAN_OVERRUN = "system.scan_overrun"
HISTORIAN_BUFFERING = "system.historian_buffering"


def shared_interlock_id(interlock_id: str) -> str:
    """Interlocks tripped only by line signals (e-stop) share one alarm for the whole line."""
    return f"line.interlock.{interlock_id}"


def driver_down_id(device: str) -> str:
    return f"system.driver.{device}.down"


@dataclass(frozen=True, slots=True)
class ResolvedCondition:
    """A suppression condition with its reference resolved to a tag name."""

    condition: Condition
    tag: str


@dataclass(frozen=True, slots=True)
class AlarmDef:
    """One alarm: its identity, where its value comes from, and how it is detected."""

    id: str
    kind: DefKind
    priority: Priority
    area: str
    message: str
    tank: str | None = None
    source: str = ""
    """The configured source (sensor group, input role or tag) for display."""
    tag: str | None = None
    """Key in the ``values`` mapping passed to ``evaluate`` (``None`` for external alarms)."""
    tags: tuple[str, ...] = ()
    """Interlock alarms: the scan engine's ``<tp>.interlock.<id>`` tags (any true = tripped). When none
    of them is in ``values`` the condition comes from ``set_interlock`` / ``set_condition`` instead."""
    level: Level | None = None
    limit: float | None = None
    deviation: float | None = None
    rate_per_min: float | None = None
    rate_window_s: float = 30.0
    alarm_state: bool = True
    on_uncertain: bool = False
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    setpoint_keys: tuple[str, ...] = ()
    unit: str = ""
    origin: str = "config"
    """``config``, ``default`` (derived from the window), ``interlock``, ``system`` or ``external``."""
    suppress_when: tuple[ResolvedCondition, ...] = field(default=())

    @property
    def requires_ack(self) -> bool:
        """A ``log`` alarm is journaled but never on the list, so it is never waiting for an operator."""
        return self.priority is not Priority.LOG

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self.priority]


class DefinitionError(ValueError):
    """The plant config yields an alarm set that cannot be evaluated (lists every problem)."""


def _priority(text: str) -> Priority:
    try:
        return Priority(text)
    except ValueError:
        return Priority.HIGH


def _resolver(plant: PlantConfig, tank: TankConfig):  # noqa: ANN202 - small closure
    prefix = plant.line.prefix

    def resolve(ref: str) -> str | None:
        if ref in tank.sensors:
            return tank.pv_tag(prefix, ref)
        if ref in tank.inputs:
            return tank.inputs[ref]
        if ref in tank.outputs:
            return tank.outputs[ref]
        if ref == "line.estop":
            return plant.line.estop
        if plant.has_tag(ref) or "." in ref:
            return ref
        return None

    return resolve


_LEVEL_WORD = {Level.HH: "high-high", Level.H: "high", Level.L: "low", Level.LL: "low-low"}


def _limit_defs(tank: TankConfig, cfg: AlarmConfig, tag: str, unit: str, base_id: str,
                origin: str, prio_hh: Priority | None = None, prio_h: Priority | None = None,
                suppress: tuple[ResolvedCondition, ...] = ()) -> list[AlarmDef]:
    out: list[AlarmDef] = []
    for lvl in (Level.HH, Level.H, Level.L, Level.LL):
        limit = getattr(cfg, lvl.value)
        if limit is None:
            continue
        if lvl in (Level.HH, Level.LL):
            prio = prio_hh or cfg.priority
        else:
            prio = prio_h or cfg.priority
        sign = ">" if lvl.high else "<"
        text = cfg.message or f"{tank.name}: {cfg.source} {_LEVEL_WORD[lvl]}"
        out.append(AlarmDef(
            id=f"{base_id}.{lvl.value}", kind=DefKind.LIMIT, priority=prio, area=tank.area,
            message=f"{text} ({sign} {limit:g} {unit})".replace(" )", ")"), tank=tank.id,
            source=cfg.source, tag=tag, level=lvl, limit=limit, deadband=cfg.deadband,
            on_delay_s=cfg.on_delay_s, off_delay_s=cfg.off_delay_s, unit=unit, origin=origin,
            suppress_when=suppress,
        ))
    return out


def _interlock_threshold(tank: TankConfig, group: str) -> float | None:
    """Lowest ``<group> > X`` trip threshold of the tank's interlocks (HH must stay below the trip)."""
    found: list[float] = []
    for il in tank.interlocks:
        for text in il.trip_when:
            c = parse_condition(text)
            if c.ref == group and c.op in (">", ">=") and c.value is not None:
                found.append(c.value)
    return min(found) if found else None


def default_window_alarms(tank: TankConfig) -> list[AlarmConfig]:
    """Limit alarms derived from the process window for groups the tank does not alarm itself."""
    configured = {a.source for a in tank.alarms if a.kind is AlarmKind.LIMIT}
    out: list[AlarmConfig] = []
    for group, window, min_margin, margin_frac, min_db, delay in (
        ("temperature", tank.window.temperature_c, 2.0, 0.2, 0.5, 5.0),
        ("ph", tank.window.ph, 0.2, 0.25, 0.05, 10.0),
    ):
        if window is None or group not in tank.sensors or group in configured:
            continue
        width = window.max - window.min
        margin = max(min_margin, margin_frac * width)
        hh = window.max + margin
        trip = _interlock_threshold(tank, group)
        if trip is not None and hh >= trip:
            hh = (window.max + trip) / 2.0  # warn before the interlock acts
        out.append(AlarmConfig(
            id=f"{group}_limits", kind=AlarmKind.LIMIT, source=group,
            hh=round(hh, 3), h=window.max, l=window.min, ll=round(window.min - margin, 3),
            deadband=round(max(min_db, 0.05 * width), 3), on_delay_s=delay, priority=Priority.MEDIUM,
        ))
    return out


def _feeds_protection(tank: TankConfig, group: str) -> bool:
    if any(loop.pv == group for loop in tank.loops):
        return True
    return any(parse_condition(t).ref == group for il in tank.interlocks for t in il.trip_when)


def build_definitions(plant: PlantConfig) -> list[AlarmDef]:
    """Every alarm of the plant: configured, derived defaults, interlock trips, standard system alarms."""
    defs: list[AlarmDef] = []
    problems: list[str] = []
    prefix = plant.line.prefix
    line_interlocks: dict[str, tuple[InterlockConfig, list[str]]] = {}
    for tank in plant.tanks:
        resolve = _resolver(plant, tank)
        tprefix = tank.tag_prefix(prefix)

        def suppressors(cfg: AlarmConfig, tank: TankConfig = tank, resolve=resolve) -> tuple[ResolvedCondition, ...]:  # noqa: ANN001
            out = []
            for text in cfg.suppress_when:
                c = parse_condition(text)
                tag = resolve(c.ref)
                if tag is None:
                    problems.append(f"tank {tank.id!r} alarm {cfg.id!r}: suppress_when refers to unknown {c.ref!r}")
                    continue
                out.append(ResolvedCondition(c, tag))
            return tuple(out)

        for cfg in tank.alarms:
            tag = resolve(cfg.source)
            if tag is None:
                problems.append(f"tank {tank.id!r} alarm {cfg.id!r}: unknown source {cfg.source!r}")
                continue
            group = tank.sensors.get(cfg.source)
            unit = group.unit if group else ""
            base = f"{tank.id}.{cfg.id}"
            sup = suppressors(cfg)
            if cfg.kind is AlarmKind.LIMIT:
                defs += _limit_defs(tank, cfg, tag, unit, base, "config", suppress=sup)
                continue
            common = dict(id=base, priority=cfg.priority, area=tank.area, tank=tank.id, source=cfg.source,
                          tag=tag, deadband=cfg.deadband, on_delay_s=cfg.on_delay_s,
                          off_delay_s=cfg.off_delay_s, unit=unit, suppress_when=sup)
            if cfg.kind is AlarmKind.DEVIATION:
                keys = [f"{tprefix}.{lp.id}.sp" for lp in tank.loops if lp.pv == cfg.source]
                keys.append(f"{tprefix}.{cfg.source}.sp")
                msg = cfg.message or f"{tank.name}: {cfg.source} deviates from setpoint by more than {cfg.deviation:g} {unit}"
                defs.append(AlarmDef(kind=DefKind.DEVIATION, message=msg.rstrip(), deviation=cfg.deviation,
                                     setpoint_keys=tuple(keys), **common))
            elif cfg.kind is AlarmKind.RATE:
                msg = cfg.message or f"{tank.name}: {cfg.source} changes faster than {cfg.rate_per_min:g} {unit}/min"
                defs.append(AlarmDef(kind=DefKind.RATE, message=msg, rate_per_min=cfg.rate_per_min,
                                     rate_window_s=cfg.rate_window_s, **common))
            elif cfg.kind is AlarmKind.DISCRETE:
                msg = cfg.message or f"{tank.name}: {cfg.source} is {'on' if cfg.alarm_state else 'off'}"
                defs.append(AlarmDef(kind=DefKind.DISCRETE, message=msg, alarm_state=cfg.alarm_state, **common))
            else:
                msg = cfg.message or f"{tank.name}: {cfg.source} quality"
                defs.append(AlarmDef(kind=DefKind.QUALITY, message=msg, on_uncertain=cfg.on_uncertain, **common))

        # ---- defaults from the process window
        for cfg in default_window_alarms(tank):
            group = tank.sensors[cfg.source]
            defs += _limit_defs(tank, cfg, tank.pv_tag(prefix, cfg.source), group.unit,
                                f"{tank.id}.{cfg.id}", "default", prio_hh=Priority.HIGH, prio_h=Priority.MEDIUM)
        quality_sources = {a.source for a in tank.alarms if a.kind is AlarmKind.QUALITY}
        for group, sg in tank.sensors.items():
            if group in quality_sources:
                continue
            prio = Priority.HIGH if _feeds_protection(tank, group) else Priority.MEDIUM
            defs.append(AlarmDef(
                id=f"{tank.id}.{group}.quality", kind=DefKind.QUALITY, priority=prio, area=tank.area,
                message=f"{tank.name}: {group} measurement not valid", tank=tank.id, source=group,
                tag=tank.pv_tag(prefix, group), on_delay_s=5.0, unit=sg.unit, origin="default",
            ))
        discrete_sources = {a.source for a in tank.alarms if a.kind is AlarmKind.DISCRETE}
        for group, sg in tank.sensors.items():
            tag = f"{tprefix}.{group}.discrepancy"
            if len(sg.tags) > 1 and tag not in discrete_sources:
                defs.append(AlarmDef(
                    id=f"{tank.id}.{group}.discrepancy", kind=DefKind.DISCRETE, priority=Priority.LOW,
                    area=tank.area, message=f"{tank.name}: {group} probes disagree (check calibration)",
                    tank=tank.id, source=group, tag=tag, unit=sg.unit, origin="default",
                ))
        for group, sg in tank.sensors.items():
            tag = f"{tprefix}.{group}.degraded"
            if len(sg.tags) > 1 and tag not in discrete_sources:
                # one probe of a redundant group lost: the vote still works, but the next failure is the
                # last warning; redundancy must be restored (IEC 61511: limited time in degraded mode)
                defs.append(AlarmDef(
                    id=f"{tank.id}.{group}.degraded", kind=DefKind.DISCRETE,
                    priority=Priority.HIGH if _feeds_protection(tank, group) else Priority.MEDIUM,
                    area=tank.area, message=f"{tank.name}: {group} redundancy degraded (a probe is excluded)",
                    tank=tank.id, source=group, tag=tag, unit=sg.unit, origin="default", on_delay_s=5.0,
                ))
        for loop in tank.loops:
            tag = f"{tprefix}.{loop.id}.ineffective"
            if loop.kind is LoopKind.PH_DOSING and tag not in discrete_sources:
                defs.append(AlarmDef(
                    id=f"{tank.id}.{loop.id}.ineffective", kind=DefKind.DISCRETE, priority=Priority.MEDIUM,
                    area=tank.area, message=f"{tank.name}: {loop.id} dosing ineffective (max doses per hour reached)",
                    tank=tank.id, source=loop.id, tag=tag, origin="default",
                ))
        for il in tank.interlocks:
            text = il.description or f"interlock {il.id}"
            if all(parse_condition(t).ref.startswith("line.") for t in il.trip_when):
                # a line-level cause (e-stop) trips every tank at once: one alarm, not one per tank
                line_interlocks.setdefault(il.id, (il, []))[1].append(f"{tprefix}.interlock.{il.id}")
                continue
            defs.append(AlarmDef(
                id=f"{tank.id}.interlock.{il.id}", kind=DefKind.INTERLOCK, priority=_priority(il.priority),
                area=tank.area, message=f"{tank.name}: {text} - tripped", tank=tank.id, source=il.id,
                tags=(f"{tprefix}.interlock.{il.id}",), origin="interlock",
            ))

    for il_id, (il, tags) in line_interlocks.items():
        defs.append(AlarmDef(
            id=shared_interlock_id(il_id), kind=DefKind.INTERLOCK, priority=_priority(il.priority), area="line",
            message=f"{plant.line.name}: {il.description or 'interlock ' + il_id} - tripped", source=il_id,
            tags=tuple(tags), origin="interlock",
        ))
    defs += system_definitions(plant)
    seen: set[str] = set()
    for d in defs:
        if d.id in seen:
            problems.append(f"duplicate alarm id {d.id!r}")
        seen.add(d.id)
    if problems:
        raise DefinitionError("; ".join(problems))
    return defs


def system_definitions(plant: PlantConfig) -> list[AlarmDef]:
    """The standard system alarms the composition root raises with ``engine.set_condition``."""
    out = [
        external_def(SCAN_OVERRUN, priority=Priority.HIGH, message="Scan overrun: the scan is late", origin="system"),
        external_def(HISTORIAN_BUFFERING, priority=Priority.MEDIUM,
                     message="Historian database unreachable: buffering to disk", origin="system"),
    ]
    for dev in plant.devices:
        out.append(external_def(driver_down_id(dev.name), priority=Priority.HIGH,
                                message=f"Device {dev.name} not communicating", origin="system"))
    return out


def external_def(alarm_id: str, *, priority: Priority | str = Priority.HIGH, message: str = "",
                 area: str = "system", tank: str | None = None, on_delay_s: float = 0.0,
                 off_delay_s: float = 0.0, origin: str = "external") -> AlarmDef:
    """An alarm whose condition is set by code (``engine.set_condition``), not read from a value."""
    if not alarm_id or any(c.isspace() for c in alarm_id):
        raise DefinitionError(f"alarm id {alarm_id!r} must be a non-empty name without spaces")
    return AlarmDef(id=alarm_id, kind=DefKind.EXTERNAL, priority=Priority(priority), area=area,
                    message=message or alarm_id, tank=tank, on_delay_s=on_delay_s,
                    off_delay_s=off_delay_s, origin=origin)


def by_id(defs: Iterable[AlarmDef]) -> dict[str, AlarmDef]:
    return {d.id: d for d in defs}
