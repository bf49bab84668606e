"""Electroplating process layer: recipes, loads on the line, amp-hours and dosing, traceability.

Pure core (no database, web or protocol library): :mod:`recipes`, :mod:`loads`, :mod:`amphours`,
:mod:`faraday`, :mod:`traceability`, :mod:`line` (the scan step). :mod:`service` adds the store
(:class:`~scada.plating.store.PlatingStore`; SQL in ``historian/plating_store.py``). See docs/plating.md.
"""

from scada.plating.amphours import AdditiveDoser, AmpHourCounter, Integration
from scada.plating.faraday import DepositParams, deposit_params, thickness_um
from scada.plating.line import PlatingLine, PlatingScanResult, RectifierChange
from scada.plating.loads import (
    LineTracker,
    Load,
    LoadRequest,
    LoadStatus,
    LoadVisit,
    MoveSource,
    RectifierDemand,
    TrackResult,
)
from scada.plating.recipes import (
    Recipe,
    RecipeBody,
    RecipeBook,
    RecipeIssue,
    RecipeResult,
    RecipeStep,
    check_recipe,
)
from scada.plating.service import PlatingService, TraceSource
from scada.plating.store import CounterRecord, InMemoryPlatingStore, LoadQuery, PlatingStore
from scada.plating.traceability import LoadRecord, StepRecord, build_record

__all__ = [
    "AdditiveDoser", "AmpHourCounter", "CounterRecord", "DepositParams", "InMemoryPlatingStore", "Integration",
    "LineTracker", "Load", "LoadQuery", "LoadRecord", "LoadRequest", "LoadStatus", "LoadVisit", "MoveSource",
    "PlatingLine", "PlatingScanResult", "PlatingService", "PlatingStore", "Recipe", "RecipeBody", "RecipeBook",
    "RecipeIssue", "RecipeResult", "RecipeStep", "RectifierChange", "RectifierDemand", "StepRecord", "TraceSource", "TrackResult",
    "build_record", "check_recipe", "deposit_params", "thickness_um",
]
