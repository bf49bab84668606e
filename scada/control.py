"""Control loops: PID, on/off, pH dosing by timed pulses, rectifier current. Data in, data out.

Every loop has a mode (AUTO / MANUAL / OFF) and is stepped once per scan with its validated PV and
whether the interlocks permit its outputs. The loop returns the value of each output role it drives;
the engine still applies the interlock forcing afterwards (belt and braces), so a manual output can
never defeat an interlock. On a Bad PV in AUTO the outputs go to their safe values and the result
says why; the PID integral is frozen while the loop is not in control, so a release is bumpless.

Conventions: PID output in ``out_min..out_max`` (percent for a heater); with ``cycle_s > 0`` it is
time-proportioned into an on/off coil. On/off heating switches on below ``sp - hysteresis/2`` and off
above ``sp + hysteresis/2`` (reverse: cooling, the mirror image). Times are monotonic seconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from scada.config.control import LoopConfig, LoopKind, LoopMode, PidConfig
from scada.events import Event, EventKind
from scada.tags import Quality, Sample, Value

DOSE_WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class LoopInputs:
    """What one loop sees in one scan."""

    pv: Sample
    permitted: bool = True
    """False while an interlock forces one of the loop's outputs safe."""
    forced_reason: str = ""
    load_present: Sample | None = None
    voltage: Sample | None = None


@dataclass(frozen=True, slots=True)
class LoopOutput:
    """Result of one loop step: values per output role, and why they are what they are."""

    loop: str
    kind: LoopKind
    mode: LoopMode
    sp: float
    """Target setpoint (engineering units; A/dm2 for a rectifier)."""
    wsp: float
    """Working setpoint after ramping."""
    pv: Value
    out: float
    """Controller output: percent (PID), 0/100 (on/off, dosing), amps (rectifier)."""
    writes: Mapping[str, Value]
    """Output role -> value to write."""
    safe: bool
    """The outputs are at their safe values (OFF, Bad PV, interlock, no load, fault)."""
    reason: str = ""
    flags: frozenset[str] = frozenset()
    events: tuple[Event, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "loop": self.loop, "kind": str(self.kind), "mode": str(self.mode), "sp": self.sp, "wsp": self.wsp,
            "pv": self.pv, "out": self.out, "writes": dict(self.writes), "safe": self.safe,
            "reason": self.reason, "flags": sorted(self.flags),
        }


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


class Pid:
    """Ideal-form PID on error for P and I, on measurement for D; anti-windup by conditional integration."""

    def __init__(self, cfg: PidConfig) -> None:
        self.cfg = cfg
        self.integral = 0.0
        self._prev_pv: float | None = None
        self.saturated = False

    def _terms(self, pv: float, sp: float, dt: float) -> tuple[float, float, float]:
        c = self.cfg
        e = (pv - sp) if c.reverse else (sp - pv)
        p = c.kp * e
        d = 0.0
        if c.td_s > 0 and self._prev_pv is not None and dt > 0:
            slope = (pv - self._prev_pv) / dt
            d = c.kp * c.td_s * (slope if c.reverse else -slope)
        return e, p, d

    def step(self, pv: float, sp: float, dt: float) -> float:
        """One step; the integral only moves when that does not push a saturated output further."""
        c = self.cfg
        e, p, d = self._terms(pv, sp, dt)
        self._prev_pv = pv
        candidate = self.integral
        if c.ti_s > 0 and dt > 0:
            candidate += c.kp * dt / c.ti_s * e
        u = p + candidate + d
        self.saturated = False
        if u > c.out_max:
            self.saturated = True
            # Integrate only up to the limit (never beyond, never away from it).
            self.integral = candidate if e <= 0 else max(self.integral, c.out_max - p - d)
        elif u < c.out_min:
            self.saturated = True
            self.integral = candidate if e >= 0 else min(self.integral, c.out_min - p - d)
        else:
            self.integral = candidate
        span = c.out_max - c.out_min
        self.integral = _clamp(self.integral, c.out_min - span, c.out_max + span)
        if c.ti_s == 0:
            self.integral = 0.0
        return _clamp(p + self.integral + d, c.out_min, c.out_max)

    def track(self, out: float, pv: float, sp: float) -> None:
        """Bumpless transfer: set the integral so that the next output equals ``out``."""
        _, p, _ = self._terms(pv, sp, 0.0)
        self._prev_pv = pv
        if self.cfg.ti_s > 0:
            self.integral = out - p


