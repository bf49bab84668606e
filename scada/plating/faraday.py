"""Faraday's law: deposit thickness from amp-hours, area and the bath's metal and cathode efficiency.

``thickness_um = eta * k * j[A/dm2] * t[min]`` with ``k = 60*M*1e4 / (n*F*rho*100)`` (µm per A/dm2 per
minute at 100 % efficiency; shared/domain.md §2.1). Integrated over a dwell, ``j * t[min]`` is
``Ah * 60 / area_dm2``, so the thickness follows from the amp-hours the load received.

The deposit parameters come from the tank's ``simulation.plating`` section when it has one (the same
numbers the simulator uses, so both agree), else from the process-type table below (domain.md §2.1).
A recipe step may override the efficiency (hard chrome's efficiency depends on the current density).
"""

from __future__ import annotations

from dataclasses import dataclass

from scada.config import ProcessType, TankConfig

FARADAY_C_MOL = 96485.33212


@dataclass(frozen=True, slots=True)
class DepositParams:
    """What Faraday's law needs: molar mass, electrons per ion, deposit density, cathode efficiency."""

    metal: str
    molar_mass_g_mol: float
    electrons: int
    density_g_cm3: float
    efficiency: float

    @property
    def k_um_per_a_min_dm2(self) -> float:
        """µm deposited per (A/dm2 x min) at 100 % efficiency."""
        return 60.0 * self.molar_mass_g_mol * 1e4 / (self.electrons * FARADAY_C_MOL * self.density_g_cm3 * 100.0)


_NI = DepositParams("Ni", 58.693, 2, 8.908, 0.96)
_CR6 = DepositParams("Cr", 51.996, 6, 7.19, 0.18)
_CR3 = DepositParams("Cr", 51.996, 3, 7.19, 0.20)
_CU = DepositParams("Cu", 63.546, 2, 8.96, 0.97)
_ZN = DepositParams("Zn", 65.38, 2, 7.14, 0.96)
_ZNNI = DepositParams("ZnNi", 64.4, 2, 7.2, 0.6)

PROCESS_DEPOSITS: dict[ProcessType, DepositParams] = {
    ProcessType.WATTS_NICKEL: _NI,
    ProcessType.BRIGHT_NICKEL: _NI,
    ProcessType.HARD_CHROME: _CR6,
    ProcessType.DECORATIVE_CHROME: DepositParams("Cr", 51.996, 6, 7.19, 0.15),
    ProcessType.TRIVALENT_CHROME: _CR3,
    ProcessType.ACID_COPPER: _CU,
    ProcessType.ACID_ZINC: _ZN,
    ProcessType.ALKALINE_ZINC: DepositParams("Zn", 65.38, 2, 7.14, 0.7),
    ProcessType.ZINC_NICKEL: _ZNNI,
}


def deposit_params(tank: TankConfig) -> DepositParams | None:
    """The tank's deposit parameters, or None when it does not plate (cleaner, pickle, rinse, anodize)."""
    sim = tank.simulation.plating if tank.simulation is not None else None
    if sim is not None:
        return DepositParams(sim.metal, sim.molar_mass_g_mol, sim.electrons, sim.density_g_cm3, sim.efficiency)
    return PROCESS_DEPOSITS.get(tank.process)


def thickness_um(params: DepositParams, amp_hours: float, area_dm2: float, efficiency: float | None = None) -> float:
    """Average deposit thickness (µm) from the amp-hours delivered to ``area_dm2`` of work."""
    if area_dm2 <= 0:
        raise ValueError(f"area must be > 0 dm2, got {area_dm2}")
    eta = params.efficiency if efficiency is None else efficiency
    return eta * params.k_um_per_a_min_dm2 * amp_hours * 60.0 / area_dm2
