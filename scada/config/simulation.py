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
    """Bath density."""
    cp_kj_kgk: PositiveFloat = 3.7
    """Specific heat capacity of the bath."""
    ua_w_k: NonNegFloat = 104.0
    """Linearised heat loss to ambient (W/K), surface + walls."""
    heater_kw: NonNegFloat = 12.0
    """Heater power at 100 % duty."""
    cooler_kw: NonNegFloat = 0.0
    """Cooling power at 100 % duty."""
    initial_c: Annotated[float, Field(ge=-20, le=120)] | None = None
    """Starting bath temperature (ambient when unset)."""
    cooling_water_c: float = 15.0
    """Cooling-coil water temperature: the coil removes nothing below it."""


class PhSim(StrictModel):
    initial: Annotated[float, Field(ge=0, le=14)] = 4.2
    """pH at start."""
    beta_mmol_l_ph: PositiveFloat = 10.0
    """Buffer capacity in mmol/(L pH)."""
    eta_anode: Annotated[float, Field(gt=0, le=1.2)] = 1.0
    """Anode efficiency (pH drift with amp-hours)."""
    eta_cathode: Annotated[float, Field(gt=0, le=1.0)] = 0.96
    """Cathode efficiency (pH drift with amp-hours)."""
    acid_mol_per_l: PositiveFloat = 3.7
    """Strength of the acid reagent (mol H+ per L)."""
    base_mol_per_l: PositiveFloat = 1.0
    """Strength of the base reagent (mol OH- per L)."""
    pump_l_min: PositiveFloat = 0.5
    """Dosing pump flow."""
    tau_mix_s: PositiveFloat = 180.0
    """Mixing time constant of a dose."""


class RectifierSim(StrictModel):
    r_tank_ohm: PositiveFloat = 0.012
    """Bath resistance (V = E_back + I R)."""
    e_back_v: NonNegFloat = 2.0
    """Back EMF (decomposition + overpotentials)."""
    ramp_s: NonNegFloat = 20.0
    """Soft-start ramp of the rectifier itself."""
    ripple_pct: NonNegFloat = 4.5
    """Output ripple."""
    i_max_a: PositiveFloat = 1000.0
    """Current limit."""
    v_max_v: PositiveFloat = 15.0
    """Voltage limit."""


class PlatingSim(StrictModel):
    """Faraday's law: ``M`` g/mol, ``n`` electrons, density g/cm3, cathode efficiency."""

    metal: str = "Ni"
    """Deposited metal (label)."""
    molar_mass_g_mol: PositiveFloat = 58.693
    """Molar mass M."""
    electrons: Annotated[int, Field(ge=1, le=8)] = 2
    """Electrons per ion n."""
    density_g_cm3: PositiveFloat = 8.908
    """Deposit density."""
    efficiency: Annotated[float, Field(gt=0, le=1.0)] = 0.96
    """Cathode current efficiency."""


class LevelSim(StrictModel):
    surface_m2: PositiveFloat = 0.96
    """Liquid surface (evaporation)."""
    initial_fraction: Annotated[float, Field(ge=0, le=1.2)] = 0.9
    """Level at start as a fraction of the working volume."""
    low_fraction: Annotated[float, Field(ge=0, le=1)] = 0.75
    """Level-low switch point."""
    low_low_fraction: Annotated[float, Field(ge=0, le=1)] = 0.6
    """Level-low-low switch point."""
    high_fraction: Annotated[float, Field(ge=0, le=1.2)] = 1.0
    """Level-high switch point."""
    makeup_l_min: PositiveFloat = 10.0
    """Make-up valve flow."""
    dragout_l_per_load: NonNegFloat = 0.2
    """Volume carried out by each load."""

    @model_validator(mode="after")
    def _ordered(self) -> LevelSim:
        if not self.low_low_fraction <= self.low_fraction <= self.high_fraction:
            raise ValueError("level switches must be ordered low_low_fraction <= low_fraction <= high_fraction")
        return self


class ProbeSim(StrictModel):
    noise: NonNegFloat = 0.05
    """Noise (standard deviation) of each probe."""
    offset: float = 0.0
    """Calibration offset of every probe."""
    lag_s: NonNegFloat = 0.0
    """First-order lag of the probe (thermowell)."""
    offsets: list[float] = []
    """Extra calibration offset of probe i (added to ``offset``): two probes that disagree."""


class RinseSim(StrictModel):
    """Rinse conductivity: drag-in of bath with each load, washed out by the rinse-water flow."""

    flow_l_min: PositiveFloat = 5.0
    """Rinse water flow."""
    feed_us_cm: NonNegFloat = 10.0
    """Conductivity of the feed water."""
    dragin_us_cm_per_load: NonNegFloat = 60.0
    """Conductivity rise per load dragged in."""
    initial_us_cm: NonNegFloat | None = None
    """Starting conductivity (the feed-water value when unset)."""


class SimulationConfig(StrictModel):
    thermal: ThermalSim = ThermalSim()
    """Heat balance of the bath."""
    ph: PhSim | None = None
    """Buffered pH model (tanks with pH control)."""
    rectifier: RectifierSim | None = None
    """Rectifier and cell model."""
    plating: PlatingSim | None = None
    """Deposit by Faraday's law."""
    level: LevelSim = LevelSim()
    """Level, evaporation, drag-out and the level switches."""
    rinse: RinseSim | None = None
    """Rinse conductivity model."""
    probe_noise: dict[str, ProbeSim] = {}
    """Per sensor group (``temperature``, ``ph``...): noise and offset applied to every probe."""
    load_area_dm2: Annotated[float, Field(gt=0)] | None = None
    """Area of a load present in the tank when a scenario puts one in without saying."""
