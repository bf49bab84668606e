"""Control loops against small plant models with a fake clock: PID, on/off, dosing, rectifier."""

from __future__ import annotations

import pytest

from scada.config.control import LoopConfig, LoopMode, PidConfig
from scada.control import (
    DosingLoop,
    LoopInputs,
    OnOffLoop,
    Pid,
    PidLoop,
    RectifierLoop,
    TimeProportioner,
    make_loop,
)
from scada.tags import QualityReason
from tests.engine.support import bad, good, uncertain


def loop_cfg(kind: str, **kw: object) -> LoopConfig:
    base: dict[str, object] = {
        "id": "x", "kind": kind, "pv": "temperature", "output": "heater",
        "setpoint": {"initial": 55, "limits": {"min": 0, "max": 100}},
    }
    base.update(kw)
    return LoopConfig.model_validate(base)


class FirstOrderBath:
    """dT/dt = (gain * u/100 - (T - ambient)) / tau: the nickel tank of the example (12 kW, 4440 kJ/K, 104 W/K)."""

    def __init__(self, t0: float = 50.0, gain: float = 115.4, tau: float = 42_692.0, ambient: float = 20.0) -> None:
        self.t, self.gain, self.tau, self.ambient = t0, gain, tau, ambient

    def step(self, u_percent: float, dt: float) -> float:
        self.t += (self.gain * u_percent / 100.0 - (self.t - self.ambient)) / self.tau * dt
        return self.t


def test_pid_step_response_settles_without_big_overshoot() -> None:
    lp = PidLoop(loop_cfg("pid", pid={"kp": 25.0, "ti_s": 600}), "nickel", {"heater": 0.0})
    bath = FirstOrderBath(t0=50.0)
    peak = 0.0
    history = []
    dt = 1.0
    for i in range(6 * 3600):
        out = lp.step(LoopInputs(good(bath.t)), i * dt, 0.0)
        bath.step(out.out, dt)
        peak = max(peak, bath.t)
        history.append(bath.t)
    assert peak < 55.0 + 1.0
    assert all(abs(t - 55.0) < 0.3 for t in history[-3600:])


def test_pid_time_proportioned_coil_holds_the_setpoint() -> None:
    lp = PidLoop(loop_cfg("pid", pid={"kp": 25.0, "ti_s": 600, "cycle_s": 10}), "nickel", {"heater": False})
    bath = FirstOrderBath(t0=54.0)
    dt = 0.25
    for i in range(int(4 * 3600 / dt)):
        out = lp.step(LoopInputs(good(bath.t)), i * dt, 0.0)
        assert isinstance(out.writes["heater"], bool)
        bath.step(100.0 if out.writes["heater"] else 0.0, dt)
    assert abs(bath.t - 55.0) < 0.5


def test_anti_windup_keeps_the_integral_bounded() -> None:
    pid = Pid(PidConfig(kp=2.0, ti_s=10.0, out_min=0, out_max=100))
    outs = [pid.step(20.0, 55.0, 1.0) for _ in range(10_000)]
    assert outs[-1] == 100.0
    assert pid.integral <= 31.0          # stopped integrating once P + I reached the limit
    # The process overshoots: a wound-up integral would keep the output at 100 % for a long time.
    out = pid.step(56.0, 55.0, 1.0)
    assert out < 100.0


def test_pid_output_limits_and_reverse_action() -> None:
    pid = Pid(PidConfig(kp=10.0, ti_s=0, out_min=10, out_max=60, reverse=True))
    assert pid.step(50.0, 55.0, 1.0) == 10.0      # below SP: cooling output at its minimum
    assert pid.step(58.0, 55.0, 1.0) == 30.0
    assert pid.step(70.0, 55.0, 1.0) == 60.0


def test_bumpless_auto_manual_auto() -> None:
    lp = PidLoop(loop_cfg("pid", pid={"kp": 25.0, "ti_s": 600}), "nickel", {"heater": 0.0})
    for i in range(100):
        last = lp.step(LoopInputs(good(54.0)), float(i), 0.0)
    lp.set_mode(LoopMode.MANUAL)
    m = lp.step(LoopInputs(good(54.0)), 100.0, 0.0)
    assert m.out == pytest.approx(last.out)                  # AUTO -> MANUAL starts from the last output
    lp.set_manual(30.0)
    assert lp.step(LoopInputs(good(54.0)), 101.0, 0.0).out == 30.0
    lp.set_mode(LoopMode.AUTO)
    a = lp.step(LoopInputs(good(54.0)), 102.0, 0.0)
    assert a.out == pytest.approx(30.0, abs=0.1)              # MANUAL -> AUTO without a bump


