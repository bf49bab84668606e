"""The scan engine: a pure per-scan core (:class:`ScanCore`) and its async runner (:class:`ScanEngine`).

Each scan: snapshot the tag store -> stale check -> validate and vote every sensor group -> interlocks
-> control loops -> outputs (interlock forcing applied last) -> write what changed (and everything
every ``scan.output_refresh_s``) plus the heartbeat -> publish derived tags -> hand a
:class:`ScanResult` to listeners. The core has no I/O and no clock of its own: ``scan_once(now)`` and
``ScanCore.compute`` are driven by tests with a fake clock.

Derived tags published (``<tp>`` = the tank's tag prefix, default ``<line prefix>.<tank id>``):

* ``<tp>.<group>.pv`` voted value (quality, reason, NE 107 status);
  ``<tp>.<group>.degraded`` / ``.discrepancy`` (bool, groups of 2 or 3 probes);
* ``<tp>.<loop>.sp`` target setpoint, ``.wsp`` working (ramped) setpoint, ``.out`` controller output
  (percent, 0/100, amps), ``.mode`` (0 off, 1 manual, 2 auto), ``.safe`` (bool: outputs held safe);
  dosing loops also ``.ineffective``; rectifier loops ``.area_dm2``;
* ``<tp>.interlock.<id>`` (bool: forcing outputs safe) and ``<tp>.interlock.<id>.state``
  (0 normal, 1 tripped, 2 latched, 3 bypassed);
* ``<line>.engine.lateness_ms``, ``<line>.engine.overruns``, ``<line>.engine.scans`` (about once a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from drivers.base import WriteResult
from scada.commands import MODE_CODES, Command, CommandResult, apply_command
from scada.conditions import ConditionKind, parse_condition
from scada.config import PlantConfig
from scada.config.control import LoopKind
from scada.config.tags import DataType, TagConfig
from scada.control import DosingLoop, LoopController, LoopInputs, LoopOutput, RectifierLoop, make_loop
from scada.events import Event, EventKind
from scada.interlocks import (
    InterlockEngine,
    InterlockInputs,
    InterlockStatus,
    InterlockView,
    LineFirstOut,
)
from scada.tags import Quality, QualityReason, Sample, TagStore, Value
from scada.voting import GroupVoter, VoteResult

log = logging.getLogger(__name__)

INTERLOCK_CODES: dict[InterlockStatus, int] = {
    InterlockStatus.NORMAL: 0, InterlockStatus.TRIPPED: 1, InterlockStatus.LATCHED: 2, InterlockStatus.BYPASSED: 3,
}
_COMM = {QualityReason.COMM_FAILURE, QualityReason.NOT_CONNECTED}

Writer = Callable[[dict[str, Value]], Awaitable[list]]
Listener = Callable[["ScanResult"], object]


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change seen in this scan (interlock, loop, group or device)."""

    kind: str
    """``interlock`` | ``loop`` | ``group`` | ``device`` | ``engine``."""
    source: str
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Everything one scan decided. Listeners get this; they must not block."""

    seq: int
    now: float
    """Monotonic scan time."""
    ts: float
    """Epoch time of the scan."""
    groups: Mapping[str, VoteResult]
    """pv tag name -> vote (the validated value and per-probe diagnostics)."""
    interlocks: Mapping[str, InterlockView]
    """``tank.interlock`` -> state."""
    loops: Mapping[str, LoopOutput]
    """``tank.loop`` -> loop result."""
    outputs: Mapping[str, Value]
    """Output tag -> value demanded this scan (after interlock forcing)."""
    forced: Mapping[str, frozenset[str]]
    """tank -> output roles held safe (interlocks, device loss, engine safe state)."""
    published: Mapping[str, Sample]
    events: tuple[Event, ...]
    transitions: tuple[Transition, ...]
    line_first_out: LineFirstOut | None = None
    writes: Mapping[str, Value] = field(default_factory=dict)
    """What was sent to the writer this scan (changed outputs, refreshes, heartbeat)."""
    write_results: tuple = ()
    lateness_s: float = 0.0
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CoreResult:
    groups: dict[str, VoteResult]
    interlocks: Mapping[str, InterlockView]
    loops: dict[str, LoopOutput]
    outputs: dict[str, Value]
    forced: dict[str, frozenset[str]]
    published: dict[str, Sample]
    events: list[Event]
    transitions: list[Transition]
    line_first_out: LineFirstOut | None


def safe_value_of(tag: TagConfig) -> Value:
    """De-energise: the configured safe value, else false / 0."""
    if tag.safe_value is not None:
        return bool(tag.safe_value) if tag.is_boolean else tag.safe_value
    return False if tag.is_boolean else 0


_WHOLE_UNITS = frozenset({DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32})


def coerce_output(tag: TagConfig, value: Value) -> Value:
    """Guard a write: booleans to bool, numbers finite and clamped to the tag's engineering limits."""
    if tag.is_boolean:
        return bool(value)
    if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
        return safe_value_of(tag)
    x = float(value)
    if tag.limits is not None:
        x = min(max(x, tag.limits.min), tag.limits.max)
    if tag.modbus is not None and tag.scale is None and tag.modbus.type in _WHOLE_UNITS:
        x = float(round(x))  # an unscaled integer register holds whole units (e.g. a rectifier's amps)
    return x


