"""Fail-safe interlocks: conditions over validated values force output roles to their safe state.

Semantics (docs/decisions/0002-interlock-latch-semantics.md):

* A condition over a value that is not Good (Bad *or* Uncertain) counts as tripped, whatever its form.
* An interlock trips when any of its conditions is true. While tripped it forces its ``acts_on`` roles
  safe. ``latch: true`` keeps it forcing after the cause clears until an operator resets it; a reset
  while the cause persists is refused with the cause. A trip caused only by inputs still waiting for
  their first data (server start) forces outputs but does not latch.
* First-out: the first condition (in declaration order among those true) at the moment of the trip,
  per interlock; and line-wide, the first interlock that tripped since the line was last all clear.
* Bypass: an engineer may bypass a ``bypassable`` interlock for at most ``max_bypass_s``; it expires
  on the clock. While bypassed the outputs are not forced but the causes are still evaluated and shown.

Everything here is data in, data out: ``now`` is a monotonic time (timers), ``ts`` the epoch time
stamped on events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from scada.conditions import OPS, Condition, ConditionKind, parse_condition
from scada.config.interlocks import InterlockConfig
from scada.events import Event, EventKind
from scada.tags import Quality, QualityReason, Sample

ENGINEER_ROLES = frozenset({"engineer", "admin"})


class InterlockStatus(StrEnum):
    NORMAL = "normal"
    TRIPPED = "tripped"
    """The cause is present: outputs forced safe."""
    LATCHED = "latched"
    """The cause has cleared; outputs stay safe until an operator resets."""
    BYPASSED = "bypassed"


@dataclass(frozen=True, slots=True)
class ConditionResult:
    text: str
    tripped: bool
    reason: str
    waiting: bool = False
    """True only because the input has not delivered its first value yet."""


@dataclass(frozen=True, slots=True)
class InterlockInputs:
    """What the conditions of one tank may refer to: ``ref`` -> sample, and per-group disagreement."""

    values: Mapping[str, Sample]
    disagree: Mapping[str, bool] = field(default_factory=dict)


def evaluate_condition(cond: Condition, inputs: InterlockInputs) -> ConditionResult:
    """One condition, fail-safe: a missing, Bad or Uncertain reference is tripped."""
    s = inputs.values.get(cond.ref)
    if s is None:
        return ConditionResult(cond.text, True, f"{cond.ref} has no value (not connected to any signal)")
    if s.quality is not Quality.GOOD:
        why = f"{cond.ref} is {s.quality.label} ({s.reason}{': ' + s.detail if s.detail else ''})"
        return ConditionResult(cond.text, True, why, waiting=s.reason is QualityReason.WAITING_FOR_INITIAL_DATA)
    v = s.value
    if cond.kind is ConditionKind.NOT_GOOD:
        return ConditionResult(cond.text, False, "")
    if cond.kind is ConditionKind.DISAGREE:
        d = bool(inputs.disagree.get(cond.ref, False))
        return ConditionResult(cond.text, d, f"the probes of {cond.ref} disagree" if d else "")
    if cond.kind is ConditionKind.IS_TRUE:
        return ConditionResult(cond.text, bool(v), f"{cond.ref} is true" if v else "")
    if cond.kind is ConditionKind.IS_FALSE:
        return ConditionResult(cond.text, not v, f"{cond.ref} is false" if not v else "")
    if isinstance(v, bool) or not isinstance(v, int | float):
        return ConditionResult(cond.text, True, f"{cond.ref} is not a number ({v!r})")
    hit = OPS[cond.op or ">"](float(v), float(cond.value or 0.0))
    return ConditionResult(cond.text, hit, f"{cond.ref} = {float(v):g} {cond.op} {cond.value:g}" if hit else "")


@dataclass(frozen=True, slots=True)
class ActionResult:
    """Outcome of a reset or bypass request: ``ok`` False always carries the reason."""

    ok: bool
    reason: str
    event: Event | None = None
    kind: str = "ok"
    """Refusal class: ``unknown`` | ``forbidden`` | ``conflict`` | ``interlock`` | ``limit`` | ``invalid``."""


@dataclass
class InterlockState:
    """Runtime state of one interlock (owned by :class:`InterlockEngine`)."""

    tank: str
    config: InterlockConfig
    area: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    cause_active: bool = False
    latched: bool = False
    first_out: str | None = None
    first_out_reason: str = ""
    trip_ts: float | None = None
    causes: tuple[ConditionResult, ...] = ()
    bypass_until: float | None = None
    bypass_user: str | None = None
    bypass_comment: str = ""
    status: InterlockStatus = InterlockStatus.NORMAL

    @property
    def key(self) -> str:
        return f"{self.tank}.{self.config.id}"

    def bypassed(self, now: float) -> bool:
        return self.bypass_until is not None and now < self.bypass_until

    @property
    def forcing(self) -> bool:
        return self.status in (InterlockStatus.TRIPPED, InterlockStatus.LATCHED)


@dataclass(frozen=True, slots=True)
class InterlockView:
    """Read-only state of one interlock after a scan (for the HMI, alarms and the ScanResult)."""

    tank: str
    id: str
    status: InterlockStatus
    forcing: bool
    acts_on: tuple[str, ...]
    causes: tuple[str, ...]
    """Reasons of the conditions true now (``temperature = 70 > 68``)."""
    conditions: tuple[str, ...]
    """Config text of the conditions true now (``temperature > 68``)."""
    first_out: str | None
    first_out_reason: str
    trip_ts: float | None
    bypass_remaining_s: float | None
    bypass_user: str | None
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "tank": self.tank, "id": self.id, "status": str(self.status), "forcing": self.forcing,
            "acts_on": list(self.acts_on), "causes": list(self.causes), "conditions": list(self.conditions),
            "first_out": self.first_out,
            "first_out_reason": self.first_out_reason, "trip_ts": self.trip_ts,
            "bypass_remaining_s": self.bypass_remaining_s, "bypass_user": self.bypass_user,
            "description": self.description,
        }


@dataclass(frozen=True, slots=True)
class LineFirstOut:
    tank: str
    interlock: str
    condition: str
    reason: str
    ts: float


@dataclass(frozen=True, slots=True)
class InterlockResult:
    """Output of one evaluation: roles forced safe per tank, why, and the events of this scan."""

    forced: Mapping[str, frozenset[str]]
    """tank id -> output roles forced to their safe value."""
    forced_by: Mapping[tuple[str, str], tuple[str, ...]]
    """(tank, role) -> interlock ids forcing it."""
    views: Mapping[str, InterlockView]
    """``tank.interlock`` -> state."""
    events: tuple[Event, ...]
    line_first_out: LineFirstOut | None


class InterlockEngine:
    """All interlocks of a line. Call :meth:`evaluate` once per scan with each tank's inputs."""

    def __init__(self, tanks: Iterable[tuple[str, str | None, Iterable[InterlockConfig]]]) -> None:
        self.states: dict[str, InterlockState] = {}
        for tank, area, configs in tanks:
            for c in configs:
                st = InterlockState(tank=tank, config=c, area=area,
                                    conditions=[parse_condition(t) for t in c.trip_when])
                self.states[st.key] = st
        self.line_first_out: LineFirstOut | None = None
        self._now = 0.0

    # ------------------------------------------------------------------ evaluation

    def _event(self, st: InterlockState, ts: float, state: str, message: str, user: str | None = None,
               comment: str | None = None, **data: object) -> Event:
        return Event(ts=ts, kind=EventKind.INTERLOCK, source=st.key, message=message, tank=st.tank,
                     area=st.area, priority=st.config.priority, state=state, user=user, comment=comment,
                     data={"acts_on": list(st.config.acts_on), **data})

    def evaluate(self, inputs: Mapping[str, InterlockInputs], now: float, ts: float) -> InterlockResult:
        """Evaluate every interlock; a tank missing from ``inputs`` has every condition tripped."""
        self._now = now
        events: list[Event] = []
        empty = InterlockInputs({})
        for st in self.states.values():
            tank_inputs = inputs.get(st.tank, empty)
            try:
                results = tuple(evaluate_condition(c, tank_inputs) for c in st.conditions)
            except Exception as e:  # noqa: BLE001 - an evaluation bug must trip, never pass
                results = (ConditionResult("<evaluation>", True, f"evaluation failed: {e!r}"),)
            true = tuple(r for r in results if r.tripped)
            st.causes = true
            was = st.status
            st.cause_active = bool(true)
            if st.bypass_until is not None and not st.bypassed(now):
                events.append(self._event(st, ts, "bypass_expired", f"{st.key}: bypass by {st.bypass_user} expired",
                                          user=st.bypass_user))
                st.bypass_until = None
                st.bypass_user = None
                st.bypass_comment = ""
            if st.bypassed(now):
                st.status = InterlockStatus.BYPASSED
                continue
            if true:
                if was is not InterlockStatus.TRIPPED:
                    if was is not InterlockStatus.LATCHED or st.first_out is None:
                        st.first_out = true[0].text
                        st.first_out_reason = true[0].reason
                        st.trip_ts = ts
                    events.append(self._event(
                        st, ts, "tripped", f"{st.key} tripped: {true[0].reason}",
                        first_out=st.first_out, causes=[r.reason for r in true]))
                    if self.line_first_out is None:
                        self.line_first_out = LineFirstOut(st.tank, st.config.id, st.first_out or "",
                                                           st.first_out_reason, ts)
                st.status = InterlockStatus.TRIPPED
                if st.config.latch and not all(r.waiting for r in true):
                    st.latched = True
            elif st.latched:
                st.status = InterlockStatus.LATCHED
                if was is InterlockStatus.TRIPPED:
                    events.append(self._event(st, ts, "latched",
                                              f"{st.key}: cause cleared, waiting for reset",
                                              first_out=st.first_out))
            else:
                st.status = InterlockStatus.NORMAL
                if was in (InterlockStatus.TRIPPED, InterlockStatus.LATCHED):
                    events.append(self._event(st, ts, "normal", f"{st.key}: cleared", first_out=st.first_out))
                st.first_out = None
                st.first_out_reason = ""
                st.trip_ts = None
        if not any(s.forcing for s in self.states.values()):
            self.line_first_out = None
        return self._result(now, tuple(events))

    def _result(self, now: float, events: tuple[Event, ...]) -> InterlockResult:
        forced: dict[str, set[str]] = {}
        forced_by: dict[tuple[str, str], list[str]] = {}
        views: dict[str, InterlockView] = {}
        for st in self.states.values():
            if st.forcing:
                for role in st.config.acts_on:
                    forced.setdefault(st.tank, set()).add(role)
                    forced_by.setdefault((st.tank, role), []).append(st.config.id)
            views[st.key] = self.view(st.key, now)
        return InterlockResult(
            forced={k: frozenset(v) for k, v in forced.items()},
            forced_by={k: tuple(v) for k, v in forced_by.items()},
            views=views, events=events, line_first_out=self.line_first_out,
        )

    def view(self, key: str, now: float | None = None) -> InterlockView:
        st = self.states[key]
        now = self._now if now is None else now
        return InterlockView(
            tank=st.tank, id=st.config.id, status=st.status, forcing=st.forcing,
            acts_on=tuple(st.config.acts_on), causes=tuple(r.reason for r in st.causes),
            conditions=tuple(r.text for r in st.causes),
            first_out=st.first_out, first_out_reason=st.first_out_reason, trip_ts=st.trip_ts,
            bypass_remaining_s=(st.bypass_until - now) if st.bypassed(now) else None,  # type: ignore[operator]
            bypass_user=st.bypass_user if st.bypassed(now) else None,
            description=st.config.description,
        )

    # ------------------------------------------------------------------ actions

    def _get(self, tank: str, interlock: str) -> InterlockState | None:
        return self.states.get(f"{tank}.{interlock}")

    def restore_latched(self, journal: Iterable[Event]) -> list[str]:
        """Re-latch the interlocks whose last journal record (newest first) says tripped or latched.

        After a restart (or a kill -9) a latched trip must still wait for an operator reset: the cause
        may have cleared while we were down, but nobody has looked at it. Bypasses are deliberately not
        restored (a restart ends them: fail-safe). Returns the keys re-latched.
        """
        seen: set[str] = set()
        restored: list[str] = []
        for ev in journal:
            if ev.kind is not EventKind.INTERLOCK or ev.source in seen:
                continue
            if ev.state not in ("tripped", "latched", "normal", "reset"):
                continue  # bypass records do not decide the latch
            seen.add(ev.source)
            st = self.states.get(ev.source)
            if st is None or not st.config.latch or ev.state not in ("tripped", "latched"):
                continue
            st.latched = True
            st.status = InterlockStatus.LATCHED
            st.first_out = str(ev.data.get("first_out") or "") or None
            st.first_out_reason = f"restored after restart ({ev.message})"
            st.trip_ts = ev.ts
            restored.append(st.key)
        return restored

    def reset(self, tank: str, interlock: str, user: str, now: float, ts: float) -> ActionResult:
        """Operator reset of a latched interlock: refused while the cause persists (the cause is named)."""
        st = self._get(tank, interlock)
        if st is None:
            return ActionResult(False, f"unknown interlock {tank}.{interlock}", kind="unknown")
        if st.cause_active:
            causes = "; ".join(r.reason for r in st.causes)
            return ActionResult(False, f"cannot reset {st.key}: the cause persists ({causes})", kind="interlock")
        if not st.latched:
            return ActionResult(False, f"{st.key} is not latched: nothing to reset", kind="conflict")
        st.latched = False
        first = st.first_out
        st.first_out = None
        st.first_out_reason = ""
        st.trip_ts = None
        if st.status is not InterlockStatus.BYPASSED:
            st.status = InterlockStatus.NORMAL
        if not any(s.forcing for s in self.states.values()):
            self.line_first_out = None
        ev = self._event(st, ts, "reset", f"{st.key} reset by {user}", user=user, first_out=first)
        return ActionResult(True, "reset", ev)

    def bypass(self, tank: str, interlock: str, user: str, role: str, duration_s: float, now: float,
               ts: float, comment: str = "") -> ActionResult:
        """Engineer bypass for ``duration_s`` (never for a non-bypassable interlock)."""
        st = self._get(tank, interlock)
        if st is None:
            return ActionResult(False, f"unknown interlock {tank}.{interlock}", kind="unknown")
        if role not in ENGINEER_ROLES:
            return ActionResult(False, f"a bypass needs the engineer role (user {user!r} is {role!r})", kind="forbidden")
        if not st.config.bypassable:
            return ActionResult(False, f"{st.key} is not bypassable (e-stop / dry-fire protection)", kind="conflict")
        if not duration_s > 0:
            return ActionResult(False, f"bypass duration must be positive, got {duration_s!r}", kind="invalid")
        if duration_s > st.config.max_bypass_s:
            return ActionResult(False, f"bypass of {duration_s:g} s exceeds the maximum {st.config.max_bypass_s:g} s "
                                       f"for {st.key}", kind="limit")
        if not comment.strip():
            return ActionResult(False, "a bypass needs a comment saying why (it is audited)", kind="invalid")
        st.bypass_until = now + duration_s
        st.bypass_user = user
        st.bypass_comment = comment
        st.status = InterlockStatus.BYPASSED
        ev = self._event(st, ts, "bypassed", f"{st.key} bypassed by {user} for {duration_s:g} s",
                         user=user, comment=comment, duration_s=duration_s)
        return ActionResult(True, "bypassed", ev)

    def cancel_bypass(self, tank: str, interlock: str, user: str, now: float, ts: float) -> ActionResult:
        st = self._get(tank, interlock)
        if st is None:
            return ActionResult(False, f"unknown interlock {tank}.{interlock}", kind="unknown")
        if not st.bypassed(now):
            return ActionResult(False, f"{st.key} is not bypassed", kind="conflict")
        st.bypass_until = None
        st.bypass_user = None
        st.bypass_comment = ""
        # The next scan evaluates the causes again (and trips, with its event, if they persist).
        st.status = InterlockStatus.LATCHED if st.latched else InterlockStatus.NORMAL
        ev = self._event(st, ts, "bypass_cancelled", f"{st.key} bypass cancelled by {user}", user=user)
        return ActionResult(True, "bypass cancelled", ev)
