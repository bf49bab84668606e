"""Event records: the alarm journal, the audit trail, interlock trips, logins, doses, load moves.

One shape for every kind so that the historian stores them in one table a plant can query, and
so the alarm engine can rebuild its state from the journal after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    ALARM = "alarm"          # an alarm state transition (ISA-18.2)
    AUDIT = "audit"          # a write, setpoint, mode change, reset, bypass, config or user change
    LOGIN = "login"          # login success or failure
    INTERLOCK = "interlock"  # trip, reset, bypass start/end
    SYSTEM = "system"        # start, stop, driver down/up, historian buffering
    LOAD = "load"            # load entered/left a tank
    DOSE = "dose"            # a dosing pump pulse (pH, additive by amp-hours)


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    """Epoch seconds, UTC."""
    kind: EventKind
    source: str
    """What it is about: alarm id, tag name, interlock id, user name, load id."""
    message: str = ""
    tank: str | None = None
    area: str | None = None
    priority: str | None = None
    state: str | None = None
    """Alarm state after the transition, interlock state, or outcome (``ok``/``refused``)."""
    value: float | None = None
    user: str | None = None
    comment: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """Anything else, JSON-serialisable (old/new value, source address, first-out ...)."""
    id: int | None = None
    """Assigned by the store."""