def test_setpoint_ramp() -> None:
    cfg = loop_cfg("pid", pid={"kp": 1.0, "ti_s": 0},
                   setpoint={"initial": 55, "limits": {"min": 0, "max": 100}, "ramp_per_min": 0.5})
    lp = PidLoop(cfg, "nickel", {"heater": 0.0})
    lp.step(LoopInputs(good(55.0)), 0.0, 0.0)
    lp.set_setpoint(60.0)
    out = lp.step(LoopInputs(good(55.0)), 60.0, 0.0)
    assert out.sp == 60.0 and out.wsp == pytest.approx(55.5)
    out = lp.step(LoopInputs(good(55.0)), 60.0 + 600.0, 0.0)
    assert out.wsp == 60.0


def test_time_proportioner_duty() -> None:
    tp = TimeProportioner(10.0)
    on = [tp.step(40.0, i * 0.5) for i in range(40)]           # two cycles
    assert sum(on) == 16                                       # 4 s of each 10 s at 0.5 s resolution
    assert on[:8] == [True] * 8 and on[8:20] == [False] * 12


@pytest.mark.parametrize(
    ("reverse", "sequence"),
    [
        (False, [(68.9, True), (70.5, True), (71.1, False), (69.5, False), (68.8, True)]),
        (True, [(71.1, True), (69.5, True), (68.9, False), (70.5, False), (71.2, True)]),
    ],
)
def test_on_off_hysteresis(reverse: bool, sequence: list[tuple[float, bool]]) -> None:
    cfg = loop_cfg("onoff", onoff={"hysteresis": 2.0, "reverse": reverse},
                   setpoint={"initial": 70, "limits": {"min": 0, "max": 100}})
    lp = OnOffLoop(cfg, "soak", {"heater": False})
    for i, (pv, expected) in enumerate(sequence):
        assert lp.step(LoopInputs(good(pv)), float(i), 0.0).writes["heater"] is expected


@pytest.mark.parametrize("mode", [LoopMode.AUTO, LoopMode.MANUAL])
def test_interlock_forces_safe_even_in_manual(mode: LoopMode) -> None:
    lp = OnOffLoop(loop_cfg("onoff", onoff={"hysteresis": 2.0}), "soak", {"heater": False})
    lp.set_mode(mode)
    lp.set_manual(1.0)
    out = lp.step(LoopInputs(good(20.0), permitted=False, forced_reason="interlock dry_fire"), 0.0, 0.0)
    assert out.safe and out.writes == {"heater": False} and "dry_fire" in out.reason


def test_off_mode_and_bad_pv_go_safe_with_a_reason() -> None:
    lp = PidLoop(loop_cfg("pid", pid={"kp": 25.0, "ti_s": 600}), "nickel", {"heater": 0.0})
    out = lp.step(LoopInputs(bad(QualityReason.SENSOR_FAILURE)), 0.0, 0.0)
    assert out.safe and out.writes == {"heater": 0.0} and "bad" in out.reason and "sensor_failure" in out.reason
    lp.set_mode(LoopMode.OFF)
    out = lp.step(LoopInputs(good(20.0)), 1.0, 0.0)
    assert out.safe and out.reason == "loop is OFF"


def dosing(**kw: object) -> DosingLoop:
    d = {"direction": "lower", "deadband": 0.1, "pulse_s": 5, "min_interval_s": 300, "max_doses_per_hour": 6}
    d.update(kw)
    cfg = loop_cfg("ph_dosing", pv="ph", output="acid_pump", dosing=d,
                   setpoint={"initial": 4.2, "limits": {"min": 3.5, "max": 5.0}})
    lp = make_loop(cfg, "nickel", {"acid_pump": False})
    assert isinstance(lp, DosingLoop)
    return lp


def test_dosing_pulse_then_wait() -> None:
    lp = dosing()
    out = lp.step(LoopInputs(good(4.5)), 0.0, 0.0)
    assert out.writes["acid_pump"] is True and [e.state for e in out.events] == ["pulse"]
    assert lp.step(LoopInputs(good(4.5)), 4.9, 0.0).writes["acid_pump"] is True
    assert lp.step(LoopInputs(good(4.5)), 5.0, 0.0).writes["acid_pump"] is False
    assert lp.step(LoopInputs(good(4.5)), 299.0, 0.0).writes["acid_pump"] is False   # mixing lock-out
    assert lp.step(LoopInputs(good(4.5)), 300.0, 0.0).writes["acid_pump"] is True


def test_dosing_deadband_and_direction() -> None:
    assert dosing().step(LoopInputs(good(4.29)), 0.0, 0.0).writes["acid_pump"] is False
    assert dosing().step(LoopInputs(good(3.9)), 0.0, 0.0).writes["acid_pump"] is False   # lower never raises
    assert dosing(direction="raise").step(LoopInputs(good(3.9)), 0.0, 0.0).writes["acid_pump"] is True


