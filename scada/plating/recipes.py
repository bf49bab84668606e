"""Recipes: what a part number must go through, tank by tank, and the windows that must hold.

A recipe is a sequence of steps (tank, dwell window, current density or current, ramp, temperature
and pH windows). Recipes are versioned and immutable: every accepted edit creates version n+1 and a
load keeps the version it ran with, so a report always shows the rules the load was judged by.

:func:`parse_recipe` turns API input into a :class:`RecipeBody` and :func:`check_recipe` checks it
against the plant (unknown tank, a window outside the tank's process window, a current density
outside the tank's CD window, dwell min > max ...). Every refusal is a :class:`RecipeIssue` whose
``path`` is the key path (``steps[2].temperature_c``). :class:`RecipeBook` holds the versions and
produces the audit :class:`~scada.events.Event` (user, old and new body) for every change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import Field, ValidationError

from scada.config import PlantConfig, Range, TankConfig
from scada.config.base import Ident, NonNegFloat, PositiveFloat, StrictModel
from scada.config.control import LoopConfig, LoopKind
from scada.events import Event, EventKind

_RECIPE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class RecipeStep(StrictModel):
    """One tank of the sequence."""

    tank: Ident
    """Tank id (``PlantConfig.tanks``)."""
    dwell_min_s: NonNegFloat
    """Shortest allowed immersion (s); leaving earlier is an under-dwell."""
    dwell_max_s: PositiveFloat
    """Longest allowed immersion (s); staying longer raises an over-dwell alarm."""
    current_density_a_dm2: PositiveFloat | None = None
    """Cathode current density; the rectifier setpoint is this x the load's area."""
    current_a: PositiveFloat | None = None
    """Fixed current instead of a current density (exclusive with it)."""
    ramp_s: NonNegFloat = 0.0
    """Soft-start ramp of the rectifier (s)."""
    temperature_c: Range | None = None
    """Temperature window that must hold during the dwell (default: the tank's process window)."""
    ph: Range | None = None
    """pH window that must hold during the dwell (default: the tank's process window)."""
    efficiency: Annotated[float, Field(gt=0, le=1.0)] | None = None
    """Cathode efficiency for the thickness estimate (default: the tank's plating parameters)."""
    note: str = ""

    @property
    def electrical(self) -> bool:
        return self.current_density_a_dm2 is not None or self.current_a is not None


class RecipeBody(StrictModel):
    """The editable content of a recipe (what a version freezes)."""

    part_number: Annotated[str, Field(min_length=1, max_length=64)]
    description: str = ""
    steps: Annotated[list[RecipeStep], Field(min_length=1, max_length=50)]


@dataclass(frozen=True, slots=True)
class RecipeIssue:
    """Why a recipe (or a load) is refused: key path and a human reason."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True)
class Recipe:
    """One immutable version of a recipe."""

    id: str
    version: int
    body: RecipeBody
    created_ts: float
    user: str
    comment: str = ""

    @property
    def part_number(self) -> str:
        return self.body.part_number

    @property
    def steps(self) -> list[RecipeStep]:
        return self.body.steps

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "created_ts": self.created_ts, "user": self.user,
                "comment": self.comment, "body": self.body.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        return cls(id=str(d["id"]), version=int(d["version"]), body=RecipeBody.model_validate(d["body"]),
                   created_ts=float(d["created_ts"]), user=str(d["user"]), comment=str(d.get("comment") or ""))


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_recipe(data: Mapping[str, Any] | RecipeBody) -> tuple[RecipeBody | None, list[RecipeIssue]]:
    """API input to a body, or every type error with its key path."""
    if isinstance(data, RecipeBody):
        return data, []
    try:
        return RecipeBody.model_validate(data), []
    except ValidationError as e:
        return None, [RecipeIssue(_path(err["loc"]), err["msg"]) for err in e.errors()]


def rectifier_loop(tank: TankConfig) -> LoopConfig | None:
    """The tank's rectifier loop (the one whose output the plating layer sets), if any."""
    for loop in tank.loops:
        if loop.kind is LoopKind.RECTIFIER:
            return loop
    return None


def _tank_index(plant: PlantConfig) -> dict[str, TankConfig]:
    return {t.id: t for t in plant.tanks}