class ScanCore:
    """Runtime state of the line and the pure scan step. Implements :class:`scada.commands.CommandTarget`."""

    def __init__(self, plant: PlantConfig) -> None:
        self.plant = plant
        line = plant.line.prefix
        tags = {t.name: t for t in plant.tags}
        self.tags = tags
        self.voters: dict[tuple[str, str], GroupVoter] = {}
        self.loops: dict[tuple[str, str], LoopController] = {}
        self.output_overrides: dict[tuple[str, str], Value] = {}
        self.prefix = {t.id: t.tag_prefix(line) for t in plant.tanks}
        for tank in plant.tanks:
            for g, grp in tank.sensors.items():
                self.voters[(tank.id, g)] = GroupVoter(g, grp, {n: tags[n] for n in grp.tags if n in tags})
            safe = {role: safe_value_of(tags[name]) for role, name in tank.outputs.items() if name in tags}
            for lc in tank.loops:
                self.loops[(tank.id, lc.id)] = make_loop(lc, tank.id, safe)
        self.interlocks = InterlockEngine((t.id, t.area, t.interlocks) for t in plant.tanks)
        self.device_tags: dict[str, list[str]] = {}
        for t in plant.tags:
            if t.device is not None:
                self.device_tags.setdefault(t.device, []).append(t.name)
        self.stale_s: dict[str, float] = {}
        for d in plant.devices:
            self.stale_s[d.name] = plant.scan.stall_periods * max(d.poll_period_s, plant.scan.period_s) + d.timeout_s
        self.tank_devices: dict[str, set[str]] = {}
        for tank in plant.tanks:
            names = [n for g in tank.sensors.values() for n in g.tags] + list(tank.inputs.values()) \
                + list(tank.outputs.values())
            self.tank_devices[tank.id] = {tags[n].device for n in names if n in tags and tags[n].device}  # type: ignore[misc]
        self.device_lost: dict[str, str] = {}
        self.loop_faults: dict[tuple[str, str], str] = {}
        self._forced: dict[str, frozenset[str]] = {}
        self._forced_why: dict[tuple[str, str], str] = {}
        self._loop_state: dict[tuple[str, str], str] = {}
        self._group_state: dict[tuple[str, str], str] = {}
        self.derived = self._derived_names()
        clash = [n for n in self.derived if n in tags]
        if clash:
            raise ValueError(f"derived tag names clash with configured tags: {', '.join(clash)}")

    # ------------------------------------------------------------------ names

    def _derived_names(self) -> list[str]:
        names: list[str] = []
        line = self.plant.line.prefix
        for tank in self.plant.tanks:
            tp = self.prefix[tank.id]
            for g, grp in tank.sensors.items():
                names.append(tank.pv_tag(line, g))
                if len(grp.tags) > 1:
                    names += [f"{tp}.{g}.degraded", f"{tp}.{g}.discrepancy"]
            for lc in tank.loops:
                names += [f"{tp}.{lc.id}.{s}" for s in ("sp", "wsp", "out", "mode", "safe")]
                if lc.kind is LoopKind.PH_DOSING:
                    names.append(f"{tp}.{lc.id}.ineffective")
                if lc.kind is LoopKind.RECTIFIER:
                    names.append(f"{tp}.{lc.id}.area_dm2")
            for il in tank.interlocks:
                names += [f"{tp}.interlock.{il.id}", f"{tp}.interlock.{il.id}.state"]
        names += [f"{line}.engine.{s}" for s in ("lateness_ms", "overruns", "scans")]
        return names

    # ------------------------------------------------------------------ CommandTarget

    def loop_blocked(self, tank: str, loop: str) -> str:
        lp = self.loops.get((tank, loop))
        if lp is None:
            return ""
        if (tank, loop) in self.loop_faults:
            return f"loop fault: {self.loop_faults[(tank, loop)]}"
        forced = self._forced.get(tank, frozenset())
        why = [self._forced_why.get((tank, r), r) for r in lp.roles if r in forced]
        return "; ".join(why)

    def driven_roles(self, tank: str) -> set[str]:
        return {r for (t, _), lp in self.loops.items() if t == tank for r in lp.roles}

    def execute(self, cmd: Command, now: float, ts: float) -> CommandResult:
        return apply_command(self, cmd, now, ts)

    # ------------------------------------------------------------------ scan

    def stale_check(self, snapshot: Mapping[str, Sample], ts: float) -> dict[str, Sample]:
        """Device samples older than N periods count as Bad comm (a frozen driver must not look live)."""
        out = dict(snapshot)
        for dev, names in self.device_tags.items():
            limit = self.stale_s.get(dev, 1e9)
            for n in names:
                s = out.get(n)
                if s is None:
                    out[n] = Sample.bad(QualityReason.NOT_CONNECTED, ts, "no sample from the driver")
                elif s.quality is not Quality.BAD and ts - s.server_ts > limit:
                    out[n] = s.with_quality(Quality.BAD, QualityReason.COMM_FAILURE,
                                            f"stale: no update from {dev} for {ts - s.server_ts:.1f} s")
        return out

    def _devices(self, snap: Mapping[str, Sample], ts: float, events: list[Event],
                 transitions: list[Transition]) -> None:
        for dev, names in self.device_tags.items():
            samples = [snap[n] for n in names if n in snap]
            lost = bool(samples) and all(s.quality is Quality.BAD and s.reason in _COMM for s in samples)
            was = dev in self.device_lost
            if lost and not was:
                detail = next((s.detail for s in samples if s.detail), str(samples[0].reason))
                self.device_lost[dev] = detail
                events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=dev, state="lost", priority="critical",
                                    message=f"device {dev} lost ({detail}): its tanks' outputs go safe"))
                transitions.append(Transition("device", dev, "ok", "lost", detail))
            elif was and not lost:
                del self.device_lost[dev]
                events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=dev, state="recovered",
                                    message=f"device {dev} answers again"))
                transitions.append(Transition("device", dev, "lost", "ok"))

    def compute(self, snapshot: Mapping[str, Sample], now: float, ts: float,
                *, all_safe: str = "") -> CoreResult:
        """One scan without I/O. ``all_safe`` (a reason) forces every output safe (watchdog)."""
        plant = self.plant
        line = plant.line.prefix
        events: list[Event] = []
        transitions: list[Transition] = []
        snap = self.stale_check(snapshot, ts)
        self._devices(snap, ts, events, transitions)
        groups: dict[str, VoteResult] = {}
        published: dict[str, Sample] = {}
        il_inputs: dict[str, InterlockInputs] = {}
        estop = snap.get(plant.line.estop) if plant.line.estop else None

        def good(v: Value) -> Sample:
            return Sample(value=v, quality=Quality.GOOD, server_ts=ts)

        for tank in plant.tanks:
            tp = self.prefix[tank.id]
            values: dict[str, Sample] = {}
            disagree: dict[str, bool] = {}
            for g, grp in tank.sensors.items():
                voter = self.voters[(tank.id, g)]
                pv_tag = tank.pv_tag(line, g)
                try:
                    vr = voter.vote(snap, now)
                except Exception as e:  # noqa: BLE001 - a voting bug makes the value Bad, not the scan
                    log.exception("voting %s.%s failed", tank.id, g)
                    vr = VoteResult(g, grp.voting, Sample.bad(QualityReason.CONFIG_ERROR, ts, f"voting failed: {e!r}"),
                                    0, True, False, ())
                groups[pv_tag] = vr
                published[pv_tag] = vr.pv
                values[g] = vr.pv
                disagree[g] = vr.discrepancy
                if len(grp.tags) > 1:
                    published[f"{tp}.{g}.degraded"] = good(vr.degraded)
                    published[f"{tp}.{g}.discrepancy"] = good(vr.discrepancy)
                state = vr.pv.quality.label + (":degraded" if vr.degraded else "") + (
                    ":discrepancy" if vr.discrepancy else "")
                old = self._group_state.get((tank.id, g))
                if old is not None and old != state:
                    transitions.append(Transition("group", pv_tag, old, state, vr.pv.detail))
                self._group_state[(tank.id, g)] = state
            for role, name in {**tank.inputs, **tank.outputs}.items():
                values[role] = snap.get(name) or Sample.bad(QualityReason.NOT_CONNECTED, ts, f"no sample for {name}")
            if plant.line.estop:
                values["line.estop"] = estop or Sample.bad(QualityReason.NOT_CONNECTED, ts, "no e-stop sample")
            il_inputs[tank.id] = InterlockInputs(values, disagree)

        ilr = self.interlocks.evaluate(il_inputs, now, ts)
        events += ilr.events
        for ev in ilr.events:
            transitions.append(Transition("interlock", ev.source, "", ev.state or "", ev.message))
        forced: dict[str, set[str]] = {k: set(v) for k, v in ilr.forced.items()}
        why: dict[tuple[str, str], str] = {k: "interlock " + ", ".join(v) for k, v in ilr.forced_by.items()}
        for tank in plant.tanks:
            lost = sorted(self.tank_devices.get(tank.id, set()) & set(self.device_lost))
            reason = f"device {', '.join(lost)} lost" if lost else (all_safe or "")
            if reason:
                forced.setdefault(tank.id, set()).update(tank.outputs)
                for r in tank.outputs:
                    why[(tank.id, r)] = reason

        # control
        loops: dict[str, LoopOutput] = {}
        for tank in plant.tanks:
            tp = self.prefix[tank.id]
            f = forced.get(tank.id, set())
            tank_vals = il_inputs[tank.id].values
            for lc in tank.loops:
                key = (tank.id, lc.id)
                lp = self.loops[key]
                blocked = [why.get((tank.id, r), r) for r in lp.roles if r in f]
                pv = tank_vals.get(lc.pv) or Sample.bad(QualityReason.CONFIG_ERROR, ts, f"no group {lc.pv}")
                inputs = LoopInputs(
                    pv=pv, permitted=not blocked, forced_reason="; ".join(dict.fromkeys(blocked)),
                    load_present=tank_vals.get("load_present") if isinstance(lp, RectifierLoop) else None,
                    voltage=tank_vals.get("voltage") if isinstance(lp, RectifierLoop) else None,
                )
                try:
                    out = lp.step(inputs, now, ts)
                    if key in self.loop_faults:
                        del self.loop_faults[key]
                        events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=f"{tank.id}.{lc.id}",
                                            tank=tank.id, state="recovered", message=f"loop {tank.id}.{lc.id} runs again"))
                except Exception as e:  # noqa: BLE001 - one loop's bug trips that loop only
                    log.exception("loop %s.%s failed", tank.id, lc.id)
                    msg = f"{type(e).__name__}: {e}"
                    if key not in self.loop_faults:
                        events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=f"{tank.id}.{lc.id}", tank=tank.id,
                                            area=tank.area, state="faulted", priority="high",
                                            message=f"loop {tank.id}.{lc.id} crashed ({msg}): its outputs are safe"))
                    self.loop_faults[key] = msg
                    out = LoopOutput(lc.id, lc.kind, lp.mode, lp.sp, lp.wsp, pv.value, 0.0,
                                     {r: lp.safe_value(r) for r in lp.roles}, True, f"loop fault: {msg}",
                                     frozenset({"fault"}))
                    f = forced.setdefault(tank.id, set())
                    f.update(lp.roles)
                    for r in lp.roles:
                        why[(tank.id, r)] = f"loop {lc.id} fault"
                loops[f"{tank.id}.{lc.id}"] = out
                events += out.events
                state = f"{out.mode.value}:{'safe' if out.safe else 'active'}"
                old = self._loop_state.get(key)
                if old is not None and old != state:
                    transitions.append(Transition("loop", f"{tank.id}.{lc.id}", old, state, out.reason))
                self._loop_state[key] = state
                published[f"{tp}.{lc.id}.sp"] = good(lp.sp)
                published[f"{tp}.{lc.id}.wsp"] = good(lp.wsp)
                published[f"{tp}.{lc.id}.out"] = Sample(value=out.out, quality=Quality.GOOD, server_ts=ts,
                                                        detail=out.reason)
                published[f"{tp}.{lc.id}.mode"] = good(MODE_CODES[lp.mode])
                published[f"{tp}.{lc.id}.safe"] = Sample(value=out.safe, quality=Quality.GOOD, server_ts=ts,
                                                         detail=out.reason if out.safe else "")
                if isinstance(lp, DosingLoop):
                    published[f"{tp}.{lc.id}.ineffective"] = good(lp.ineffective)
                if isinstance(lp, RectifierLoop):
                    published[f"{tp}.{lc.id}.area_dm2"] = good(lp.area_dm2)

        # outputs: loop demand, else override / initial / safe; forcing last
        outputs: dict[str, Value] = {}
        for tank in plant.tanks:
            f = forced.get(tank.id, set())
            demand: dict[str, Value] = {}
            for lc in tank.loops:
                demand.update(loops[f"{tank.id}.{lc.id}"].writes)
            for role, name in tank.outputs.items():
                tag = self.tags[name]
                if role in f:
                    outputs[name] = safe_value_of(tag)
                    continue
                if role in demand:
                    v = demand[role]
                elif (tank.id, role) in self.output_overrides:
                    v = self.output_overrides[(tank.id, role)]
                elif tag.initial is not None:
                    v = tag.initial
                else:
                    v = safe_value_of(tag)
                outputs[name] = coerce_output(tag, v)

        for key, view in ilr.views.items():
            tank_id, il_id = key.split(".", 1)
            tp = self.prefix[tank_id]
            # two conditions on one bad input give the same reason twice: say it once
            detail = "; ".join(dict.fromkeys(view.causes)) or (f"first out: {view.first_out}" if view.first_out else "")
            published[f"{tp}.interlock.{il_id}"] = Sample(value=view.forcing, quality=Quality.GOOD, server_ts=ts,
                                                          detail=detail)
            published[f"{tp}.interlock.{il_id}.state"] = good(INTERLOCK_CODES[view.status])

        self._forced = {k: frozenset(v) for k, v in forced.items()}
        self._forced_why = why
        return CoreResult(groups, ilr.views, loops, outputs, dict(self._forced), published, events,
                          transitions, ilr.line_first_out)

    def fast_tags(self) -> list[str]:
        """Digital inputs that interlock conditions test directly (e-stop, level switches, fan feedback):
        the runner scans at once when one of them changes instead of waiting for the next deadline."""
        out: set[str] = set()
        for tank in self.plant.tanks:
            for il in tank.interlocks:
                for text in il.trip_when:
                    c = parse_condition(text)
                    if c.kind not in (ConditionKind.IS_TRUE, ConditionKind.IS_FALSE):
                        continue
                    name = self.plant.line.estop if c.ref == "line.estop" else tank.inputs.get(c.ref)
                    if name and name in self.tags and self.tags[name].device is not None:
                        out.add(name)
        return sorted(out)

    def safe_outputs(self) -> dict[str, Value]:
        """Every output at its safe value (watchdog, stop)."""
        return {name: safe_value_of(self.tags[name]) for t in self.plant.tanks for name in t.outputs.values()}