class TimeProportioner:
    """Percent to an on/off coil: on for ``percent`` of every ``cycle_s`` cycle."""

    def __init__(self, cycle_s: float) -> None:
        self.cycle_s = cycle_s
        self._start: float | None = None

    def reset(self) -> None:
        self._start = None

    def step(self, percent: float, now: float) -> bool:
        if self._start is None:
            self._start = now
        elif now - self._start >= self.cycle_s:
            self._start += self.cycle_s * math.floor((now - self._start) / self.cycle_s)
        return (now - self._start) < _clamp(percent, 0.0, 100.0) / 100.0 * self.cycle_s


class LoopController:
    """Common part of every loop: mode, setpoint with ramp, manual output, safe values."""

    def __init__(self, cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> None:
        self.cfg = cfg
        self.tank = tank
        self.mode = cfg.mode
        self.sp = cfg.setpoint.initial
        self.wsp = cfg.setpoint.initial
        self.manual_out: float = 0.0
        self.last_out: float = 0.0
        self.safe_values = dict(safe_values or {})
        self._last_now: float | None = None
        self._pending_transfer = False

    @property
    def roles(self) -> tuple[str, ...]:
        return (self.cfg.output,) + ((self.cfg.enable_output,) if self.cfg.enable_output else ())

    def safe_value(self, role: str) -> Value:
        return self.safe_values.get(role, False)

    def set_setpoint(self, value: float) -> None:
        self.sp = float(value)
        if self.cfg.setpoint.ramp_per_min <= 0:
            self.wsp = self.sp

    def set_mode(self, mode: LoopMode) -> None:
        """Change mode; entering MANUAL starts from the last output, entering AUTO is bumpless."""
        if mode is self.mode:
            return
        if mode is LoopMode.MANUAL:
            self.manual_out = self.last_out
        if mode is LoopMode.AUTO:
            self._pending_transfer = True
        self.mode = mode

    def set_manual(self, value: float) -> None:
        self.manual_out = float(value)

    def _ramp(self, dt: float) -> None:
        rate = self.cfg.setpoint.ramp_per_min / 60.0
        if rate <= 0 or dt <= 0:
            self.wsp = self.sp
            return
        step = rate * dt
        self.wsp = self.sp if abs(self.sp - self.wsp) <= step else self.wsp + math.copysign(step, self.sp - self.wsp)

    def _safe(self, pv: Value, reason: str, flags: set[str] | None = None,
              events: tuple[Event, ...] = ()) -> LoopOutput:
        self.last_out = 0.0
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, 0.0,
                          {r: self.safe_value(r) for r in self.roles}, True, reason,
                          frozenset(flags or ()), events)

    def step(self, inputs: LoopInputs, now: float, ts: float) -> LoopOutput:
        """Advance the loop to ``now``; ``ts`` stamps events."""
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        self._ramp(dt)
        pv = inputs.pv.value if inputs.pv.usable else None
        if self.mode is LoopMode.OFF:
            self._on_hold()
            return self._safe(pv, "loop is OFF")
        if not inputs.permitted:
            self._on_hold()
            return self._safe(pv, f"interlocked: {inputs.forced_reason}".rstrip(": "), {"interlocked"})
        if self.mode is LoopMode.MANUAL:
            return self._manual(inputs, pv, now, ts)
        if not self._pv_ok(inputs.pv):
            self._on_hold()
            return self._safe(pv, f"PV {self.cfg.pv} is {inputs.pv.quality.label} ({inputs.pv.reason}"
                                  f"{': ' + inputs.pv.detail if inputs.pv.detail else ''}): output safe",
                              {"bad_pv"})
        if self._pending_transfer:
            self._pending_transfer = False
            self._transfer(float(pv), now)  # type: ignore[arg-type]
        return self._auto(inputs, float(pv), dt, now, ts)  # type: ignore[arg-type]

    # hooks
    def _pv_ok(self, pv: Sample) -> bool:
        return pv.usable

    def _on_hold(self) -> None:
        """Called while the loop is not in control (freeze integrators, cut pulses)."""

    def _transfer(self, pv: float, now: float) -> None:
        if self.cfg.setpoint.ramp_per_min > 0:
            self.wsp = pv

    def _manual(self, inputs: LoopInputs, pv: Value, now: float, ts: float) -> LoopOutput:
        on = bool(self.manual_out)
        self.last_out = 100.0 if on else 0.0
        writes = {self.cfg.output: on}
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, self.last_out,
                          writes, False, "manual")

    def _auto(self, inputs: LoopInputs, pv: float, dt: float, now: float, ts: float) -> LoopOutput:
        raise NotImplementedError