def check_recipe(body: RecipeBody, plant: PlantConfig) -> list[RecipeIssue]:
    """Cross-check a recipe against the plant. Empty list = acceptable."""
    issues: list[RecipeIssue] = []
    tanks = _tank_index(plant)
    for i, step in enumerate(body.steps):
        base = f"steps[{i}]"
        tank = tanks.get(step.tank)
        if tank is None:
            issues.append(RecipeIssue(f"{base}.tank", f"unknown tank {step.tank!r} (known: {', '.join(tanks)})"))
            continue
        if step.dwell_min_s > step.dwell_max_s:
            issues.append(RecipeIssue(f"{base}.dwell_min_s",
                                      f"dwell_min_s ({step.dwell_min_s:g}) is greater than dwell_max_s "
                                      f"({step.dwell_max_s:g})"))
        for key, group in (("temperature_c", "temperature"), ("ph", "ph")):
            win: Range | None = getattr(step, key)
            if win is None:
                continue
            tank_win: Range | None = getattr(tank.window, key)
            if group not in tank.sensors:
                issues.append(RecipeIssue(f"{base}.{key}",
                                          f"tank {tank.id!r} has no {group!r} sensor, the window cannot be checked"))
            elif tank_win is not None and not win.within(tank_win):
                issues.append(RecipeIssue(f"{base}.{key}",
                                          f"window {win.min:g}..{win.max:g} is outside the process window of tank "
                                          f"{tank.id!r} ({tank_win.min:g}..{tank_win.max:g})"))
        if step.current_density_a_dm2 is not None and step.current_a is not None:
            issues.append(RecipeIssue(f"{base}.current_a", "give current_density_a_dm2 or current_a, not both"))
        if step.electrical:
            loop = rectifier_loop(tank)
            if loop is None:
                issues.append(RecipeIssue(f"{base}.current_density_a_dm2" if step.current_density_a_dm2 is not None
                                          else f"{base}.current_a", f"tank {tank.id!r} has no rectifier loop"))
            elif step.current_density_a_dm2 is not None and not loop.setpoint.limits.contains(step.current_density_a_dm2):
                lim = loop.setpoint.limits
                issues.append(RecipeIssue(f"{base}.current_density_a_dm2",
                                          f"{step.current_density_a_dm2:g} A/dm2 is outside the setpoint limits of "
                                          f"loop {tank.id}.{loop.id} ({lim.min:g}..{lim.max:g})"))
            elif step.current_a is not None and loop.rectifier is not None \
                    and step.current_a > loop.rectifier.max_current_a:
                issues.append(RecipeIssue(f"{base}.current_a",
                                          f"{step.current_a:g} A exceeds the rectifier maximum of tank {tank.id!r} "
                                          f"({loop.rectifier.max_current_a:g} A)"))
        cd_win = tank.window.current_density_a_dm2
        cd = step.current_density_a_dm2
        if cd is not None and cd_win is not None and not cd_win.contains(cd):
            issues.append(RecipeIssue(f"{base}.current_density_a_dm2",
                                      f"{cd:g} A/dm2 is outside the current-density window of tank {tank.id!r} "
                                      f"({cd_win.min:g}..{cd_win.max:g})"))
    return issues


@dataclass(frozen=True, slots=True)
class RecipeResult:
    """Outcome of a recipe change: the new version and its audit event, or the issues."""

    ok: bool
    recipe: Recipe | None = None
    issues: tuple[RecipeIssue, ...] = ()
    event: Event | None = None
    changed: bool = True

    @property
    def reason(self) -> str:
        return "; ".join(str(i) for i in self.issues)


@dataclass
class RecipeBook:
    """Every version of every recipe (kept in memory: a plant has hundreds, not millions)."""

    _versions: dict[str, list[Recipe]] = field(default_factory=dict)

    def add(self, recipe: Recipe) -> None:
        """Insert a stored version (store load, or after :meth:`propose` was persisted)."""
        versions = self._versions.setdefault(recipe.id, [])
        if any(r.version == recipe.version for r in versions):
            raise ValueError(f"recipe {recipe.id!r} version {recipe.version} exists already")
        versions.append(recipe)
        versions.sort(key=lambda r: r.version)

    def ids(self) -> list[str]:
        return sorted(self._versions)

    def latest(self, recipe_id: str) -> Recipe | None:
        versions = self._versions.get(recipe_id)
        return versions[-1] if versions else None

    def get(self, recipe_id: str, version: int | None = None) -> Recipe | None:
        if version is None:
            return self.latest(recipe_id)
        for r in self._versions.get(recipe_id, []):
            if r.version == version:
                return r
        return None

    def versions(self, recipe_id: str) -> list[Recipe]:
        return list(self._versions.get(recipe_id, []))

    def for_part(self, part_number: str) -> Recipe | None:
        """Latest version of the recipe for a part number."""
        for rid in self._versions:
            latest = self.latest(rid)
            if latest is not None and latest.part_number == part_number:
                return latest
        return None

    def propose(
        self,
        recipe_id: str,
        data: Mapping[str, Any] | RecipeBody,
        plant: PlantConfig,
        *,
        user: str,
        ts: float,
        comment: str = "",
    ) -> RecipeResult:
        """Check an edit (or a new recipe) and build the next version with its audit event.

        Pure: the book is unchanged until the caller persists the version and calls :meth:`add`.
        """
        if not _RECIPE_ID_RE.match(recipe_id):
            return RecipeResult(False, issues=(RecipeIssue(
                "id", f"{recipe_id!r} is not a recipe id (1-64 letters, digits, '_', '.', '-')"),))
        body, issues = parse_recipe(data)
        if body is None:
            return RecipeResult(False, issues=tuple(issues))
        issues = check_recipe(body, plant)
        owner = self.for_part(body.part_number)
        if owner is not None and owner.id != recipe_id:
            issues.append(RecipeIssue("part_number",
                                      f"part number {body.part_number!r} already has recipe {owner.id!r}"))
        if issues:
            return RecipeResult(False, issues=tuple(issues))
        old = self.latest(recipe_id)
        if old is not None and old.body == body:
            return RecipeResult(True, recipe=old, changed=False)
        new = Recipe(recipe_id, 1 if old is None else old.version + 1, body, ts, user, comment)
        event = Event(
            ts=ts, kind=EventKind.AUDIT, source=f"recipe:{recipe_id}",
            message=(f"recipe {recipe_id} v{new.version} created" if old is None
                     else f"recipe {recipe_id} changed v{old.version} -> v{new.version}"),
            state="ok", user=user, comment=comment or None,
            data={"action": "recipe_save", "recipe": recipe_id, "version": new.version,
                  "old": None if old is None else old.body.model_dump(mode="json"),
                  "new": body.model_dump(mode="json")},
        )
        return RecipeResult(True, recipe=new, event=event)
