"""Interlocks of a tank: conditions that force outputs to their safe state (see scada/conditions.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from scada.conditions import ConditionSyntaxError, parse_condition
from scada.config.base import Ident, StrictModel


class InterlockConfig(StrictModel):
    id: Ident
    """Interlock id, unique in the tank."""
    description: str = ""
    """Shown with the trip in the HMI and the alarm."""
    trip_when: Annotated[list[str], Field(min_length=1)]
    """Conditions, any of which trips (e.g. ``level_low``, ``temperature > 68``, ``temperature not good``)."""
    acts_on: Annotated[list[Ident], Field(min_length=1)]
    """Output roles of the tank forced to their safe value while tripped."""
    latch: bool = True
    """A latched trip stays until an operator resets it after the cause has cleared."""
    bypassable: bool = True
    """Never true for e-stop or heater dry-fire interlocks (checked at load)."""
    max_bypass_s: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    """Longest bypass an engineer may set (it expires on its own)."""
    priority: str = "critical"
    """Priority of the trip alarm."""

    @field_validator("trip_when")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        errors = []
        for i, text in enumerate(v):
            try:
                parse_condition(text)
            except ConditionSyntaxError as e:
                errors.append(f"[{i}] {e}")
        if errors:
            raise ValueError("; ".join(errors))
        return v