class PidLoop(LoopController):
    def __init__(self, cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> None:
        super().__init__(cfg, tank, safe_values)
        assert cfg.pid is not None
        self.pid = Pid(cfg.pid)
        self.tp = TimeProportioner(cfg.pid.cycle_s) if cfg.pid.cycle_s > 0 else None

    def _percent(self, out: float) -> float:
        c = self.pid.cfg
        return 100.0 * (out - c.out_min) / (c.out_max - c.out_min) if c.out_max > c.out_min else 0.0

    def _emit(self, out: float, now: float) -> Value:
        if self.tp is None:
            return out
        return self.tp.step(self._percent(out), now)

    def _transfer(self, pv: float, now: float) -> None:
        super()._transfer(pv, now)
        self.pid.track(self.last_out, pv, self.wsp)

    def _manual(self, inputs: LoopInputs, pv: Value, now: float, ts: float) -> LoopOutput:
        c = self.pid.cfg
        out = _clamp(self.manual_out, c.out_min, c.out_max)
        self.last_out = out
        if isinstance(pv, int | float) and not isinstance(pv, bool):
            self.pid._prev_pv = float(pv)
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, out,
                          {self.cfg.output: self._emit(out, now)}, False, "manual")

    def _auto(self, inputs: LoopInputs, pv: float, dt: float, now: float, ts: float) -> LoopOutput:
        out = self.pid.step(pv, self.wsp, dt)
        self.last_out = out
        flags = {"saturated"} if self.pid.saturated else set()
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, out,
                          {self.cfg.output: self._emit(out, now)}, False, "auto", frozenset(flags))

    def _safe(self, pv: Value, reason: str, flags: set[str] | None = None,
              events: tuple[Event, ...] = ()) -> LoopOutput:
        if self.tp is not None:
            self.tp.reset()
        return super()._safe(pv, reason, flags, events)


class OnOffLoop(LoopController):
    def __init__(self, cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> None:
        super().__init__(cfg, tank, safe_values)
        assert cfg.onoff is not None
        self.on = False

    def _on_hold(self) -> None:
        self.on = False

    def _auto(self, inputs: LoopInputs, pv: float, dt: float, now: float, ts: float) -> LoopOutput:
        c = self.cfg.onoff
        assert c is not None
        half = c.hysteresis / 2.0
        if c.reverse:
            if pv > self.wsp + half:
                self.on = True
            elif pv < self.wsp - half:
                self.on = False
        else:
            if pv < self.wsp - half:
                self.on = True
            elif pv > self.wsp + half:
                self.on = False
        self.last_out = 100.0 if self.on else 0.0
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, self.last_out,
                          {self.cfg.output: self.on}, False, "auto")


class DosingLoop(LoopController):
    """Dose and wait: one timed pulse, then a lock-out; at most N pulses per hour."""

    def __init__(self, cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> None:
        super().__init__(cfg, tank, safe_values)
        assert cfg.dosing is not None
        self.pulse_end: float | None = None
        self.last_dose: float | None = None
        self.doses: deque[float] = deque()
        self.ineffective = False

    def _pv_ok(self, pv: Sample) -> bool:
        return pv.quality is Quality.GOOD and pv.usable

    def _on_hold(self) -> None:
        self.pulse_end = None

    def doses_last_hour(self, now: float) -> int:
        while self.doses and self.doses[0] <= now - DOSE_WINDOW_S:
            self.doses.popleft()
        return len(self.doses)

    def _auto(self, inputs: LoopInputs, pv: float, dt: float, now: float, ts: float) -> LoopOutput:
        c = self.cfg.dosing
        assert c is not None
        events: list[Event] = []
        need = pv > self.wsp + c.deadband if c.direction == "lower" else pv < self.wsp - c.deadband
        count = self.doses_last_hour(now)
        reason = "auto"
        if self.pulse_end is not None and now < self.pulse_end:
            on = True
            reason = "dosing pulse"
        else:
            self.pulse_end = None
            on = False
            if not need:
                self.ineffective = False
                reason = "in deadband"
            elif self.last_dose is not None and now - self.last_dose < c.min_interval_s:
                reason = f"waiting {c.min_interval_s - (now - self.last_dose):.0f} s for mixing"
            elif count >= c.max_doses_per_hour:
                if not self.ineffective:
                    events.append(Event(ts=ts, kind=EventKind.DOSE, source=f"{self.tank}.{self.cfg.id}",
                                        tank=self.tank, state="ineffective", value=pv,
                                        message=f"dosing ineffective: {count} doses in the last hour and pH "
                                                f"{pv:.2f} still outside {self.wsp:g} +/- {c.deadband:g}"))
                self.ineffective = True
                reason = f"dosing ineffective: {count} doses in the last hour"
            else:
                on = True
                self.pulse_end = now + c.pulse_s
                self.last_dose = now
                self.doses.append(now)
                reason = "dosing pulse"
                events.append(Event(ts=ts, kind=EventKind.DOSE, source=f"{self.tank}.{self.cfg.id}",
                                    tank=self.tank, state="pulse", value=c.pulse_s,
                                    message=f"dose {c.pulse_s:g} s at pH {pv:.2f} (sp {self.wsp:g})",
                                    data={"pv": pv, "sp": self.wsp, "pulse_s": c.pulse_s}))
        self.last_out = 100.0 if on else 0.0
        flags = {"ineffective"} if self.ineffective else set()
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, self.last_out,
                          {self.cfg.output: on}, False, reason, frozenset(flags), tuple(events))


