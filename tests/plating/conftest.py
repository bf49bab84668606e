"""Fixtures of the plating tests: a nickel/chrome recipe and a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from scada.config import PlantConfig
from scada.plating import PlatingLine, RecipeBook


def ni_cr_body(part: str = "PN-100") -> dict[str, Any]:
    return {
        "part_number": part,
        "description": "Bright nickel + hard chrome",
        "steps": [
            {"tank": "nickel", "dwell_min_s": 600, "dwell_max_s": 900, "current_density_a_dm2": 4.0, "ramp_s": 20,
             "temperature_c": {"min": 52, "max": 58}, "ph": {"min": 3.9, "max": 4.5}},
            {"tank": "chrome", "dwell_min_s": 1200, "dwell_max_s": 1800, "current_density_a_dm2": 31.0,
             "ramp_s": 30, "temperature_c": {"min": 53, "max": 59}},
        ],
    }


@pytest.fixture
def body() -> dict[str, Any]:
    return ni_cr_body()


@pytest.fixture
def book(plant: PlantConfig, body: dict[str, Any]) -> RecipeBook:
    b = RecipeBook()
    res = b.propose("ni-cr", body, plant, user="eng", ts=1000.0)
    assert res.ok and res.recipe is not None, res.reason
    b.add(res.recipe)
    return b


@pytest.fixture
def line(plant: PlantConfig, book: RecipeBook) -> PlatingLine:
    return PlatingLine(plant, book=book)
