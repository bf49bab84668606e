"""Persistence port of the plating layer, and an in-memory implementation for tests and demos.

The SQL implementation is ``historian.plating_store.SqlPlatingStore`` (same protocol). What must
survive a restart: every recipe version, every load with its visits (and their amp-hours), and the
amp-hour counters with each additive's amp-hours since its last dose.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from scada.plating.loads import Load, LoadStatus
from scada.plating.recipes import Recipe


@dataclass
class CounterRecord:
    """Persisted state of one tank's amp-hour counter and its additives."""

    tank: str
    total_ah: float = 0.0
    unmeasured_s: float = 0.0
    updated_ts: float | None = None
    ah_since_dose: dict[str, float] = field(default_factory=dict)
    """Additive name -> amp-hours since its last dose."""
    last_dose_ts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoadQuery:
    """Load history search (every field optional; ``text`` matches id, part number or order)."""

    text: str | None = None
    part_number: str | None = None
    customer_order: str | None = None
    status: LoadStatus | None = None
    since: float | None = None
    """Created at or after (epoch s)."""
    until: float | None = None
    """Created before (epoch s)."""
    limit: int = 100


def matches(load: Load, q: LoadQuery) -> bool:
    """The query semantics both stores implement."""
    if q.part_number is not None and load.part_number != q.part_number:
        return False
    if q.customer_order is not None and load.customer_order != q.customer_order:
        return False
    if q.status is not None and load.status is not q.status:
        return False
    if q.since is not None and load.created_ts < q.since:
        return False
    if q.until is not None and load.created_ts >= q.until:
        return False
    if q.text:
        t = q.text.lower()
        return t in load.id.lower() or t in load.part_number.lower() or t in load.customer_order.lower()
    return True


@runtime_checkable
class PlatingStore(Protocol):
    async def add_recipe(self, recipe: Recipe) -> None:
        """Insert a new version; ``ValueError`` when (id, version) exists (versions are immutable)."""
        ...

    async def recipes(self) -> list[Recipe]:
        """Every version of every recipe."""
        ...

    async def save_load(self, load: Load) -> None:
        """Insert or update a load and all its visits."""
        ...

    async def get_load(self, load_id: str) -> Load | None:
        ...

    async def active_loads(self) -> list[Load]:
        """Loads queued, in a tank or in transit (rebuilt into the tracker at start)."""
        ...

    async def find_loads(self, query: LoadQuery) -> list[Load]:
        """Newest first, at most ``query.limit``."""
        ...

    async def save_counters(self, counters: list[CounterRecord]) -> None:
        ...

    async def counters(self) -> dict[str, CounterRecord]:
        ...


class InMemoryPlatingStore:
    """Dict-backed store (copies in and out, like a database would)."""

    def __init__(self) -> None:
        self._recipes: dict[tuple[str, int], Recipe] = {}
        self._loads: dict[str, Load] = {}
        self._counters: dict[str, CounterRecord] = {}

    async def add_recipe(self, recipe: Recipe) -> None:
        key = (recipe.id, recipe.version)
        if key in self._recipes:
            raise ValueError(f"recipe {recipe.id!r} version {recipe.version} exists already")
        self._recipes[key] = recipe

    async def recipes(self) -> list[Recipe]:
        return sorted(self._recipes.values(), key=lambda r: (r.id, r.version))

    async def save_load(self, load: Load) -> None:
        self._loads[load.id] = copy.deepcopy(load)

    async def get_load(self, load_id: str) -> Load | None:
        ld = self._loads.get(load_id)
        return None if ld is None else copy.deepcopy(ld)

    async def active_loads(self) -> list[Load]:
        return [copy.deepcopy(ld) for ld in self._loads.values() if ld.status.active]

    async def find_loads(self, query: LoadQuery) -> list[Load]:
        hits = [ld for ld in self._loads.values() if matches(ld, query)]
        hits.sort(key=lambda ld: ld.created_ts, reverse=True)
        return [copy.deepcopy(ld) for ld in hits[: query.limit]]

    async def save_counters(self, counters: list[CounterRecord]) -> None:
        for c in counters:
            self._counters[c.tank] = copy.deepcopy(c)

    async def counters(self) -> dict[str, CounterRecord]:
        return copy.deepcopy(self._counters)
