"""Tank physics: pure functions of (parameters, state, actuators, dt). No I/O, no clock, no randomness.

One :class:`TankModel` per tank holds the resolved parameters (:class:`TankParams`) and the state
(:class:`TankState`); :meth:`TankModel.step` integrates one fixed step ``dt`` with the actuators held
constant over it (the PLC samples the coils once per scan, so a time-proportioned heater coil is
integrated as on/off over many steps: the duty emerges from the coil history).

Models (numbers and sources in ../shared/domain.md §2):

- heat: ``C·dT/dt = P_heater·u_h − P_cooler·u_c·f(T) + P_joule − UA·(T − T_amb) − P_makeup`` with
  ``C = V·ρ·c_p`` (V the configured bath volume), ``P_joule = max(V_cell − 1.5 V, 0)·I``, the cooling
  coil fading out as the bath approaches the cooling-water temperature, make-up water entering at
  ambient;
- pH: a buffered bath (``β`` mol/(L·pH)); acid/base doses enter a mixing pool that reaches the
  bulk through a first-order lag ``τ_mix``; plating drifts pH up by ``(η_a − η_c)·I/F`` mol/s OH⁻;
- rectifier: output only when enabled AND a load is present AND not tripped; soft-start ramp
  (0 → setpoint in ``ramp_s``; falls are immediate); ``V = E_back + I·R`` clamped by the voltage
  limit (constant-voltage mode) and ``I`` by the current limit; open circuit shows the compliance
  voltage; amp-hour totaliser;
- deposit: Faraday ``δ += k·η·j·dt/60`` µm on the load in the tank;
- level: evaporation (still-tank correlation), make-up valve, dosing volume, drag-out per load;
- rinse conductivity: step per load (drag-in), exponential wash-out by the rinse flow;
- exhaust fan feedback after a spin-up, heater sheath over-temperature when the element is exposed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from scada.config.simulation import SimulationConfig
from simulator.params import FARADAY, faraday_k_um

E_THERMONEUTRAL_V = 1.5
"""Cell voltage below which electrolysis absorbs rather than releases heat (aqueous plating)."""
CP_WATER_J_KGK = 4186.0
FAN_SPINUP_S = 3.0
SHEATH_OVERTEMP_S = 20.0
"""An exposed heater element trips its sheath thermostat after this long."""


@dataclass(frozen=True, slots=True)
class TankParams:
    """Resolved physics parameters in SI-ish units the step uses directly."""

    volume_l: float
    heat_capacity_j_k: float
    ua_w_k: float
    heater_w: float
    cooler_w: float
    cooling_water_c: float
    initial_c: float
    has_ph: bool
    ph_initial: float
    beta_mol_l_ph: float
    eta_anode: float
    eta_cathode: float
    acid_mol_l: float
    base_mol_l: float
    pump_l_s: float
    tau_mix_s: float
    has_rectifier: bool
    r_ohm: float
    e_back_v: float
    ramp_s: float
    ripple_pct: float
    i_max_a: float
    v_max_v: float
    has_plating: bool
    k_um: float
    """µm per (A/dm²·min) at 100 % efficiency (Faraday)."""
    efficiency: float
    surface_m2: float
    level_initial: float
    low_fraction: float
    low_low_fraction: float
    high_fraction: float
    makeup_l_s: float
    dragout_l: float
    has_rinse: bool
    rinse_flow_l_s: float
    rinse_feed_us: float
    rinse_dragin_us: float
    rinse_initial_us: float
    load_area_dm2: float

    @classmethod
    def from_config(cls, sim: SimulationConfig, volume_l: float, ambient_c: float) -> TankParams:
        th, lv = sim.thermal, sim.level
        ph, rect, pl, ri = sim.ph, sim.rectifier, sim.plating, sim.rinse
        return cls(
            volume_l=volume_l,
            heat_capacity_j_k=volume_l * th.density_kg_l * th.cp_kj_kgk * 1000.0,
            ua_w_k=th.ua_w_k,
            heater_w=th.heater_kw * 1000.0,
            cooler_w=th.cooler_kw * 1000.0,
            cooling_water_c=th.cooling_water_c,
            initial_c=ambient_c if th.initial_c is None else th.initial_c,
            has_ph=ph is not None,
            ph_initial=ph.initial if ph else 7.0,
            beta_mol_l_ph=(ph.beta_mmol_l_ph if ph else 10.0) / 1000.0,
            eta_anode=ph.eta_anode if ph else 1.0,
            eta_cathode=ph.eta_cathode if ph else 1.0,
            acid_mol_l=ph.acid_mol_per_l if ph else 0.0,
            base_mol_l=ph.base_mol_per_l if ph else 0.0,
            pump_l_s=(ph.pump_l_min if ph else 0.5) / 60.0,
            tau_mix_s=ph.tau_mix_s if ph else 180.0,
            has_rectifier=rect is not None,
            r_ohm=rect.r_tank_ohm if rect else 1.0,
            e_back_v=rect.e_back_v if rect else 0.0,
            ramp_s=rect.ramp_s if rect else 0.0,
            ripple_pct=rect.ripple_pct if rect else 0.0,
            i_max_a=rect.i_max_a if rect else 0.0,
            v_max_v=rect.v_max_v if rect else 0.0,
            has_plating=pl is not None,
            k_um=faraday_k_um(pl.molar_mass_g_mol, pl.electrons, pl.density_g_cm3) if pl else 0.0,
            efficiency=pl.efficiency if pl else 0.0,
            surface_m2=lv.surface_m2,
            level_initial=lv.initial_fraction,
            low_fraction=lv.low_fraction,
            low_low_fraction=lv.low_low_fraction,
            high_fraction=lv.high_fraction,
            makeup_l_s=lv.makeup_l_min / 60.0,
            dragout_l=lv.dragout_l_per_load,
            has_rinse=ri is not None,
            rinse_flow_l_s=(ri.flow_l_min if ri else 0.0) / 60.0,
            rinse_feed_us=ri.feed_us_cm if ri else 0.0,
            rinse_dragin_us=ri.dragin_us_cm_per_load if ri else 0.0,
            rinse_initial_us=(ri.initial_us_cm if ri and ri.initial_us_cm is not None
                              else (ri.feed_us_cm if ri else 0.0)),
            load_area_dm2=sim.load_area_dm2 or 50.0,
        )


@dataclass(slots=True)
class Actuators:
    """What physically acts on the tank during one step (after PLC gating and actuator faults).

    Duties are 0..1 (a coil is 0 or 1; an analog output may be in between).
    """

    heater: float = 0.0
    cooler: float = 0.0
    acid_pump: float = 0.0
    base_pump: float = 0.0
    additive_pump: float = 0.0
    makeup_valve: float = 0.0
    rectifier_enable: bool = False
    rectifier_setpoint_a: float = 0.0
    exhaust_fan: bool = False
    heater_welded: bool = False
    """The heater contactor is welded shut: the element is on whatever anyone commands."""


@dataclass(slots=True)
class Load:
    """A rack/barrel of parts in the tank."""

    area_dm2: float
    entered_s: float
    thickness_um: float = 0.0
    amp_hours: float = 0.0


@dataclass(slots=True)
class TankState:
    temp_c: float
    ph: float
    level_l: float
    conductivity_us: float
    acid_pool_mol: float = 0.0
    base_pool_mol: float = 0.0
    current_a: float = 0.0
    voltage_v: float = 0.0
    ramp_ref_a: float = 0.0
    amp_hours: float = 0.0
    rectifier_tripped: bool = False
    fan_running: bool = False
    fan_timer_s: float = 0.0
    fan_failed: bool = False
    sheath_timer_s: float = 0.0
    heater_overtemp: bool = False
    load: Load | None = None
    last_load: Load | None = None
    loads_done: int = 0
    acid_dosed_l: float = 0.0
    base_dosed_l: float = 0.0
    additive_dosed_l: float = 0.0
    energy_heater_kwh: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def evaporation_l_m2_h(temp_c: float) -> float:
    """Still open tank: ``E = 40.7·exp(0.03236·T_F − 7.2)`` L/(m²·h) (domain.md §2.4)."""
    t_f = temp_c * 9.0 / 5.0 + 32.0
    return 40.7 * math.exp(0.03236 * t_f - 7.2)


class TankModel:
    """One tank: parameters + state, and the fixed-step integrator."""

    __slots__ = ("p", "s", "ambient_c")

    def __init__(self, params: TankParams, ambient_c: float) -> None:
        self.p = params
        self.ambient_c = ambient_c
        self.s = TankState(
            temp_c=params.initial_c,
            ph=params.ph_initial,
            level_l=params.level_initial * params.volume_l,
            conductivity_us=params.rinse_initial_us,
        )

    # ------------------------------------------------------------ events
    def put_load(self, area_dm2: float, now_s: float) -> None:
        """A load enters the tank: plating starts (if powered); a rinse sees the drag-in."""
        if area_dm2 <= 0:
            raise ValueError(f"load area must be > 0 dm2, got {area_dm2}")
        s, p = self.s, self.p
        s.load = Load(area_dm2=area_dm2, entered_s=now_s)
        if p.has_rinse:
            s.conductivity_us += p.rinse_dragin_us

    def remove_load(self) -> Load | None:
        """The load leaves: it drags out solution; the rectifier sees an open circuit."""
        s = self.s
        load = s.load
        if load is not None:
            s.level_l = max(0.0, s.level_l - self.p.dragout_l)
            s.last_load = load
            s.loads_done += 1
        s.load = None
        return load

    @property
    def level_fraction(self) -> float:
        return self.s.level_l / self.p.volume_l

    # ------------------------------------------------------------ integrator
    def step(self, a: Actuators, dt: float, estop: bool = False) -> None:
        """Advance ``dt`` seconds with the actuators ``a`` held constant."""
        p, s = self.p, self.s
        if estop:  # the hard-wired safety relay drops every contactor (a welded contact excepted)
            a = Actuators(heater_welded=a.heater_welded)
        heater = 1.0 if a.heater_welded else min(max(a.heater, 0.0), 1.0)
        # ---- rectifier
        if p.has_rectifier:
            powered = a.rectifier_enable and s.load is not None and not s.rectifier_tripped
            target = min(max(a.rectifier_setpoint_a, 0.0), p.i_max_a)
            if powered:
                if s.ramp_ref_a < target:
                    rate = target / p.ramp_s if p.ramp_s > 0 else math.inf
                    s.ramp_ref_a = min(target, s.ramp_ref_a + rate * dt)
                else:
                    s.ramp_ref_a = target
                i = s.ramp_ref_a
                v = p.e_back_v + i * p.r_ohm
                if v > p.v_max_v:  # voltage compliance: constant-voltage mode
                    i = max((p.v_max_v - p.e_back_v) / p.r_ohm, 0.0)
                    v = p.v_max_v
                s.current_a, s.voltage_v = i, (v if i > 0 or target > 0 else 0.0)
            else:
                s.ramp_ref_a = 0.0
                s.current_a = 0.0
                open_circuit = a.rectifier_enable and not s.rectifier_tripped and target > 0
                s.voltage_v = p.v_max_v if open_circuit else 0.0
            s.amp_hours += s.current_a * dt / 3600.0
            if s.load is not None and s.current_a > 0:
                s.load.amp_hours += s.current_a * dt / 3600.0
                if p.has_plating:
                    j = s.current_a / s.load.area_dm2
                    s.load.thickness_um += p.k_um * p.efficiency * j * dt / 60.0
        # ---- level (before heat: make-up water cools the bath)
        makeup_l_s = p.makeup_l_s * min(a.makeup_valve, 1.0)
        acid_l_s = p.pump_l_s * min(a.acid_pump, 1.0) if p.has_ph else 0.0
        base_l_s = p.pump_l_s * min(a.base_pump, 1.0) if p.has_ph else 0.0
        additive_l_s = 0.005 * min(a.additive_pump, 1.0)
        evap_l_s = evaporation_l_m2_h(s.temp_c) * p.surface_m2 / 3600.0
        s.level_l = min(max(s.level_l + (makeup_l_s + acid_l_s + base_l_s + additive_l_s - evap_l_s) * dt, 0.0),
                        1.2 * p.volume_l)
        s.acid_dosed_l += acid_l_s * dt
        s.base_dosed_l += base_l_s * dt
        s.additive_dosed_l += additive_l_s * dt
        # ---- heat
        p_heat = p.heater_w * heater
        p_cool = 0.0
        if p.cooler_w > 0 and a.cooler > 0:
            p_cool = p.cooler_w * min(a.cooler, 1.0) * min(max((s.temp_c - p.cooling_water_c) / 10.0, 0.0), 1.0)
        p_joule = max(s.voltage_v - E_THERMONEUTRAL_V, 0.0) * s.current_a
        p_loss = p.ua_w_k * (s.temp_c - self.ambient_c)
        p_makeup = makeup_l_s * CP_WATER_J_KGK * (s.temp_c - self.ambient_c)
        s.temp_c += (p_heat - p_cool + p_joule - p_loss - p_makeup) * dt / p.heat_capacity_j_k
        s.energy_heater_kwh += p_heat * dt / 3.6e6
        # ---- pH: doses through the mixing pool, drift from plating
        if p.has_ph:
            decay = math.exp(-dt / p.tau_mix_s)
            acid_mixed = s.acid_pool_mol * (1.0 - decay)
            base_mixed = s.base_pool_mol * (1.0 - decay)
            s.acid_pool_mol = s.acid_pool_mol * decay + acid_l_s * p.acid_mol_l * dt
            s.base_pool_mol = s.base_pool_mol * decay + base_l_s * p.base_mol_l * dt
            oh_mol = (p.eta_anode - p.eta_cathode) * s.current_a / FARADAY * dt
            s.ph = min(max(s.ph + (oh_mol - acid_mixed + base_mixed) / (p.volume_l * p.beta_mol_l_ph), 0.0), 14.0)
        # ---- rinse conductivity: wash-out by the rinse flow
        if p.has_rinse:
            s.conductivity_us = p.rinse_feed_us + (s.conductivity_us - p.rinse_feed_us) * math.exp(
                -p.rinse_flow_l_s * dt / p.volume_l)
        # ---- exhaust fan
        if a.exhaust_fan and not s.fan_failed:
            s.fan_timer_s = min(s.fan_timer_s + dt, FAN_SPINUP_S)
        else:
            s.fan_timer_s = 0.0
        s.fan_running = s.fan_timer_s >= FAN_SPINUP_S
        # ---- heater sheath thermostat: element above the liquid
        exposed = self.level_fraction < p.low_fraction
        if heater > 0 and (exposed or s.temp_c > 95.0):
            s.sheath_timer_s = min(s.sheath_timer_s + dt, SHEATH_OVERTEMP_S * 4)
        else:
            s.sheath_timer_s = max(s.sheath_timer_s - dt, 0.0)
        if s.sheath_timer_s >= SHEATH_OVERTEMP_S:
            s.heater_overtemp = True
        elif s.sheath_timer_s <= 0.0:
            s.heater_overtemp = False

    # ------------------------------------------------------------ switches
    def switch(self, role: str) -> bool:
        """The state of a digital input role (``level_low``, ``load_present``...)."""
        f = self.level_fraction
        s, p = self.s, self.p
        if role == "level_low":
            return f < p.low_fraction
        if role == "level_low_low":
            return f < p.low_low_fraction
        if role == "level_high":
            return f >= p.high_fraction
        if role == "exhaust_fan_running":
            return s.fan_running
        if role == "rectifier_fault":
            return s.rectifier_tripped
        if role == "load_present":
            return s.load is not None
        if role == "heater_overtemp":
            return s.heater_overtemp
        return False

    def quantity(self, group: str) -> float:
        """The true value of a sensor group (``temperature``, ``ph``...) in engineering units."""
        s = self.s
        if group == "temperature":
            return s.temp_c
        if group == "ph":
            return s.ph
        if group == "current":
            return s.current_a
        if group == "voltage":
            return s.voltage_v
        if group == "amp_hours":
            return s.amp_hours
        if group == "conductivity":
            return s.conductivity_us
        if group == "level":
            return 100.0 * self.level_fraction
        if group == "thickness":
            return s.load.thickness_um if s.load else 0.0
        return 0.0