class RectifierLoop(LoopController):
    """Current = CD setpoint x load area, soft-start ramp, current limit, voltage hold."""

    def __init__(self, cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> None:
        super().__init__(cfg, tank, safe_values)
        assert cfg.rectifier is not None
        self.area_dm2: float | None = cfg.rectifier.default_area_dm2
        self.ramp_a = 0.0

    def set_area(self, area_dm2: float | None) -> None:
        self.area_dm2 = area_dm2

    def target_a(self) -> float:
        r = self.cfg.rectifier
        assert r is not None
        if not self.area_dm2:
            return 0.0
        return _clamp(self.wsp * self.area_dm2, 0.0, r.max_current_a)

    def _on_hold(self) -> None:
        self.ramp_a = 0.0

    def _writes(self, amps: float) -> dict[str, Value]:
        w: dict[str, Value] = {self.cfg.output: amps}
        if self.cfg.enable_output:
            w[self.cfg.enable_output] = amps > 0 or self.mode is LoopMode.AUTO
        return w

    def _load(self, inputs: LoopInputs) -> tuple[bool, str]:
        lp = inputs.load_present
        if lp is None:
            return True, ""
        if lp.quality is not Quality.GOOD:
            return False, f"load_present is {lp.quality.label} ({lp.reason})"
        return bool(lp.value), "" if lp.value else "no load present"

    def _manual(self, inputs: LoopInputs, pv: Value, now: float, ts: float) -> LoopOutput:
        r = self.cfg.rectifier
        assert r is not None
        ok, why = self._load(inputs)
        if not ok:
            self._on_hold()
            return self._safe(pv, why, {"no_load"})
        amps = _clamp(self.manual_out, 0.0, r.max_current_a)
        self.last_out = amps
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, amps,
                          self._writes(amps), False, "manual")

    def _auto(self, inputs: LoopInputs, pv: float, dt: float, now: float, ts: float) -> LoopOutput:
        r = self.cfg.rectifier
        assert r is not None
        ok, why = self._load(inputs)
        if not ok:
            self._on_hold()
            return self._safe(pv, why, {"no_load"})
        if not self.area_dm2:
            self._on_hold()
            return self._safe(pv, "no load area known (set it or configure default_area_dm2)", {"no_area"})
        target = self.target_a()
        flags: set[str] = set()
        if self.wsp * self.area_dm2 > r.max_current_a:
            flags.add("current_limit")
        v = inputs.voltage
        at_vlimit = v is not None and v.good and isinstance(v.value, int | float) and v.value >= r.max_voltage_v
        if at_vlimit:
            flags.add("voltage_limit")
        if target < self.ramp_a:
            self.ramp_a = target
        elif not at_vlimit:
            self.ramp_a = target if r.ramp_s <= 0 else min(target, self.ramp_a + target / r.ramp_s * dt)
        if self.ramp_a < target:
            flags.add("ramping")
        self.last_out = self.ramp_a
        return LoopOutput(self.cfg.id, self.cfg.kind, self.mode, self.sp, self.wsp, pv, self.ramp_a,
                          self._writes(self.ramp_a), False, "auto", frozenset(flags))


_KINDS: dict[LoopKind, type[LoopController]] = {
    LoopKind.PID: PidLoop,
    LoopKind.ONOFF: OnOffLoop,
    LoopKind.PH_DOSING: DosingLoop,
    LoopKind.RECTIFIER: RectifierLoop,
}


def make_loop(cfg: LoopConfig, tank: str, safe_values: Mapping[str, Value] | None = None) -> LoopController:
    """The controller for one loop config."""
    return _KINDS[cfg.kind](cfg, tank, safe_values)

