"""The plating layer as the HMI's :class:`~hmi.ports.PlatingPort`, and the historian as its trace source.

:class:`PlatingAdapter` wraps a started :class:`~scada.plating.PlatingService`: it turns the layer's
results into :class:`~hmi.ports.PlatingResult` with a refusal kind the HMI maps to a status (unknown
load or tank -> UNKNOWN, occupied tank / wrong state / duplicate id -> CONFLICT, bad input -> INVALID
with key-path issues), adds the live dwell to the loads on the line, and builds the traceability record
from a :class:`~scada.plating.TraceSource`. :class:`HistorianTrace` is that source over the historian.

Audit: accepted recipe saves are audited once, by the plating layer's own ``AUDIT`` event (old and new
body, version); the adapter adds the requester's source address and role to it. Everything else the
HMI audits itself (hmi/routes_plating.py).

No historian import at module level: the in-memory :class:`~hmi.fake_runtime.FakeRuntime` uses the
same adapter with its own trace source.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hmi.ports import (
    Actor,
    CommandKind,
    LoadFilter,
    LoadRecordView,
    NewLoad,
    PlatingIssue,
    PlatingResult,
)
from scada.events import Event, EventKind
from scada.plating.loads import Load, LoadRequest, LoadStatus, TrackResult
from scada.plating.recipes import RecipeIssue
from scada.plating.service import PlatingService, TraceSource
from scada.plating.store import LoadQuery, matches
from scada.tags import QualityReason, Sample

if TYPE_CHECKING:
    from historian import Historian

log = logging.getLogger("scada.runtime.plating")

_EVENT_KINDS = [EventKind.ALARM, EventKind.INTERLOCK, EventKind.DOSE, EventKind.AUDIT, EventKind.LOAD]
_MAX_EVENTS = 50_000


class HistorianTrace:
    """Samples and journal events of a load's time span, read back from the historian.

    Each tag's series starts with the value in effect at the start (the last stored row before it,
    moved to the start time): the historian stores changes, so a steady value may have no row inside
    a short dwell and must not read as "no reading".
    """

    def __init__(self, historian: Historian) -> None:
        self.historian = historian

    async def samples(self, tags: Sequence[str], start: float, end: float) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for tag in tags:
            try:
                rows = await self.historian.query_raw(tag, start, end + 1e-6)
                prev = await self.historian.last_before(tag, start)
            except KeyError:  # never logged (historian.queries.UnknownTag)
                out[tag] = []
                continue
            series = [] if prev is None else [_sample(prev.value, prev.quality, start, prev.reason)]
            series += [_sample(r.value, r.quality, r.ts, r.reason) for r in rows]
            out[tag] = series
        return out

    async def events(self, start: float, end: float) -> list[Event]:
        return await self.historian.query_events(start=start, end=end + 1e-6, kinds=list(_EVENT_KINDS),
                                                 newest_first=False, limit=_MAX_EVENTS)


def _sample(value: float | None, quality: Any, ts: float, reason: str | None) -> Sample:
    try:
        why = QualityReason(reason or "none")
    except ValueError:
        why = QualityReason.NONE
    v = None if value is None or not math.isfinite(value) else value
    return Sample(value=v, quality=quality, server_ts=ts, source_ts=ts, reason=why)


def _issues(issues: Sequence[RecipeIssue]) -> tuple[PlatingIssue, ...]:
    return tuple(PlatingIssue(i.path, i.message) for i in issues)


def _is_trace(obj: object) -> bool:
    return callable(getattr(obj, "samples", None)) and callable(getattr(obj, "events", None))


class PlatingAdapter:
    """PlatingService + a trace source -> :class:`hmi.ports.PlatingPort`."""

    def __init__(self, service: PlatingService, history: Historian | TraceSource, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.trace: TraceSource = history if _is_trace(history) else HistorianTrace(history)  # type: ignore[arg-type,assignment]
        self.clock = clock
        self._actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("plating_actor", default=None)
        inner = service.sink
        if inner is not None:
            service.sink = lambda ev: inner(self._enrich(ev))

    def _enrich(self, ev: Event) -> Event:
        """Add the requester's address and role to the recipe-save audit event (one audit record)."""
        actor = self._actor.get()
        if actor is None or ev.kind is not EventKind.AUDIT or ev.data.get("action") != "recipe_save":
            return ev
        data = {**ev.data, "address": actor.address, "role": actor.role.value, "kind": CommandKind.OK.value}
        return dataclasses.replace(ev, data=data)

    # ---------------------------------------------------------------- recipes
    def recipes(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.service.recipes()]

    def recipe(self, recipe_id: str, version: int | None = None) -> dict[str, Any] | None:
        r = self.service.line.book.get(recipe_id, version)
        return None if r is None else r.to_dict()

    def recipe_versions(self, recipe_id: str) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.service.recipe_versions(recipe_id)]

    async def save_recipe(self, recipe_id: str, body: dict[str, Any], actor: Actor, comment: str) -> PlatingResult:
        token = self._actor.set(actor)
        try:
            res = await self.service.save_recipe(recipe_id, body, user=actor.username, ts=self.clock(),
                                                 comment=comment)
        finally:
            self._actor.reset(token)
        if not res.ok or res.recipe is None:
            stored = any(i.path == "" and i.message.startswith("could not store") for i in res.issues)
            return PlatingResult(False, CommandKind.CONFLICT if stored else CommandKind.INVALID, res.reason or
                                 "recipe refused", issues=_issues(res.issues))
        data = {**res.recipe.to_dict(), "changed": res.changed}
        return PlatingResult(True, data=data, audited=res.changed,
                             reason="" if res.changed else "identical to the latest version: no new version")

    # ---------------------------------------------------------------- loads
    def _view(self, load: Load) -> dict[str, Any]:
        """Load.to_dict() plus where it is in its recipe and the live dwell against the step's window."""
        d = load.to_dict()
        tracker = self.service.tracker
        recipe = tracker.recipe_of(load)
        d["step_count"] = None if recipe is None else len(recipe.steps)
        d["next_tank"] = (recipe.steps[load.next_step].tank
                          if recipe is not None and load.status.active and load.next_step < len(recipe.steps) else None)
        visit = load.current_visit
        d.update(dwell_s=None, step_index=None, dwell_min_s=None, dwell_max_s=None, dwell_state=None,
                 current_density_a_dm2=None, current_a=None)
        if visit is not None:
            dwell = max(0.0, self.clock() - visit.entry_ts)
            step = tracker.step_of(load, visit)
            d.update(dwell_s=dwell, step_index=visit.step_index, entry_ts=visit.entry_ts)
            if step is not None:
                d.update(dwell_min_s=step.dwell_min_s, dwell_max_s=step.dwell_max_s,
                         dwell_state="over" if dwell > step.dwell_max_s
                         else "short" if dwell < step.dwell_min_s else "in_window")
            demand = tracker.rectifier_demand(visit.tank) if tracker.load_in(visit.tank) is load else None
            if demand is not None:
                d.update(current_density_a_dm2=demand.current_density_a_dm2, current_a=demand.current_a)
        return d

    def loads_on_line(self) -> list[dict[str, Any]]:
        return [self._view(ld) for ld in sorted(self.service.loads_on_line(), key=lambda x: x.created_ts)]

    @staticmethod
    def _query(f: LoadFilter) -> LoadQuery:
        status = None
        if f.status is not None:
            try:
                status = LoadStatus(f.status)
            except ValueError:
                status = None
        return LoadQuery(text=f.text or None, part_number=f.part_number or None,
                         customer_order=f.customer_order or None, status=status, since=f.since, until=f.until,
                         limit=max(1, f.limit))

    async def find_loads(self, query: LoadFilter) -> list[dict[str, Any]]:
        q = self._query(query)
        if query.status is not None and q.status is None:
            return []  # an unknown status matches nothing
        if query.on_line:
            hits = [ld for ld in self.service.loads_on_line() if matches(ld, q)]
            hits.sort(key=lambda ld: ld.created_ts, reverse=True)
            return [self._view(ld) for ld in hits[: q.limit]]
        live = self.service.tracker.loads
        return [self._view(live.get(ld.id) or ld) for ld in await self.service.find_loads(q)]

    async def get_load(self, load_id: str) -> dict[str, Any] | None:
        load = await self.service.get_load(load_id)
        return None if load is None else self._view(load)

    def _done(self, res: TrackResult, refused: CommandKind) -> PlatingResult:
        if res.ok and res.load is not None:
            return PlatingResult(True, data=self._view(res.load))
        return PlatingResult(False, refused, res.reason or "refused", issues=_issues(res.issues))

    async def create_load(self, load: NewLoad, actor: Actor) -> PlatingResult:
        req = LoadRequest(part_number=load.part_number, quantity=load.quantity, area_dm2=load.area_dm2,
                          customer_order=load.customer_order, id=load.id, recipe_id=load.recipe_id, note=load.note)
        res = await self.service.create_load(req, user=actor.username, ts=self.clock())
        if not res.ok:
            dup = any(i.path == "id" and "exists already" in i.message for i in res.issues)
            return self._done(res, CommandKind.CONFLICT if dup else CommandKind.INVALID)
        return self._done(res, CommandKind.INVALID)

    async def _known(self, load_id: str) -> Load | PlatingResult:
        load = self.service.tracker.loads.get(load_id) or await self.service.get_load(load_id)
        if load is None:
            return PlatingResult(False, CommandKind.UNKNOWN, f"unknown load {load_id!r}")
        return load

    async def enter(self, load_id: str, tank: str, actor: Actor) -> PlatingResult:
        load = await self._known(load_id)
        if isinstance(load, PlatingResult):
            return load
        if not any(t.id == tank for t in self.service.plant.tanks):
            return PlatingResult(False, CommandKind.UNKNOWN, f"unknown tank {tank!r}")
        res = await self.service.enter(load_id, tank, user=actor.username, ts=self.clock())
        return self._done(res, CommandKind.CONFLICT)

    async def leave(self, load_id: str, actor: Actor) -> PlatingResult:
        load = await self._known(load_id)
        if isinstance(load, PlatingResult):
            return load
        live = self.service.tracker.loads.get(load_id)
        if live is None or live.tank is None:
            return PlatingResult(False, CommandKind.CONFLICT, f"load {load_id} is not in a tank "
                                                              f"({(live or load).status.value})")
        res = await self.service.leave(live.tank, user=actor.username, ts=self.clock())
        return self._done(res, CommandKind.CONFLICT)

    async def abort(self, load_id: str, reason: str, actor: Actor) -> PlatingResult:
        load = await self._known(load_id)
        if isinstance(load, PlatingResult):
            return load
        res = await self.service.abort(load_id, user=actor.username, ts=self.clock(), reason=reason)
        return self._done(res, CommandKind.CONFLICT)

    # ---------------------------------------------------------------- traceability
    async def record(self, load_id: str) -> LoadRecordView | None:
        return await self.service.record(load_id, self.trace, now=self.clock())

