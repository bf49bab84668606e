"""Loads (racks, barrels) and where they are: the line tracker.

A :class:`Load` carries what the customer's traveller needs (part number, quantity, area, order) and
the recipe version it runs with. The :class:`LineTracker` records each tank visit from a PLC
``load_present`` edge or an operator command, refuses impossible moves with a reason, times the dwell
and raises under/over-dwell alarms as :class:`~scada.events.Event` records of kind ``LOAD``:

* load moves: ``source`` = load id, ``state`` in ``entered``/``left``/``done``/``refused``/``aborted``;
* dwell alarms: ``source`` = ``plating.<tank>.over_dwell`` / ``plating.<tank>.under_dwell`` (the
  alarm id), ``state`` = ``active`` then ``cleared``, ``priority`` = ``high``, ``data["alarm"]`` names
  it. Over-dwell goes active when the dwell passes ``dwell_max_s`` and clears when the load leaves;
  under-dwell is found at exit and is emitted active and cleared at once (an unacknowledged-cleared
  alarm in ISA-18.2 terms: the operator must still acknowledge it).

It also answers the scan engine's question: the rectifier setpoint of a tank is the recipe's current
density x the area of the load in it (:meth:`LineTracker.rectifier_current_a`). Pure: no I/O, time in.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from scada.config import PlantConfig, TankConfig
from scada.events import Event, EventKind
from scada.plating.recipes import Recipe, RecipeBook, RecipeIssue, RecipeStep, rectifier_loop
from scada.tags import Sample

_LOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

DWELL_PRIORITY = "high"


class LoadStatus(StrEnum):
    QUEUED = "queued"          # created, not yet in the first tank
    IN_TANK = "in_tank"
    IN_TRANSIT = "in_transit"  # between two tanks (on the hoist)
    DONE = "done"              # left the last step of its recipe
    ABORTED = "aborted"        # taken off the line by an operator

    @property
    def active(self) -> bool:
        return self in (LoadStatus.QUEUED, LoadStatus.IN_TANK, LoadStatus.IN_TRANSIT)


class MoveSource(StrEnum):
    PLC = "plc"            # load_present edge
    OPERATOR = "operator"  # HMI command
    RESTART = "restart"    # found changed after a server restart


@dataclass
class LoadVisit:
    """One immersion of a load in a tank."""

    tank: str
    step_index: int | None
    """Recipe step this visit fulfils; None when the tank is not in the rest of the recipe."""
    entry_ts: float
    entry_source: MoveSource
    entry_user: str | None = None
    exit_ts: float | None = None
    exit_source: MoveSource | None = None
    exit_user: str | None = None
    amp_hours: float = 0.0
    """Charge delivered to the load in this visit (from the tank's amp-hour counter)."""
    unmeasured_s: float = 0.0
    """Time in this visit whose current could not be integrated (Bad samples, gaps)."""
    over_dwell: bool = False
    under_dwell: bool = False

    def dwell_s(self, now: float | None = None) -> float | None:
        end = self.exit_ts if self.exit_ts is not None else now
        return None if end is None else end - self.entry_ts

    def to_dict(self) -> dict[str, Any]:
        return {
            "tank": self.tank, "step_index": self.step_index, "entry_ts": self.entry_ts,
            "entry_source": str(self.entry_source), "entry_user": self.entry_user, "exit_ts": self.exit_ts,
            "exit_source": None if self.exit_source is None else str(self.exit_source),
            "exit_user": self.exit_user, "amp_hours": self.amp_hours, "unmeasured_s": self.unmeasured_s,
            "over_dwell": self.over_dwell, "under_dwell": self.under_dwell,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoadVisit:
        return cls(
            tank=d["tank"], step_index=d.get("step_index"), entry_ts=float(d["entry_ts"]),
            entry_source=MoveSource(d["entry_source"]), entry_user=d.get("entry_user"),
            exit_ts=None if d.get("exit_ts") is None else float(d["exit_ts"]),
            exit_source=None if d.get("exit_source") is None else MoveSource(d["exit_source"]),
            exit_user=d.get("exit_user"), amp_hours=float(d.get("amp_hours") or 0.0),
            unmeasured_s=float(d.get("unmeasured_s") or 0.0), over_dwell=bool(d.get("over_dwell")),
            under_dwell=bool(d.get("under_dwell")),
        )


@dataclass
class Load:
    """A rack or barrel: identity, area and the recipe version it runs with, plus its visits."""

    id: str
    part_number: str
    quantity: int
    area_dm2: float
    customer_order: str
    recipe_id: str
    recipe_version: int
    created_ts: float
    created_by: str
    status: LoadStatus = LoadStatus.QUEUED
    visits: list[LoadVisit] = field(default_factory=list)
    next_step: int = 0
    """Index of the next recipe step expected."""
    finished_ts: float | None = None
    note: str = ""

    @property
    def current_visit(self) -> LoadVisit | None:
        if self.visits and self.visits[-1].exit_ts is None:
            return self.visits[-1]
        return None

    @property
    def tank(self) -> str | None:
        v = self.current_visit
        return None if v is None else v.tank

    @property
    def amp_hours(self) -> float:
        return sum(v.amp_hours for v in self.visits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "part_number": self.part_number, "quantity": self.quantity, "area_dm2": self.area_dm2,
            "customer_order": self.customer_order, "recipe_id": self.recipe_id,
            "recipe_version": self.recipe_version, "created_ts": self.created_ts, "created_by": self.created_by,
            "status": str(self.status), "next_step": self.next_step, "finished_ts": self.finished_ts,
            "note": self.note, "tank": self.tank, "amp_hours": self.amp_hours,
            "visits": [v.to_dict() for v in self.visits],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Load:
        return cls(
            id=d["id"], part_number=d["part_number"], quantity=int(d["quantity"]), area_dm2=float(d["area_dm2"]),
            customer_order=d.get("customer_order") or "", recipe_id=d["recipe_id"],
            recipe_version=int(d["recipe_version"]), created_ts=float(d["created_ts"]),
            created_by=d.get("created_by") or "", status=LoadStatus(d["status"]),
            visits=[LoadVisit.from_dict(v) for v in d.get("visits", [])], next_step=int(d.get("next_step", 0)),
            finished_ts=None if d.get("finished_ts") is None else float(d["finished_ts"]), note=d.get("note") or "",
        )


@dataclass(frozen=True, slots=True)
class LoadRequest:
    """What the operator enters to put a load on the line."""

    part_number: str
    quantity: int
    area_dm2: float
    customer_order: str = ""
    id: str | None = None
    """Flight-bar / barcode id; generated when omitted."""
    recipe_id: str | None = None
    """Default: the recipe of the part number."""
    note: str = ""


@dataclass(frozen=True, slots=True)
class TrackResult:
    """Outcome of a tracker command: ok, or refused with a reason; events to journal either way."""

    ok: bool
    reason: str = ""
    load: Load | None = None
    events: tuple[Event, ...] = ()
    issues: tuple[RecipeIssue, ...] = ()


@dataclass(frozen=True, slots=True)
class RectifierDemand:
    """What the rectifier of a tank should do for the load in it."""

    tank: str
    load_id: str
    current_a: float
    current_density_a_dm2: float | None
    area_dm2: float
    ramp_s: float


def _refused(reason: str, *, ts: float, source: str, tank: str | None, user: str | None,
             move: MoveSource | None, data: dict[str, Any] | None = None) -> TrackResult:
    ev = Event(ts=ts, kind=EventKind.LOAD, source=source, message=reason, tank=tank, state="refused", user=user,
               data={"move_source": None if move is None else str(move), **(data or {})})
    return TrackResult(False, reason=reason, events=(ev,))


class LineTracker:
    """Which load is in which tank, each load's visits and dwell alarms. One per line."""

    def __init__(self, plant: PlantConfig, book: RecipeBook) -> None:
        self.plant = plant
        self.book = book
        self._tanks: dict[str, TankConfig] = {t.id: t for t in plant.tanks}
        self.loads: dict[str, Load] = {}
        """Active loads (queued, in a tank, in transit) and those finished since start."""
        self.occupancy: dict[str, str] = {}
        """tank id -> load id."""
        self.dirty: set[str] = set()
        """Ids of loads changed since the store last saved them (the service clears it)."""
        self._present: dict[str, bool | None] = {}

    # ---------------------------------------------------------------- state
    def restore(self, loads: list[Load]) -> None:
        """Rebuild from the store after a restart (active loads keep their open visit)."""
        for load in loads:
            self.loads[load.id] = load
            if load.status is LoadStatus.IN_TANK and load.tank is not None:
                self.occupancy[load.tank] = load.id

    def recipe_of(self, load: Load) -> Recipe | None:
        return self.book.get(load.recipe_id, load.recipe_version)

    def step_of(self, load: Load, visit: LoadVisit | None = None) -> RecipeStep | None:
        visit = visit or load.current_visit
        recipe = self.recipe_of(load)
        if visit is None or visit.step_index is None or recipe is None:
            return None
        return recipe.steps[visit.step_index]

    def load_in(self, tank_id: str) -> Load | None:
        lid = self.occupancy.get(tank_id)
        return None if lid is None else self.loads.get(lid)

    def active_loads(self) -> list[Load]:
        return [ld for ld in self.loads.values() if ld.status.active]

    # ---------------------------------------------------------------- scan-engine interface
    def area_dm2(self, tank_id: str) -> float | None:
        """Surface area of the load in the tank, or None when the tank is empty."""
        load = self.load_in(tank_id)
        return None if load is None else load.area_dm2

    def rectifier_demand(self, tank_id: str) -> RectifierDemand | None:
        """Recipe setpoint for the tank's rectifier; None when no tracked load is in it."""
        load = self.load_in(tank_id)
        if load is None:
            return None
        step = self.step_of(load)
        if step is None:
            # In the tank but not as a recipe step: nothing says what to plate, so plate nothing.
            return RectifierDemand(tank_id, load.id, 0.0, None, load.area_dm2, 0.0)
        if step.current_density_a_dm2 is not None:
            return RectifierDemand(tank_id, load.id, step.current_density_a_dm2 * load.area_dm2,
                                   step.current_density_a_dm2, load.area_dm2, step.ramp_s)
        if step.current_a is not None:
            return RectifierDemand(tank_id, load.id, step.current_a, step.current_a / load.area_dm2,
                                   load.area_dm2, step.ramp_s)
        return RectifierDemand(tank_id, load.id, 0.0, None, load.area_dm2, step.ramp_s)

    def rectifier_current_a(self, tank_id: str) -> float | None:
        """Rectifier setpoint (A) = recipe CD x load area; 0.0 for a step without current; None when empty."""
        d = self.rectifier_demand(tank_id)
        return None if d is None else d.current_a

    # ---------------------------------------------------------------- commands
    def _new_id(self, ts: float) -> str:
        base = "L" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(ts))
        lid, n = base, 1
        while lid in self.loads:
            n += 1
            lid = f"{base}-{n}"
        return lid

    def check_load(self, req: LoadRequest) -> tuple[Recipe | None, list[RecipeIssue]]:
        """Bad input of a new load: area, quantity, part number, recipe, current limits."""
        issues: list[RecipeIssue] = []
        if not (req.area_dm2 > 0):  # also catches NaN
            issues.append(RecipeIssue("area_dm2", f"surface area must be > 0 dm2, got {req.area_dm2}"))
        if req.quantity <= 0:
            issues.append(RecipeIssue("quantity", f"quantity must be > 0, got {req.quantity}"))
        if req.id is not None and not _LOAD_ID_RE.match(req.id):
            issues.append(RecipeIssue("id", f"{req.id!r} is not a load id (1-64 letters, digits, '_', '.', '-')"))
        elif req.id is not None and req.id in self.loads:
            issues.append(RecipeIssue("id", f"load {req.id!r} exists already"))
        if req.recipe_id is not None:
            recipe = self.book.latest(req.recipe_id)
            if recipe is None:
                issues.append(RecipeIssue("recipe_id", f"unknown recipe {req.recipe_id!r}"))
            elif recipe.part_number != req.part_number:
                issues.append(RecipeIssue("recipe_id", f"recipe {req.recipe_id!r} is for part number "
                                                       f"{recipe.part_number!r}, not {req.part_number!r}"))
                recipe = None
        else:
            recipe = self.book.for_part(req.part_number)
            if recipe is None:
                issues.append(RecipeIssue("part_number", f"unknown part number {req.part_number!r}: no recipe"))
        if recipe is not None and req.area_dm2 > 0:
            for i, step in enumerate(recipe.steps):
                tank = self._tanks.get(step.tank)
                if tank is None:
                    issues.append(RecipeIssue(f"recipe.steps[{i}].tank", f"tank {step.tank!r} no longer exists"))
                    continue
                loop = rectifier_loop(tank)
                cd_win = tank.window.current_density_a_dm2
                if step.current_density_a_dm2 is not None:
                    amps = step.current_density_a_dm2 * req.area_dm2
                    if loop is not None and loop.rectifier is not None and amps > loop.rectifier.max_current_a:
                        issues.append(RecipeIssue(
                            "area_dm2", f"{req.area_dm2:g} dm2 x {step.current_density_a_dm2:g} A/dm2 = {amps:g} A "
                                        f"exceeds the rectifier maximum of tank {tank.id!r} "
                                        f"({loop.rectifier.max_current_a:g} A)"))
                if step.current_a is not None and cd_win is not None:
                    cd = step.current_a / req.area_dm2
                    if not cd_win.contains(cd):
                        issues.append(RecipeIssue(
                            "area_dm2", f"{step.current_a:g} A on {req.area_dm2:g} dm2 = {cd:.3g} A/dm2 is outside "
                                        f"the current-density window of tank {tank.id!r} "
                                        f"({cd_win.min:g}..{cd_win.max:g})"))
        return recipe, issues

    def create_load(self, req: LoadRequest, *, ts: float, user: str) -> TrackResult:
        """Register a load (queued for its first step) or refuse it with every reason."""
        recipe, issues = self.check_load(req)
        if issues or recipe is None:
            reason = "; ".join(str(i) for i in issues)
            res = _refused(f"load refused: {reason}", ts=ts, source=req.id or "load", tank=None, user=user,
                           move=MoveSource.OPERATOR, data={"part_number": req.part_number})
            return TrackResult(False, reason=reason, events=res.events, issues=tuple(issues))
        load = Load(id=req.id or self._new_id(ts), part_number=req.part_number, quantity=req.quantity,
                    area_dm2=req.area_dm2, customer_order=req.customer_order, recipe_id=recipe.id,
                    recipe_version=recipe.version, created_ts=ts, created_by=user, note=req.note)
        self.loads[load.id] = load
        self.dirty.add(load.id)
        ev = Event(ts=ts, kind=EventKind.LOAD, source=load.id, state="created", user=user,
                   message=f"load {load.id} ({load.part_number} x{load.quantity}, {load.area_dm2:g} dm2) "
                           f"created with recipe {recipe.id} v{recipe.version}",
                   data={"part_number": load.part_number, "recipe": recipe.id, "version": recipe.version,
                         "area_dm2": load.area_dm2, "customer_order": load.customer_order})
        return TrackResult(True, load=load, events=(ev,))

    def enter(self, load_id: str, tank_id: str, *, ts: float, source: MoveSource = MoveSource.OPERATOR,
              user: str | None = None) -> TrackResult:
        """A load goes into a tank. Refused: unknown load/tank, tank occupied, load still in another tank."""
        kw: dict[str, Any] = {"ts": ts, "source": load_id, "tank": tank_id, "user": user, "move": source}
        if tank_id not in self._tanks:
            return _refused(f"unknown tank {tank_id!r}", **kw)
        load = self.loads.get(load_id)
        if load is None:
            return _refused(f"unknown load {load_id!r}", **kw)
        if not load.status.active:
            return _refused(f"load {load_id} is {load.status.value}", **kw)
        holder = self.occupancy.get(tank_id)
        if holder is not None:
            return _refused(f"tank {tank_id!r} already holds load {holder}", **kw)
        if load.tank is not None:
            return _refused(f"load {load_id} is still in tank {load.tank!r}", **kw)
        recipe = self.recipe_of(load)
        step_index: int | None = None
        note = ""
        if recipe is not None:
            remaining = [i for i in range(load.next_step, len(recipe.steps)) if recipe.steps[i].tank == tank_id]
            if remaining:
                step_index = remaining[0]
                if step_index > load.next_step:
                    skipped = ", ".join(recipe.steps[i].tank for i in range(load.next_step, step_index))
                    note = f"; skipped step(s): {skipped}"
            else:
                note = "; tank is not a remaining step of the recipe"
        load.visits.append(LoadVisit(tank_id, step_index, ts, source, user))
        load.status = LoadStatus.IN_TANK
        self.occupancy[tank_id] = load.id
        self.dirty.add(load.id)
        step = None if step_index is None or recipe is None else recipe.steps[step_index]
        ev = Event(ts=ts, kind=EventKind.LOAD, source=load.id, tank=tank_id, state="entered", user=user,
                   message=f"load {load.id} entered {tank_id}{note}",
                   data={"move_source": str(source), "step_index": step_index,
                         "dwell_min_s": None if step is None else step.dwell_min_s,
                         "dwell_max_s": None if step is None else step.dwell_max_s})
        return TrackResult(True, load=load, events=(ev,))

    def leave(self, tank_id: str, *, ts: float, source: MoveSource = MoveSource.OPERATOR,
              user: str | None = None) -> TrackResult:
        """The load in a tank comes out: close the visit, check under-dwell, clear over-dwell."""
        load = self.load_in(tank_id)
        if load is None:
            return _refused(f"tank {tank_id!r} holds no load", ts=ts, source=tank_id, tank=tank_id, user=user,
                            move=source)
        visit = load.current_visit
        assert visit is not None
        visit.exit_ts, visit.exit_source, visit.exit_user = ts, source, user
        del self.occupancy[tank_id]
        events: list[Event] = []
        step = self.step_of(load, visit)
        dwell = ts - visit.entry_ts
        if visit.over_dwell:
            events.append(self._dwell_event(load, visit, "over_dwell", "cleared", ts, dwell, step))
        if step is not None and dwell < step.dwell_min_s:
            visit.under_dwell = True
            events.append(self._dwell_event(load, visit, "under_dwell", "active", ts, dwell, step))
            events.append(self._dwell_event(load, visit, "under_dwell", "cleared", ts, dwell, step))
        recipe = self.recipe_of(load)
        if visit.step_index is not None:
            load.next_step = visit.step_index + 1
        done = recipe is not None and load.next_step >= len(recipe.steps)
        load.status = LoadStatus.DONE if done else LoadStatus.IN_TRANSIT
        if done:
            load.finished_ts = ts
        self.dirty.add(load.id)
        events.insert(0, Event(ts=ts, kind=EventKind.LOAD, source=load.id, tank=tank_id, state="left", user=user,
                               value=dwell, message=f"load {load.id} left {tank_id} after {dwell:.0f} s",
                               data={"move_source": str(source), "step_index": visit.step_index,
                                     "dwell_s": dwell, "amp_hours": visit.amp_hours}))
        if done:
            events.append(Event(ts=ts, kind=EventKind.LOAD, source=load.id, state="done", user=user,
                                message=f"load {load.id} finished its recipe"))
        return TrackResult(True, load=load, events=tuple(events))

    def abort(self, load_id: str, *, ts: float, user: str, reason: str) -> TrackResult:
        """Take a load off the line (scrapped, stripped, rework): it leaves any tank and stops tracking."""
        load = self.loads.get(load_id)
        if load is None or not load.status.active:
            return _refused(f"no active load {load_id!r}", ts=ts, source=load_id, tank=None, user=user,
                            move=MoveSource.OPERATOR)
        events: list[Event] = []
        if load.tank is not None:
            events += self.leave(load.tank, ts=ts, source=MoveSource.OPERATOR, user=user).events
        load.status, load.finished_ts, load.note = LoadStatus.ABORTED, ts, (load.note + " " + reason).strip()
        self.dirty.add(load.id)
        events.append(Event(ts=ts, kind=EventKind.LOAD, source=load.id, state="aborted", user=user,
                            message=f"load {load.id} aborted: {reason}", comment=reason))
        return TrackResult(True, load=load, events=tuple(events))

    # ---------------------------------------------------------------- PLC signal and timers
    def _candidate(self, tank_id: str) -> Load | None:
        """The load a load_present rising edge in ``tank_id`` belongs to: one not in a tank whose next
        step is this tank, else whose remaining steps include it; the longest-waiting one first."""
        def waiting_since(ld: Load) -> float:
            return ld.visits[-1].exit_ts or ld.created_ts if ld.visits else ld.created_ts

        best: tuple[int, float, Load] | None = None
        for ld in self.loads.values():
            if ld.status not in (LoadStatus.QUEUED, LoadStatus.IN_TRANSIT):
                continue
            recipe = self.recipe_of(ld)
            if recipe is None:
                continue
            idx = [i for i in range(ld.next_step, len(recipe.steps)) if recipe.steps[i].tank == tank_id]
            if not idx:
                continue
            key = (idx[0] - ld.next_step, waiting_since(ld), ld)
            if best is None or key[:2] < best[:2]:
                best = key
        return None if best is None else best[2]

    def observe_load_present(self, tank_id: str, sample: Sample | None, ts: float) -> list[Event]:
        """Feed the tank's ``load_present`` input each scan; edges become enter/leave.

        A Bad sample is no information: the last state is kept and no edge is inferred. The first Good
        value after a (re)start only reconciles: a load the store says is in the tank but the input says
        is gone leaves now (``source=restart``).
        """
        if sample is None or not sample.usable:
            return []
        present = bool(sample.value)
        before = self._present.get(tank_id)
        self._present[tank_id] = present
        if before == present:
            return []
        holder = self.load_in(tank_id)
        if present:
            if holder is not None:
                return []  # already tracked (restart, or operator entered it first)
            cand = self._candidate(tank_id)
            if cand is None:
                return [Event(ts=ts, kind=EventKind.LOAD, source=f"plating.{tank_id}.unknown_load", tank=tank_id,
                              state="refused", priority="medium",
                              message=f"load present in {tank_id} but no tracked load is due there",
                              data={"move_source": str(MoveSource.PLC)})]
            return list(self.enter(cand.id, tank_id, ts=ts, source=MoveSource.PLC).events)
        if holder is None:
            return []
        src = MoveSource.PLC if before is not None else MoveSource.RESTART
        return list(self.leave(tank_id, ts=ts, source=src).events)

    def tick(self, ts: float) -> list[Event]:
        """Check dwell timers: an over-dwell alarm goes active once when the dwell passes its maximum."""
        events: list[Event] = []
        for lid in self.occupancy.values():
            load = self.loads[lid]
            visit = load.current_visit
            step = self.step_of(load)
            if visit is None or step is None or visit.over_dwell:
                continue
            dwell = ts - visit.entry_ts
            if dwell > step.dwell_max_s:
                visit.over_dwell = True
                self.dirty.add(lid)
                events.append(self._dwell_event(load, visit, "over_dwell", "active", ts, dwell, step))
        return events

    @staticmethod
    def _dwell_event(load: Load, visit: LoadVisit, alarm: str, state: str, ts: float, dwell: float,
                     step: RecipeStep | None) -> Event:
        limit = None if step is None else (step.dwell_max_s if alarm == "over_dwell" else step.dwell_min_s)
        word = "over" if alarm == "over_dwell" else "under"
        msg = (f"{word}-dwell of load {load.id} in {visit.tank}: {dwell:.0f} s "
               f"({'max' if word == 'over' else 'min'} {limit:g} s)") if limit is not None else ""
        return Event(ts=ts, kind=EventKind.LOAD, source=f"plating.{visit.tank}.{alarm}", tank=visit.tank,
                     state=state, priority=DWELL_PRIORITY, value=dwell, message=msg,
                     data={"alarm": alarm, "load": load.id, "dwell_s": dwell, "limit_s": limit})