@dataclass
class ScanStats:
    """Timing of the runner (lateness = how late a scan started after its deadline)."""

    period_s: float
    scans: int = 0
    overruns: int = 0
    """Scans that started more than one period late."""
    stalls: int = 0
    missed: int = 0
    """Deadlines skipped after an overrun."""
    listener_errors: int = 0
    write_failures: int = 0
    fast_scans: int = 0
    """Extra scans run at once because an interlock digital input changed."""
    lateness: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    lateness_max_s: float = 0.0

    @staticmethod
    def _pct(values: deque[float], q: float) -> float | None:
        if not values:
            return None
        s = sorted(values)
        return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]

    def summary(self) -> dict[str, float | int | None]:
        ms = lambda x: None if x is None else round(x * 1000.0, 3)  # noqa: E731
        return {
            "period_s": self.period_s, "scans": self.scans, "overruns": self.overruns, "stalls": self.stalls,
            "missed": self.missed, "fast_scans": self.fast_scans, "listener_errors": self.listener_errors, "write_failures": self.write_failures,
            "lateness_p50_ms": ms(self._pct(self.lateness, 0.50)),
            "lateness_p99_ms": ms(self._pct(self.lateness, 0.99)),
            "lateness_max_ms": ms(self.lateness_max_s if self.lateness else None),
            "duration_p50_ms": ms(self._pct(self.durations, 0.50)),
            "duration_p99_ms": ms(self._pct(self.durations, 0.99)),
            "duration_max_ms": ms(max(self.durations) if self.durations else None),
        }


