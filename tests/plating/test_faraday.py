"""Faraday thickness against a hand computation (Ni and Cr(VI))."""

from __future__ import annotations

import pytest

from scada.config import PlantConfig
from scada.plating import deposit_params, thickness_um


def test_nickel_by_hand(plant: PlantConfig) -> None:
    p = deposit_params(plant.tank("nickel"))
    assert p is not None and p.metal == "Ni"
    # k = 60*58.693e4/(2*96485.33*8.908*100) = 0.20487 um per A/dm2 per min
    assert p.k_um_per_a_min_dm2 == pytest.approx(0.2049, abs=1e-4)
    # 4 A/dm2 on 50 dm2 for 30 min = 100 Ah; eta 0.96 -> 0.96 * 0.20487 * 4 * 30 = 23.60 um
    assert thickness_um(p, 100.0, 50.0) == pytest.approx(0.96 * 0.204872 * 4 * 30, rel=1e-4)
    assert thickness_um(p, 100.0, 50.0) == pytest.approx(23.60, abs=0.01)


def test_hard_chrome_by_hand(plant: PlantConfig) -> None:
    p = deposit_params(plant.tank("chrome"))
    assert p is not None and p.electrons == 6 and p.efficiency == 0.18
    assert p.k_um_per_a_min_dm2 == pytest.approx(0.0750, abs=1e-4)
    # 31 A/dm2 for 60 min at 18 %: 31*60*0.0750*0.18 = 25.1 um/h (domain.md: observed ~25 um/h)
    ah = 31 * 20 * 1.0  # 20 dm2, 1 h
    assert thickness_um(p, ah, 20.0) == pytest.approx(25.12, abs=0.05)
    assert thickness_um(p, ah, 20.0, efficiency=0.10) == pytest.approx(25.12 / 0.18 * 0.10, abs=0.05)


def test_no_deposit_for_cleaners_and_zero_area(plant: PlantConfig) -> None:
    assert deposit_params(plant.tank("soak")) is None
    p = deposit_params(plant.tank("nickel"))
    assert p is not None
    with pytest.raises(ValueError, match="area"):
        thickness_um(p, 1.0, 0.0)
