"""Resolve the physics parameters of every tank: process-type defaults, overlaid by the config.

A tank without a ``simulation`` section still simulates a plausible bath: the defaults per process
type below come from ../shared/domain.md (§1, §2, §8). A tank that does have a section keeps every
default it does not override (only the keys written in the YAML replace a default), so
``thermal: {heater_kw: 6}`` changes the heater and nothing else.

Sizes scale with volume: surface area and heat loss grow as ``(V / 1000 L) ** (2/3)``; heater power
of heated baths as ``V / 1000 L``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from scada.config import ProcessType, TankConfig
from scada.config.simulation import (
    LevelSim,
    PhSim,
    PlatingSim,
    ProbeSim,
    RectifierSim,
    RinseSim,
    SimulationConfig,
    ThermalSim,
)

FARADAY = 96485.33212


@dataclass(frozen=True)
class ProcessDefaults:
    """Defaults of one process type (per 1000 L where they scale)."""

    density_kg_l: float = 1.1
    cp_kj_kgk: float = 3.9
    heater_kw_per_m3: float = 0.0
    cooler_kw_per_m3: float = 0.0
    ph: dict[str, Any] | None = None
    rectifier: dict[str, Any] | None = None
    plating: dict[str, Any] | None = None
    rinse: bool = False
    load_area_dm2: float = 50.0


_NI = {"metal": "Ni", "molar_mass_g_mol": 58.693, "electrons": 2, "density_g_cm3": 8.908, "efficiency": 0.96}
_CR6 = {"metal": "Cr", "molar_mass_g_mol": 51.996, "electrons": 6, "density_g_cm3": 7.19, "efficiency": 0.18}
_CR3 = {"metal": "Cr", "molar_mass_g_mol": 51.996, "electrons": 3, "density_g_cm3": 7.19, "efficiency": 0.2}
_CU = {"metal": "Cu", "molar_mass_g_mol": 63.546, "electrons": 2, "density_g_cm3": 8.96, "efficiency": 0.97}
_ZN = {"metal": "Zn", "molar_mass_g_mol": 65.38, "electrons": 2, "density_g_cm3": 7.14, "efficiency": 0.96}
_ZNNI = {"metal": "ZnNi", "molar_mass_g_mol": 64.4, "electrons": 2, "density_g_cm3": 7.2, "efficiency": 0.6}
_RECT_12 = {"r_tank_ohm": 0.012, "e_back_v": 2.0, "ramp_s": 20.0, "ripple_pct": 4.5, "i_max_a": 1000.0,
            "v_max_v": 15.0}

PROCESS_DEFAULTS: dict[ProcessType, ProcessDefaults] = {
    ProcessType.SOAK_CLEANER: ProcessDefaults(1.05, 3.9, heater_kw_per_m3=15.0),
    ProcessType.ELECTROCLEANER: ProcessDefaults(
        1.05, 3.9, heater_kw_per_m3=15.0,
        rectifier={**_RECT_12, "r_tank_ohm": 0.01, "e_back_v": 2.0, "i_max_a": 600.0}),
    ProcessType.ACID_PICKLE: ProcessDefaults(1.1, 3.5),
    ProcessType.ACID_ACTIVATION: ProcessDefaults(1.02, 4.0),
    ProcessType.RINSE: ProcessDefaults(1.0, 4.18, rinse=True),
    ProcessType.WATTS_NICKEL: ProcessDefaults(
        1.2, 3.7, heater_kw_per_m3=12.0, ph={"initial": 4.2, "beta_mmol_l_ph": 10.0},
        rectifier=_RECT_12, plating=_NI),
    ProcessType.BRIGHT_NICKEL: ProcessDefaults(
        1.2, 3.7, heater_kw_per_m3=12.0, ph={"initial": 4.2, "beta_mmol_l_ph": 10.0},
        rectifier=_RECT_12, plating=_NI),
    ProcessType.HARD_CHROME: ProcessDefaults(
        1.25, 3.5, heater_kw_per_m3=9.0, cooler_kw_per_m3=15.0,
        rectifier={**_RECT_12, "r_tank_ohm": 0.007, "e_back_v": 2.5, "ramp_s": 30.0, "ripple_pct": 4.0,
                   "i_max_a": 2000.0},
        plating=_CR6, load_area_dm2=20.0),
    ProcessType.DECORATIVE_CHROME: ProcessDefaults(
        1.2, 3.5, heater_kw_per_m3=8.0, rectifier={**_RECT_12, "e_back_v": 2.5, "i_max_a": 1500.0},
        plating={**_CR6, "efficiency": 0.15}, load_area_dm2=30.0),
    ProcessType.TRIVALENT_CHROME: ProcessDefaults(
        1.15, 3.7, heater_kw_per_m3=6.0, ph={"initial": 3.0, "beta_mmol_l_ph": 15.0},
        rectifier={**_RECT_12, "i_max_a": 800.0}, plating=_CR3, load_area_dm2=30.0),
    ProcessType.ACID_COPPER: ProcessDefaults(
        1.2, 3.6, heater_kw_per_m3=4.0, cooler_kw_per_m3=6.0,
        rectifier={**_RECT_12, "r_tank_ohm": 0.006, "e_back_v": 0.5}, plating=_CU),
    ProcessType.ACID_ZINC: ProcessDefaults(
        1.15, 3.7, heater_kw_per_m3=4.0, ph={"initial": 5.4, "beta_mmol_l_ph": 8.0},
        rectifier={**_RECT_12, "e_back_v": 1.5}, plating=_ZN),
    ProcessType.ALKALINE_ZINC: ProcessDefaults(
        1.1, 3.8, heater_kw_per_m3=4.0, rectifier={**_RECT_12, "e_back_v": 2.5},
        plating={**_ZN, "efficiency": 0.75}),
    ProcessType.ZINC_NICKEL: ProcessDefaults(
        1.1, 3.8, heater_kw_per_m3=4.0, rectifier={**_RECT_12, "e_back_v": 2.5}, plating=_ZNNI),
    ProcessType.ANODIZE: ProcessDefaults(
        1.1, 3.6, cooler_kw_per_m3=13.0,
        rectifier={**_RECT_12, "r_tank_ohm": 0.02, "e_back_v": 10.0, "v_max_v": 24.0, "ripple_pct": 1.0}),
    ProcessType.ELECTROLESS_NICKEL: ProcessDefaults(
        1.1, 3.9, heater_kw_per_m3=25.0,
        ph={"initial": 4.8, "beta_mmol_l_ph": 30.0, "acid_mol_per_l": 1.0, "base_mol_per_l": 2.0}),
    ProcessType.OTHER: ProcessDefaults(),
}

DEFAULT_PROBE_NOISE: dict[str, ProbeSim] = {
    "temperature": ProbeSim(noise=0.05),
    "ph": ProbeSim(noise=0.01),
    "conductivity": ProbeSim(noise=0.5),
    "level": ProbeSim(noise=0.1),
    "current": ProbeSim(noise=0.0),
    "voltage": ProbeSim(noise=0.0),
    "amp_hours": ProbeSim(noise=0.0),
}
"""Noise of a probe (1 sigma, engineering units) when the tank does not configure its group."""


def _overlay(default: BaseModel, explicit: BaseModel | None) -> Any:
    """``default`` with every field that ``explicit`` set in the YAML replaced (recursively)."""
    if explicit is None:
        return default
    updates: dict[str, Any] = {}
    for name in explicit.model_fields_set:
        value = getattr(explicit, name)
        base = getattr(default, name, None)
        if isinstance(value, BaseModel) and isinstance(base, BaseModel):
            updates[name] = _overlay(base, value)
        else:
            updates[name] = value
    return type(default).model_validate({**default.model_dump(), **updates}) if updates else default


def default_simulation(tank: TankConfig) -> SimulationConfig:
    """The documented defaults for a tank of this process type and volume."""
    d = PROCESS_DEFAULTS.get(tank.process, ProcessDefaults())
    scale_area = (tank.volume_l / 1000.0) ** (2.0 / 3.0)
    scale_vol = tank.volume_l / 1000.0
    thermal = ThermalSim(
        density_kg_l=d.density_kg_l, cp_kj_kgk=d.cp_kj_kgk, ua_w_k=round(104.0 * scale_area, 3),
        heater_kw=round(d.heater_kw_per_m3 * scale_vol, 3), cooler_kw=round(d.cooler_kw_per_m3 * scale_vol, 3),
    )
    return SimulationConfig(
        thermal=thermal,
        ph=PhSim(**d.ph) if d.ph is not None else None,
        rectifier=RectifierSim(**d.rectifier) if d.rectifier is not None else None,
        plating=PlatingSim(**d.plating) if d.plating is not None else None,
        level=LevelSim(surface_m2=round(0.96 * scale_area, 4)),
        rinse=RinseSim() if d.rinse else None,
        load_area_dm2=d.load_area_dm2,
    )


def resolve_simulation(tank: TankConfig) -> SimulationConfig:
    """Process defaults overlaid with the tank's own ``simulation`` section (explicit keys win)."""
    base = default_simulation(tank)
    sim = tank.simulation
    if sim is None:
        return base
    merged: dict[str, Any] = {}
    for name in SimulationConfig.model_fields:
        b = getattr(base, name)
        if name not in sim.model_fields_set:
            merged[name] = b
            continue
        v = getattr(sim, name)
        if isinstance(v, BaseModel) and isinstance(b, BaseModel):
            merged[name] = _overlay(b, v)
        else:
            merged[name] = v
    return SimulationConfig.model_validate(
        {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in merged.items()}
    )


def faraday_k_um(molar_mass_g_mol: float, electrons: int, density_g_cm3: float) -> float:
    """µm deposited per (A/dm²·min) at 100 % efficiency: ``k = 60·M·1e4 / (n·F·ρ·100)``."""
    return 60.0 * molar_mass_g_mol * 1e4 / (electrons * FARADAY * density_g_cm3 * 100.0)


def probe_sim(sim: SimulationConfig, group: str) -> ProbeSim:
    return sim.probe_noise.get(group) or DEFAULT_PROBE_NOISE.get(group) or ProbeSim(noise=0.0)


__all__ = [
    "DEFAULT_PROBE_NOISE", "FARADAY", "PROCESS_DEFAULTS", "ProcessDefaults", "ThermalSim",
    "default_simulation", "faraday_k_um", "probe_sim", "resolve_simulation",
]
