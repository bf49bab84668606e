"""The plating layer as the runtime and the HMI use it: the pure :class:`PlatingLine` plus its store.

* At start: ``await service.open()`` loads every recipe version, the loads still on the line and the
  amp-hour counters (a restart mid-load keeps the load's record and its amp-hours).
* Each scan: ``service.scan(snapshot, ts, blocked=...)`` (sync, no I/O) -> pump commands + events;
  then, from the same task or a slower one, ``await service.flush(ts)`` saves what changed (at most
  every ``persist_interval_s``; loads are also saved at once on every move and command).
* HMI commands: ``save_recipe``, ``create_load``, ``enter``, ``leave``, ``abort`` -> results that
  carry the reason on refusal. Every event produced goes to ``sink`` (the runtime's event journal).

A store failure never escapes :meth:`flush` (it is logged once, kept in ``store_error`` and retried);
a recipe that could not be stored is not accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from scada.config import PlantConfig
from scada.events import Event
from scada.plating.line import PlatingLine, PlatingScanResult
from scada.plating.loads import LineTracker, Load, LoadRequest, MoveSource, TrackResult
from scada.plating.recipes import Recipe, RecipeBody, RecipeIssue, RecipeResult
from scada.plating.store import LoadQuery, PlatingStore
from scada.plating.traceability import TREND_GROUPS, LoadRecord, build_record
from scada.tags import Sample

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]


class TraceSource(Protocol):
    """History the traceability record needs (the runtime adapts the historian to it)."""

    async def samples(self, tags: Sequence[str], start: float, end: float) -> Mapping[str, Sequence[Sample]]:
        """Logged samples of each tag in [start, end], time order, with their quality."""
        ...

    async def events(self, start: float, end: float) -> Sequence[Event]:
        """Journal events (alarms, interlocks, doses, audit, loads) in [start, end]."""
        ...


class PlatingService:
    def __init__(self, plant: PlantConfig, store: PlatingStore, *, sink: EventSink | None = None,
                 max_gap_scans: int = 4, persist_interval_s: float = 10.0) -> None:
        self.plant = plant
        self.store = store
        self.sink = sink
        self.line = PlatingLine(plant, max_gap_scans=max_gap_scans)
        self.persist_interval_s = persist_interval_s
        self.store_error: str | None = None
        self._last_persist: float | None = None

    @property
    def tracker(self) -> LineTracker:
        return self.line.tracker

    async def open(self) -> None:
        """Rebuild the state from the store (call once before the first scan)."""
        for r in await self.store.recipes():
            self.line.book.add(r)
        self.line.tracker.restore(await self.store.active_loads())
        self.line.restore_counters(await self.store.counters())

    def _emit(self, events: Sequence[Event]) -> None:
        if self.sink is None:
            return
        for ev in events:
            try:
                self.sink(ev)
            except Exception:  # noqa: BLE001 - a journal failure must not break the scan
                log.exception("plating: event sink failed")

    # ---------------------------------------------------------------- scan
    def scan(self, values: Mapping[str, Sample], ts: float, *, blocked: Mapping[str, str] | None = None) -> PlatingScanResult:
        result = self.line.scan(values, ts, blocked=blocked)
        self._emit(result.events)
        return result

    async def flush(self, ts: float, *, force: bool = False) -> bool:
        """Save changed loads and the counters; True when saved (never raises)."""
        if not force and self._last_persist is not None and ts - self._last_persist < self.persist_interval_s:
            return False
        tracker = self.line.tracker
        dirty = list(tracker.dirty)
        try:
            for lid in dirty:
                load = tracker.loads.get(lid)
                if load is not None:
                    await self.store.save_load(load)
                tracker.dirty.discard(lid)
            await self.store.save_counters(self.line.counter_records())
        except Exception as e:  # noqa: BLE001 - any store failure: keep dirty, retry next time
            if self.store_error is None:
                log.error("plating: store failed, will retry: %s", e)
            self.store_error = f"{type(e).__name__}: {e}"
            return False
        if self.store_error is not None:
            log.info("plating: store recovered")
        self.store_error = None
        self._last_persist = ts
        return True

    async def _after(self, result: TrackResult, ts: float) -> TrackResult:
        self._emit(result.events)
        if result.ok:
            await self.flush(ts, force=True)
        return result

    # ---------------------------------------------------------------- commands
    async def save_recipe(self, recipe_id: str, body: Mapping[str, Any] | RecipeBody, *, user: str, ts: float,
                          comment: str = "") -> RecipeResult:
        """Create a recipe or its next version (audited). Refused with key-path issues."""
        res = self.line.book.propose(recipe_id, body, self.plant, user=user, ts=ts, comment=comment)
        if not res.ok or not res.changed or res.recipe is None:
            return res
        try:
            await self.store.add_recipe(res.recipe)
        except Exception as e:  # noqa: BLE001 - not stored means not accepted
            return RecipeResult(False, issues=(RecipeIssue("", f"could not store the recipe: {e}"),))
        self.line.book.add(res.recipe)
        if res.event is not None:
            self._emit([res.event])
        return res

    async def create_load(self, req: LoadRequest, *, user: str, ts: float) -> TrackResult:
        return await self._after(self.line.tracker.create_load(req, ts=ts, user=user), ts)

    async def enter(self, load_id: str, tank_id: str, *, user: str, ts: float) -> TrackResult:
        return await self._after(self.line.tracker.enter(load_id, tank_id, ts=ts, source=MoveSource.OPERATOR,
                                                         user=user), ts)

    async def leave(self, tank_id: str, *, user: str, ts: float) -> TrackResult:
        return await self._after(self.line.tracker.leave(tank_id, ts=ts, source=MoveSource.OPERATOR, user=user), ts)

    async def abort(self, load_id: str, *, user: str, ts: float, reason: str) -> TrackResult:
        return await self._after(self.line.tracker.abort(load_id, ts=ts, user=user, reason=reason), ts)

    # ---------------------------------------------------------------- queries
    def recipes(self) -> list[Recipe]:
        """Latest version of every recipe."""
        book = self.line.book
        return [r for r in (book.latest(i) for i in book.ids()) if r is not None]

    def recipe_versions(self, recipe_id: str) -> list[Recipe]:
        return self.line.book.versions(recipe_id)

    def loads_on_line(self) -> list[Load]:
        return self.line.tracker.active_loads()

    async def get_load(self, load_id: str) -> Load | None:
        load = self.line.tracker.loads.get(load_id)
        return load if load is not None else await self.store.get_load(load_id)

    async def find_loads(self, query: LoadQuery) -> list[Load]:
        await self.flush(0.0, force=True)
        return await self.store.find_loads(query)

    async def record(self, load_id: str, source: TraceSource, *, now: float) -> LoadRecord | None:
        """The traceability record of a load (None when unknown)."""
        load = await self.get_load(load_id)
        if load is None:
            return None
        recipe = self.line.book.get(load.recipe_id, load.recipe_version)
        if not load.visits:
            return build_record(load, recipe, self.plant, {}, [], now=now)
        start = load.visits[0].entry_ts
        end = max((v.exit_ts if v.exit_ts is not None else now) for v in load.visits)
        prefix = self.plant.line.prefix
        tags: list[str] = []
        for v in load.visits:
            try:
                tank = self.plant.tank(v.tank)
            except KeyError:
                continue
            tags += [tank.pv_tag(prefix, g) for g in TREND_GROUPS if g in tank.sensors]
        history = await source.samples(sorted(set(tags)), start, end)
        events = await source.events(start, end)
        return build_record(load, recipe, self.plant, history, events, now=now)