class ScanEngine:
    """Runs :class:`ScanCore` on a fixed period against a tag store and an output writer.

    ``writer`` takes ``{tag: value}`` and returns one ``WriteResult`` per tag (the composition root
    routes tags to their drivers). ``clock`` is monotonic (deadlines), ``wall`` epoch (timestamps).
    """

    def __init__(
        self,
        plant: PlantConfig,
        store: TagStore,
        writer: Writer,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.plant = plant
        self.store = store
        self.writer = writer
        self.clock = clock
        self.wall = wall
        self.core = ScanCore(plant)
        self.period_s = plant.scan.period_s
        self.stats = ScanStats(plant.scan.period_s)
        self.seq = 0
        self.heartbeat = 0
        self.last: ScanResult | None = None
        self._listeners: list[Listener] = []
        self._written: dict[str, Value] = {}
        self._last_refresh: float | None = None
        self._write_failing: dict[str, str] = {}
        self._pending_events: list[Event] = []
        self._all_safe = ""
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._scan_started: float | None = None
        self._last_scan_end: float | None = None
        self._watchdog_tripped = False
        self._last_stats_pub: float | None = None
        self.fast_tags = self.core.fast_tags()
        self.fast_check_s = min(0.01, self.period_s / 10)
        self._fast_seen: dict[str, tuple[Value, Quality]] = {}
        store.declare(self.core.derived)

    # ------------------------------------------------------------------ listeners and commands

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call ``callback(result)`` after every scan (synchronously: it must not block). Returns an unsubscribe."""
        self._listeners.append(callback)
        return lambda: self.remove_listener(callback)

    def remove_listener(self, callback: Listener) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def execute(self, cmd: Command) -> CommandResult:
        """Apply an operator/engineer command now; its audit event goes out with the next ScanResult."""
        result = self.core.execute(cmd, self.clock(), self.wall())
        if result.event is not None:
            self._pending_events.append(result.event)
        return result

    def group(self, pv_tag: str) -> VoteResult | None:
        """Last vote (with per-probe diagnostics) of a sensor group, by its pv tag name."""
        return self.last.groups.get(pv_tag) if self.last else None

    # ------------------------------------------------------------------ one scan

    def _select_writes(self, outputs: Mapping[str, Value], now: float) -> dict[str, Value]:
        refresh = self._last_refresh is None or now - self._last_refresh >= self.plant.scan.output_refresh_s
        if refresh:
            self._last_refresh = now
            writes = dict(outputs)
        else:
            writes = {k: v for k, v in outputs.items() if k not in self._written or self._written[k] != v}
        hb = self.plant.line.heartbeat
        if hb:
            self.heartbeat = (self.heartbeat + 1) % 65536
            writes[hb] = self.heartbeat
        return writes

    async def _write(self, writes: dict[str, Value], ts: float, events: list[Event]) -> tuple:
        if not writes:
            return ()
        try:
            results = tuple(await self.writer(writes))
        except Exception as e:  # noqa: BLE001 - a writer failure is reported, never fatal
            log.exception("writer failed")
            results = tuple(WriteResult(t, False, v, f"writer failed: {e!r}") for t, v in writes.items())
        for r in results:
            if r.ok:
                self._written[r.tag] = writes.get(r.tag, r.value)
                if r.tag in self._write_failing:
                    del self._write_failing[r.tag]
                    events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=r.tag, state="write_ok",
                                        message=f"write to {r.tag} works again"))
            else:
                self._written.pop(r.tag, None)
                self.stats.write_failures += 1
                if r.tag not in self._write_failing:
                    events.append(Event(ts=ts, kind=EventKind.SYSTEM, source=r.tag, state="write_failed",
                                        priority="high", value=None,
                                        message=f"cannot write {r.tag} = {writes.get(r.tag)!r}: {r.reason}"))
                self._write_failing[r.tag] = r.reason
        return results

    async def scan_once(self, now: float | None = None, *, lateness_s: float = 0.0) -> ScanResult:
        """Run one complete scan (compute, write, publish, notify) at monotonic time ``now``."""
        now = self.clock() if now is None else now
        ts = self.wall()
        t0 = time.perf_counter()
        self._scan_started = now
        snapshot = self.store.snapshot()
        for n in self.fast_tags:
            smp = snapshot.get(n)
            if smp is not None:
                self._fast_seen[n] = (smp.value, smp.quality)
        all_safe = self._all_safe
        core = self.core.compute(snapshot, now, ts, all_safe=all_safe)
        events = self._pending_events + core.events
        self._pending_events = []
        writes = self._select_writes(core.outputs, now)
        results = await self._write(writes, ts, events)
        if self._last_stats_pub is None or now - self._last_stats_pub >= 1.0:
            self._last_stats_pub = now
            line = self.plant.line.prefix
            core.published[f"{line}.engine.lateness_ms"] = Sample.good_value(round(lateness_s * 1000, 3), ts)
            core.published[f"{line}.engine.overruns"] = Sample.good_value(self.stats.overruns, ts)
            core.published[f"{line}.engine.scans"] = Sample.good_value(self.seq + 1, ts)
        self.store.publish(core.published)
        self.seq += 1
        duration = time.perf_counter() - t0
        self.stats.scans += 1
        self.stats.durations.append(duration)
        result = ScanResult(
            seq=self.seq, now=now, ts=ts, groups=core.groups, interlocks=core.interlocks, loops=core.loops,
            outputs=core.outputs, forced=core.forced, published=core.published, events=tuple(events),
            transitions=tuple(core.transitions), line_first_out=core.line_first_out, writes=writes,
            write_results=results, lateness_s=lateness_s, duration_s=duration,
        )
        self.last = result
        self._last_scan_end = self.clock()
        self._scan_started = None
        for cb in list(self._listeners):
            try:
                cb(result)
            except Exception:  # noqa: BLE001 - a listener bug must not stop the scan
                self.stats.listener_errors += 1
                log.exception("scan listener %r failed", cb)
        return result

    # ------------------------------------------------------------------ runner

    async def start(self) -> None:
        """Start the periodic scan and its watchdog in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="scan-engine")
            self._watchdog = asyncio.create_task(self._watch(), name="scan-watchdog")

    async def stop(self, *, safe: bool = True) -> None:
        """Stop scanning; with ``safe`` write every output to its safe value (as far as it can be written)."""
        for t in (self._task, self._watchdog):
            if t is not None:
                t.cancel()
        for t in (self._task, self._watchdog):
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self._task = self._watchdog = None
        if safe:
            with contextlib.suppress(Exception):
                await self.writer(self.core.safe_outputs())

    async def run(self) -> None:
        """Fixed period with drift compensation: deadlines at t0 + k * period, never cumulative sleeps."""
        period = self.period_s
        stall = self.plant.scan.stall_periods * period
        deadline = self.clock()
        while True:
            now = self.clock()
            late = max(0.0, now - deadline)
            self.stats.lateness.append(late)
            self.stats.lateness_max_s = max(self.stats.lateness_max_s, late)
            if late > period:
                self.stats.overruns += 1
            if late > stall:
                self.stats.stalls += 1
                self._all_safe = f"scan stalled: started {late:.2f} s late (> {self.plant.scan.stall_periods} periods)"
                self._pending_events.append(Event(
                    ts=self.wall(), kind=EventKind.SYSTEM, source="engine", state="stalled", priority="critical",
                    message=self._all_safe + "; outputs forced safe for one scan"))
            try:
                await self.scan_once(now, lateness_s=late)
            except Exception as e:  # noqa: BLE001 - the runner never dies; outputs go safe
                log.exception("scan failed")
                self._pending_events.append(Event(ts=self.wall(), kind=EventKind.SYSTEM, source="engine",
                                                  state="scan_failed", priority="critical",
                                                  message=f"scan failed ({e!r}): outputs forced safe"))
                with contextlib.suppress(Exception):
                    await self.writer(self.core.safe_outputs())
            self._all_safe = ""
            deadline += period
            now = self.clock()
            if now - deadline > period:
                skipped = int((now - deadline) // period)
                self.stats.missed += skipped
                deadline += skipped * period
            await self._wait_until(deadline)

    def _fast_changed(self) -> bool:
        changed = False
        for n in self.fast_tags:
            smp = self.store.get(n) if n in self.store else None
            if smp is not None and self._fast_seen.get(n) != (smp.value, smp.quality):
                changed = True
        return changed

    async def _wait_until(self, deadline: float) -> None:
        """Sleep to the deadline, but scan at once when an interlock digital input changes."""
        while True:
            wait = deadline - self.clock()
            if wait <= 0:
                return
            if not self.fast_tags:
                await asyncio.sleep(wait)
                return
            await asyncio.sleep(min(wait, self.fast_check_s))
            if deadline - self.clock() > self.fast_check_s and self._fast_changed():
                self.stats.fast_scans += 1
                try:
                    await self.scan_once(self.clock())
                except Exception:  # noqa: BLE001 - the periodic scan reports and goes safe
                    log.exception("fast scan failed")

    async def _watch(self) -> None:
        """If a scan hangs (a writer that never returns), write safe outputs from outside the scan."""
        period = self.period_s
        limit = self.plant.scan.stall_periods * period
        while True:
            await asyncio.sleep(period)
            started = self._scan_started
            if started is not None and self.clock() - started > limit:
                if not self._watchdog_tripped:
                    self._watchdog_tripped = True
                    self.stats.stalls += 1
                    self._pending_events.append(Event(
                        ts=self.wall(), kind=EventKind.SYSTEM, source="engine", state="stalled", priority="critical",
                        message=f"scan hung for more than {limit:.2f} s: outputs forced safe by the watchdog"))
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(self.writer(self.core.safe_outputs()), timeout=limit)
            else:
                self._watchdog_tripped = False