def test_dosing_max_per_hour_flags_ineffective() -> None:
    lp = dosing(max_doses_per_hour=3)
    pulses = 0
    events = []
    for t in range(0, 3600, 5):
        out = lp.step(LoopInputs(good(4.6)), float(t), 0.0)
        events += out.events
    pulses = sum(1 for e in events if e.state == "pulse")
    assert pulses == 3
    assert lp.ineffective and "ineffective" in out.flags
    assert [e.state for e in events].count("ineffective") == 1
    out = lp.step(LoopInputs(good(4.6)), 3600.0, 0.0)       # the first dose left the window
    assert out.writes["acid_pump"] is True
    out = lp.step(LoopInputs(good(4.25)), 3700.0, 0.0)      # back in the deadband clears the flag
    assert not lp.ineffective


@pytest.mark.parametrize("pv", [bad(), uncertain(4.6)])
def test_dosing_never_on_a_doubtful_ph_and_cuts_a_running_pulse(pv: object) -> None:
    lp = dosing()
    assert lp.step(LoopInputs(good(4.6)), 0.0, 0.0).writes["acid_pump"] is True
    out = lp.step(LoopInputs(pv), 1.0, 0.0)  # type: ignore[arg-type]
    assert out.writes["acid_pump"] is False and out.safe


def rectifier(**kw: object) -> RectifierLoop:
    r = {"ramp_s": 20, "max_current_a": 1000, "max_voltage_v": 15, "default_area_dm2": 50}
    r.update(kw)
    cfg = loop_cfg("rectifier", pv="current", output="rectifier_setpoint", enable_output="rectifier_enable",
                   rectifier=r, setpoint={"initial": 4.0, "limits": {"min": 0, "max": 30}})
    lp = make_loop(cfg, "nickel", {"rectifier_setpoint": 0, "rectifier_enable": False})
    assert isinstance(lp, RectifierLoop)
    return lp


def rin(load: bool = True, permitted: bool = True, volts: float = 8.0) -> LoopInputs:
    return LoopInputs(good(0.0), permitted=permitted, load_present=good(load), voltage=good(volts))


def test_rectifier_soft_start_to_cd_times_area() -> None:
    lp = rectifier()
    assert lp.step(rin(), 0.0, 0.0).writes == {"rectifier_setpoint": 0.0, "rectifier_enable": True}
    assert lp.step(rin(), 10.0, 0.0).out == pytest.approx(100.0)
    out = lp.step(rin(), 20.0, 0.0)
    assert out.out == pytest.approx(200.0) and "ramping" not in out.flags
    assert lp.step(rin(), 30.0, 0.0).out == pytest.approx(200.0)
    lp.set_setpoint(2.0)
    assert lp.step(rin(), 30.25, 0.0).out == pytest.approx(100.0)     # down at once


def test_rectifier_current_limit_and_voltage_hold() -> None:
    lp = rectifier(ramp_s=0, max_current_a=150)
    out = lp.step(rin(), 0.0, 0.0)
    assert out.out == 150.0 and "current_limit" in out.flags
    lp = rectifier()
    lp.step(rin(), 0.0, 0.0)
    lp.step(rin(), 5.0, 0.0)
    held = lp.step(rin(volts=15.5), 10.0, 0.0)
    assert held.out == pytest.approx(50.0) and "voltage_limit" in held.flags


@pytest.mark.parametrize(("inputs", "why"), [
    (rin(load=False), "no load"),
    (rin(permitted=False), "interlocked"),
    (LoopInputs(good(0.0), load_present=bad()), "load_present is bad"),
])
def test_rectifier_off_without_load_or_permission(inputs: LoopInputs, why: str) -> None:
    lp = rectifier()
    lp.step(rin(), 0.0, 0.0)
    lp.step(rin(), 10.0, 0.0)
    out = lp.step(inputs, 11.0, 0.0)
    assert out.writes == {"rectifier_setpoint": 0, "rectifier_enable": False} and why in out.reason
    assert lp.step(rin(), 12.0, 0.0).out == pytest.approx(10.0)       # the ramp starts again from zero


def test_rectifier_without_area_stays_off() -> None:
    lp = rectifier(default_area_dm2=None)
    out = lp.step(rin(), 0.0, 0.0)
    assert out.safe and "area" in out.reason
    lp.set_area(10.0)
    lp.step(rin(), 1.0, 0.0)
    assert lp.step(rin(), 21.0, 0.0).out == pytest.approx(40.0)
