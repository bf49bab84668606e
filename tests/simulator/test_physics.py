"""Physics, codec, parameters and the PLC program without sockets or wall clock."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scada.config import ByteOrder, ConfigError, DataType, PlantConfig, WordOrder, parse_config
from simulator.codec import Signal, eng_to_raw, pack, unpack
from simulator.faults import FaultError, parse_scenario
from simulator.params import faraday_k_um, resolve_simulation
from simulator.physics import Actuators, TankModel, TankParams
from simulator.plant import PlantSimulator

# ------------------------------------------------------------------ helpers


def nickel_model(**over: Any) -> TankModel:
    from scada.config.simulation import SimulationConfig

    sim = SimulationConfig.model_validate({
        "thermal": {"heater_kw": 12, "ua_w_k": 104, **over.get("thermal", {})},
        "ph": {"initial": 4.2, **over.get("ph", {})},
        "rectifier": {"i_max_a": 1000, "ramp_s": 20, **over.get("rectifier", {})},
        "plating": {}, "level": over.get("level", {}),
    })
    return TankModel(TankParams.from_config(sim, 1000.0, 20.0), 20.0)


def run(m: TankModel, a: Actuators, seconds: float, dt: float = 0.1) -> None:
    for _ in range(round(seconds / dt)):
        m.step(a, dt)


# ------------------------------------------------------------------ thermal


def test_heat_up_rate_matches_p_over_mc() -> None:
    m = nickel_model()
    c = 1000 * 1.2 * 3700.0
    run(m, Actuators(heater=1.0), 600)
    rate = (m.s.temp_c - 20.0) / 600
    assert rate == pytest.approx(12000 / c, rel=0.02)


def test_heater_duty_integrates_time_proportioning() -> None:
    on, half = nickel_model(), nickel_model()
    run(on, Actuators(heater=1.0), 600)
    for _ in range(60):  # 5 s on / 5 s off
        run(half, Actuators(heater=1.0), 5)
        run(half, Actuators(heater=0.0), 5)
    assert (half.s.temp_c - 20) == pytest.approx((on.s.temp_c - 20) / 2, rel=0.02)


def test_heater_off_decays_toward_ambient_with_tau_c_over_ua() -> None:
    m = nickel_model(thermal={"initial_c": 60})
    tau = 1000 * 1.2 * 3700.0 / 104
    run(m, Actuators(), 3600, dt=1.0)
    expected = 20 + 40 * math.exp(-3600 / tau)
    assert m.s.temp_c == pytest.approx(expected, abs=0.1)
    assert 20 < m.s.temp_c < 60


def test_cooler_cannot_cool_below_water_temperature() -> None:
    m = nickel_model(thermal={"initial_c": 16, "cooler_kw": 50, "ua_w_k": 0})
    run(m, Actuators(cooler=1.0), 3600, dt=1.0)
    assert m.s.temp_c >= 14.9


# ------------------------------------------------------------------ pH


def test_acid_dose_lowers_ph_through_mixing_lag() -> None:
    m = nickel_model(ph={"tau_mix_s": 120})
    run(m, Actuators(acid_pump=1.0), 5)
    just_after = m.s.ph
    run(m, Actuators(), 1200)
    dosed_mol = 0.5 / 60 * 5 * 3.7
    assert 4.2 - just_after < 0.3 * (4.2 - m.s.ph)  # most of the effect comes later (mixing)
    assert 4.2 - m.s.ph == pytest.approx(dosed_mol / (1000 * 0.010), rel=0.02)


def test_nickel_ph_rises_with_amp_hours() -> None:
    m = nickel_model()
    m.put_load(100, 0)
    run(m, Actuators(rectifier_enable=True, rectifier_setpoint_a=500), 3600, dt=0.5)
    # (eta_a - eta_c) * I / F * t / (V * beta) ~ 0.075 pH/h at 500 A (domain.md §2.5)
    assert m.s.ph - 4.2 == pytest.approx(0.04 * 500 * 3600 / 96485.33 / 10, rel=0.03)


# ------------------------------------------------------------------ rectifier and Faraday


def test_no_current_without_load_or_enable() -> None:
    m = nickel_model()
    run(m, Actuators(rectifier_enable=True, rectifier_setpoint_a=300), 60)
    assert m.s.current_a == 0 and m.s.amp_hours == 0
    assert m.s.voltage_v == pytest.approx(15.0)  # open circuit: compliance voltage
    m.put_load(50, 0)
    run(m, Actuators(rectifier_enable=False, rectifier_setpoint_a=300), 60)
    assert m.s.current_a == 0 and m.s.voltage_v == 0


def test_soft_start_ramp_then_setpoint_and_ohmic_voltage() -> None:
    m = nickel_model()
    m.put_load(50, 0)
    a = Actuators(rectifier_enable=True, rectifier_setpoint_a=300)
    run(m, a, 10)
    assert m.s.current_a == pytest.approx(150, abs=2)  # half-way up a 20 s ramp
    run(m, a, 15)
    assert m.s.current_a == pytest.approx(300)
    assert m.s.voltage_v == pytest.approx(2.0 + 300 * 0.012)


def test_voltage_limit_clamps_current() -> None:
    m = nickel_model(rectifier={"v_max_v": 8, "ramp_s": 0})
    m.put_load(50, 0)
    run(m, Actuators(rectifier_enable=True, rectifier_setpoint_a=900), 1)
    assert m.s.voltage_v == pytest.approx(8)
    assert m.s.current_a == pytest.approx((8 - 2) / 0.012)


def test_faraday_thickness_and_amp_hours() -> None:
    assert faraday_k_um(58.693, 2, 8.908) == pytest.approx(0.2049, abs=2e-4)
    assert faraday_k_um(51.996, 6, 7.19) == pytest.approx(0.0750, abs=2e-4)
    m = nickel_model(rectifier={"ramp_s": 0})
    m.put_load(50, 0)
    run(m, Actuators(rectifier_enable=True, rectifier_setpoint_a=200), 600)
    assert m.s.amp_hours == pytest.approx(200 * 600 / 3600, rel=1e-3)
    assert m.s.load is not None
    assert m.s.load.thickness_um == pytest.approx(0.2049 * 0.96 * 4.0 * 10, rel=0.01)


def test_rectifier_trip_stops_current() -> None:
    m = nickel_model(rectifier={"ramp_s": 0})
    m.put_load(50, 0)
    m.s.rectifier_tripped = True
    run(m, Actuators(rectifier_enable=True, rectifier_setpoint_a=200), 5)
    assert m.s.current_a == 0 and m.switch("rectifier_fault")


# ------------------------------------------------------------------ level, rinse, fan, e-stop


def test_level_evaporation_makeup_dragout_and_switches() -> None:
    m = nickel_model(thermal={"initial_c": 60}, level={"initial_fraction": 0.752})
    before = m.s.level_l
    run(m, Actuators(), 3600, dt=1.0)
    assert m.s.level_l < before  # evaporation at 60 degC
    m.put_load(50, 0)
    lvl = m.s.level_l
    m.remove_load()
    assert m.s.level_l == pytest.approx(lvl - 0.2)
    assert m.switch("level_low")
    run(m, Actuators(makeup_valve=1.0), 60)
    assert not m.switch("level_low")


def test_exhaust_fan_follows_command_after_spin_up_unless_failed() -> None:
    m = nickel_model()
    run(m, Actuators(exhaust_fan=True), 1)
    assert not m.s.fan_running
    run(m, Actuators(exhaust_fan=True), 3)
    assert m.switch("exhaust_fan_running")
    m.s.fan_failed = True
    run(m, Actuators(exhaust_fan=True), 1)
    assert not m.s.fan_running


def test_estop_drops_everything_but_a_welded_heater() -> None:
    m = nickel_model()
    run(m, Actuators(heater=1.0), 1, dt=1.0)
    t = m.s.temp_c
    m.step(Actuators(heater=1.0), 60, estop=True)
    assert m.s.temp_c <= t
    m.step(Actuators(heater_welded=True), 60, estop=True)
    assert m.s.temp_c > t


def test_exposed_heater_trips_sheath_thermostat() -> None:
    m = nickel_model(level={"initial_fraction": 0.5})
    run(m, Actuators(heater=1.0), 30)
    assert m.switch("heater_overtemp")


# ------------------------------------------------------------------ codec


@pytest.mark.parametrize("dtype", [DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
                                   DataType.FLOAT32, DataType.FLOAT64])
@pytest.mark.parametrize("wo", list(WordOrder))
@pytest.mark.parametrize("bo", list(ByteOrder))
def test_pack_unpack_round_trip(dtype: DataType, wo: WordOrder, bo: ByteOrder) -> None:
    v = 1234.0
    assert unpack(pack(v, dtype, wo, bo), dtype, wo, bo) == pytest.approx(v)


def test_word_and_byte_order_layouts() -> None:
    assert pack(3.5, DataType.FLOAT32, WordOrder.BIG, ByteOrder.BIG) == [16480, 0]
    assert pack(3.5, DataType.FLOAT32, WordOrder.LITTLE, ByteOrder.BIG) == [0, 16480]
    assert pack(0x01020304, DataType.UINT32, WordOrder.BIG, ByteOrder.LITTLE) == [0x0201, 0x0403]
    assert pack(-5, DataType.UINT16, WordOrder.BIG, ByteOrder.BIG) == [0]  # saturates
    assert pack(40000, DataType.INT16, WordOrder.BIG, ByteOrder.BIG) == [32767]


def test_ma_4_20_failure_counts(line: PlantConfig) -> None:
    tag = line.tag("t.ni.temp.a")  # 4000..20000 counts = 4..20 mA
    assert eng_to_raw(tag, 50.0) == pytest.approx(12000)
    assert eng_to_raw(tag, 0, Signal.OPEN) == pytest.approx(3500)
    assert eng_to_raw(tag, 0, Signal.SHORT) == pytest.approx(21500)
    assert eng_to_raw(tag, -50.0) == pytest.approx(3800)  # NE 43 under-range saturation
    assert eng_to_raw(tag, 500.0) == pytest.approx(20500)


# ------------------------------------------------------------------ parameters and config


def test_defaults_per_process_type_when_no_simulation_section(line_data: dict[str, Any]) -> None:
    line_data["tanks"][0].pop("simulation")
    plant = parse_config(line_data)
    sim = resolve_simulation(plant.tank("ni"))
    assert sim.ph is not None and sim.ph.initial == 4.2
    assert sim.plating is not None and sim.plating.metal == "Ni"
    assert sim.thermal.heater_kw == pytest.approx(1.2)  # 12 kW per m3
    rinse = resolve_simulation(plant.tank("rinse"))
    assert rinse.rinse is not None and rinse.rectifier is None and rinse.thermal.heater_kw == 0


def test_explicit_keys_override_only_themselves(line: PlantConfig) -> None:
    sim = resolve_simulation(line.tank("ni"))
    assert sim.thermal.heater_kw == 3  # from the YAML
    assert sim.thermal.density_kg_l == 1.2  # Watts default kept
    assert sim.rectifier is not None and sim.rectifier.ripple_pct == 4.5 and sim.rectifier.i_max_a == 100


@pytest.mark.parametrize(("path", "value", "key"), [
    (("volume_l",), -5, "tanks[0].volume_l"),
    (("simulation", "thermal", "cp_kj_kgk"), 0, "tanks[0].simulation.thermal.cp_kj_kgk"),
    (("simulation", "thermal", "density_kg_l"), -1.0, "tanks[0].simulation.thermal.density_kg_l"),
    (("simulation", "ph", "tau_mix_s"), 0, "tanks[0].simulation.ph.tau_mix_s"),
    (("simulation", "level"), {"low_fraction": 0.5, "low_low_fraction": 0.7}, "tanks[0].simulation.level"),
])
def test_impossible_parameters_rejected_naming_the_key(line_data: dict[str, Any], path: tuple[str, ...],
                                                        value: Any, key: str) -> None:
    node = line_data["tanks"][0]
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as e:
        parse_config(line_data)
    assert any(i.path == key for i in e.value.issues), [i.path for i in e.value.issues]


# ------------------------------------------------------------------ the PLC program


def test_outputs_drive_physics_and_inputs_encode(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=100, seed=3, watchdog=False)
    sim.write_tag("t.ni.heater", True)
    sim.run_for(600)
    assert sim.truth()["tanks"]["ni"]["temperature_c"] > 23.5  # 3 kW into 100 L: ~4 K in 10 min
    assert sim.read_tag("t.ni.temp.a") == pytest.approx(sim.truth()["tanks"]["ni"]["temperature_c"], abs=0.3)
    with pytest.raises(PermissionError):
        sim.write_tag("t.ni.temp.a", 1.0)


def test_watchdog_trips_on_real_time_and_clears_on_heartbeat(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=1000, seed=1)
    sim.write_tag("t.heartbeat", 1)
    sim.write_tag("t.ni.heater", True)
    sim.advance(0.1)  # the PLC sees the heartbeat change in this scan
    sim.advance(0.8)
    assert not sim.watchdog_tripped and sim.truth()["tanks"]["ni"]["outputs"]["heater"] is True
    sim.advance(0.3)  # 1.1 s real without a heartbeat change (1100 s simulated: irrelevant)
    assert sim.watchdog_tripped and sim.read_tag("t.wd") is True
    assert sim.read_tag("t.ni.heater") is False
    sim.write_tag("t.ni.heater", True)  # a write while tripped is forced off again
    sim.advance(0.1)
    assert sim.read_tag("t.ni.heater") is False
    sim.write_tag("t.heartbeat", 2)
    sim.advance(0.1)
    assert not sim.watchdog_tripped and sim.read_tag("t.ni.heater") is False  # stays off until rewritten


@pytest.mark.parametrize(("fault", "check"), [
    ({"kind": "open_circuit", "tag": "t.ni.temp.a"}, lambda s: s.images["plc"].input[0] == 3500),
    ({"kind": "short", "tag": "t.ni.temp.a"}, lambda s: s.images["plc"].input[0] == 21500),
    ({"kind": "open_circuit", "tag": "t.ni.temp.b"}, lambda s: s.images["plc"].input[1] == 32768),
    ({"kind": "offset", "tag": "t.ni.ph.b", "amplitude": 0.5},
     lambda s: s.read_tag("t.ni.ph.b") - s.read_tag("t.ni.ph.a") == pytest.approx(0.5, abs=0.08)),
    ({"kind": "drift", "tag": "t.ni.ph.a", "rate_per_h": 3.6},
     lambda s: s.read_tag("t.ni.ph.a") - s.truth()["tanks"]["ni"]["ph"] == pytest.approx(0.1, abs=0.06)),
])
def test_probe_faults_in_the_image(line: PlantConfig, fault: dict[str, Any], check: Any) -> None:
    sim = PlantSimulator(line, speed=10, seed=2, watchdog=False)
    sim.inject(fault)
    sim.run_for(100)
    assert check(sim)


def test_stuck_probe_holds_while_bath_heats(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=100, seed=2, watchdog=False)
    sim.inject({"kind": "stuck", "tag": "t.ni.temp.b"})
    sim.write_tag("t.ni.heater", True)
    first = sim.read_tag("t.ni.temp.b")
    sim.run_for(900)
    assert sim.read_tag("t.ni.temp.b") == first
    assert sim.read_tag("t.ni.temp.a") > first + 3


def test_fault_validation_names_the_problem(line: PlantConfig) -> None:
    sim = PlantSimulator(line, watchdog=False)
    with pytest.raises(FaultError, match="tag"):
        sim.inject({"kind": "stuck", "tag": "t.nope"})
    with pytest.raises(FaultError, match="tank"):
        sim.inject({"kind": "heater_welded", "tank": "zinc"})
    with pytest.raises(FaultError, match="kind"):
        sim.inject({"kind": "gremlins"})
    with pytest.raises(FaultError, match="needs 'tag'"):
        sim.inject({"kind": "drift"})


def test_fault_duration_expires_on_sim_clock(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=100, watchdog=False)
    sim.inject({"kind": "rectifier_trip", "tank": "ni", "duration_s": 50})
    sim.run_for(30)
    assert sim.read_tag("t.ni.rect_fault") is True
    sim.run_for(40)
    assert sim.read_tag("t.ni.rect_fault") is False and not sim.faults


def test_scenario_timeline(line: PlantConfig) -> None:
    sc = parse_scenario({"name": "plate", "events": [
        {"at_s": 100, "do": "unload", "tank": "ni"},
        {"at_s": 10, "do": "load", "tank": "ni", "area_dm2": 20},
        {"at_s": 20, "do": "inject", "fault": {"kind": "offset", "tag": "t.ni.ph.b", "amplitude": 1, "id": "d"}},
        {"at_s": 50, "do": "clear", "fault_id": "d"},
        {"at_s": 60, "do": "estop"},
    ]})
    sim = PlantSimulator(line, speed=10, watchdog=False)
    sim.load_scenario(sc)
    sim.run_for(15)
    assert sim.truth()["tanks"]["ni"]["load"]["area_dm2"] == 20
    sim.run_for(10)
    assert [f["id"] for f in sim.active_faults()] == ["d"]
    sim.run_for(40)
    assert not sim.faults and sim.estop and sim.read_tag("t.estop") is True
    sim.run_for(40)
    assert sim.truth()["tanks"]["ni"]["load"] is None


def test_scenario_errors_are_refused_up_front(line: PlantConfig) -> None:
    sim = PlantSimulator(line, watchdog=False)
    with pytest.raises(FaultError, match="at_s"):
        parse_scenario([{"at_s": -1, "do": "estop"}])
    with pytest.raises(FaultError, match="tank"):
        sim.load_scenario(parse_scenario([{"at_s": 1, "do": "load", "tank": "zinc"}]))


def test_same_seed_same_readings(line: PlantConfig) -> None:
    a, b = (PlantSimulator(line, speed=10, seed=7, watchdog=False) for _ in range(2))
    for s in (a, b):
        s.run_for(60)
    assert a.values == b.values


def test_probe_lag_follows_first_order(line_data: dict[str, Any]) -> None:
    line_data["tanks"][0]["simulation"]["probe_noise"] = {"temperature": {"noise": 0, "lag_s": 60}}
    sim = PlantSimulator(parse_config(line_data), speed=10, watchdog=False)
    sim.tanks["ni"].s.temp_c = 30.0  # a 10 K step of the bath
    sim.run_for(60, scan_s=0.1)
    seen = sim.values["t.ni.temp.b"]
    true = sim.truth()["tanks"]["ni"]["temperature_c"]
    assert seen == pytest.approx(20 + (true - 20) * (1 - math.exp(-1)), abs=0.3)


def test_watchdog_also_forces_opcua_outputs_off(line: PlantConfig) -> None:
    sim = PlantSimulator(line, speed=10)
    sim.write_tag("t.heartbeat", 1)
    sim.write_tag("t.rinse.valve", True)
    sim.advance(0.1)
    assert sim.truth()["tanks"]["rinse"]["outputs"]["makeup_valve"] is True
    sim.advance(1.2)
    assert sim.watchdog_tripped and sim.read_tag("t.rinse.valve") is False
