"""Per-tank physics parameters for the plant simulator (simulator/ reads them; the server ignores them).

Defaults come from ../shared/domain.md (§1.3, §2, §8) per process type, so a config without a
``simulation`` section still simulates a plausible bath. Impossible values (negative volume, zero
heat capacity) are config errors naming the key.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from scada.config.base import NonNegFloat, PositiveFloat, StrictModel


class ThermalSim(StrictModel):
    density_kg_l: PositiveFloat = 1.2
    cp_kj_kgk: PositiveFloat = 3.7
    ua_w_k: NonNegFloat = 104.0
    """Linearised heat loss to ambient (W/K), surface + walls."""
    heater_kw: NonNegFloat = 12.0
    cooler_kw: NonNegFloat = 0.0
    initial_c: Annotated[float, Field(ge=-20, le=120)] | None = None
    """Starting bath temperature (ambient when unset)."""
    cooling_water_c: float = 15.0
    """Cooling-coil water temperature: the coil removes nothing below it."""


class PhSim(StrictModel):
    initial: Annotated[float, Field(ge=0, le=14)] = 4.2
    beta_mmol_l_ph: PositiveFloat = 10.0
    eta_anode: Annotated[float, Field(gt=0, le=1.2)] = 1.0
    eta_cathode: Annotated[float, Field(gt=0, le=1.0)] = 0.96
    acid_mol_per_l: PositiveFloat = 3.7
    base_mol_per_l: PositiveFloat = 1.0
    pump_l_min: PositiveFloat = 0.5
    tau_mix_s: PositiveFloat = 180.0


class RectifierSim(StrictModel):
    r_tank_ohm: PositiveFloat = 0.012
    e_back_v: NonNegFloat = 2.0
    ramp_s: NonNegFloat = 20.0
    ripple_pct: NonNegFloat = 4.5
    i_max_a: PositiveFloat = 1000.0
    v_max_v: PositiveFloat = 15.0


class PlatingSim(StrictModel):
    """Faraday's law: ``M`` g/mol, ``n`` electrons, density g/cm3, cathode efficiency."""

    metal: str = "Ni"
    molar_mass_g_mol: PositiveFloat = 58.693
    electrons: Annotated[int, Field(ge=1, le=8)] = 2
    density_g_cm3: PositiveFloat = 8.908
    efficiency: Annotated[float, Field(gt=0, le=1.0)] = 0.96


class LevelSim(StrictModel):
    surface_m2: PositiveFloat = 0.96
    initial_fraction: Annotated[float, Field(ge=0, le=1.2)] = 0.9
    low_fraction: Annotated[float, Field(ge=0, le=1)] = 0.75
    low_low_fraction: Annotated[float, Field(ge=0, le=1)] = 0.6
    high_fraction: Annotated[float, Field(ge=0, le=1.2)] = 1.0
    makeup_l_min: PositiveFloat = 10.0
    dragout_l_per_load: NonNegFloat = 0.2

    @model_validator(mode="after")
    def _ordered(self) -> LevelSim:
        if not self.low_low_fraction <= self.low_fraction <= self.high_fraction:
            raise ValueError("level switches must be ordered low_low_fraction <= low_fraction <= high_fraction")
        return self


class ProbeSim(StrictModel):
    noise: NonNegFloat = 0.05
    offset: float = 0.0
    lag_s: NonNegFloat = 0.0
    offsets: list[float] = []
    """Extra calibration offset of probe i (added to ``offset``): two probes that disagree."""


class RinseSim(StrictModel):
    """Rinse conductivity: drag-in of bath with each load, washed out by the rinse-water flow."""

    flow_l_min: PositiveFloat = 5.0
    feed_us_cm: NonNegFloat = 10.0
    dragin_us_cm_per_load: NonNegFloat = 60.0
    initial_us_cm: NonNegFloat | None = None
    """Starting conductivity (the feed-water value when unset)."""


class SimulationConfig(StrictModel):
    thermal: ThermalSim = ThermalSim()
    ph: PhSim | None = None
    rectifier: RectifierSim | None = None
    plating: PlatingSim | None = None
    level: LevelSim = LevelSim()
    rinse: RinseSim | None = None
    probe_noise: dict[str, ProbeSim] = {}
    """Per sensor group (``temperature``, ``ph``...): noise and offset applied to every probe."""
    load_area_dm2: Annotated[float, Field(gt=0)] | None = None
    """Area of a load present in the tank when a scenario puts one in without saying."""
