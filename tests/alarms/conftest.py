"""Fixtures for alarm tests (see support.py for the plant and the fake clock)."""

from __future__ import annotations

import pytest

from alarms.engine import AlarmEngine
from scada.config import PlantConfig
from tests.alarms.support import FakeClock, make_plant, normal_values


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def small_plant() -> PlantConfig:
    return make_plant()


@pytest.fixture
def engine(small_plant: PlantConfig, clock: FakeClock) -> AlarmEngine:
    e = AlarmEngine(small_plant, clock)
    e.evaluate(clock(), normal_values(), {"l1.t.temp.sp": 55.0})
    return e
