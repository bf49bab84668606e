"""The alarm engine: definitions + detection + the ISA-18.2 state machine + operator commands + metrics.

No I/O and no wall clock inside: the scan engine calls :meth:`AlarmEngine.evaluate` once per scan with
the validated values and the time; operator commands carry their time (or read the injected clock).
Every change is returned *and* offered to every subscriber (lossless, see ``alarms/stream.py``); the
journal writer is one such subscriber.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from alarms.definitions import AlarmDef, DefKind, build_definitions, external_def, shared_interlock_id
from alarms.detect import DelayFilter, DetectorState, condition_true, raw_condition
from alarms.model import AlarmState, Trigger, step
from alarms.stream import AlarmEvent, AlarmSubscription, FloodEvent, StreamItem
from scada.config import PlantConfig, Priority
from scada.config.alarms import AlarmSettings
from scada.tags import Sample

SuppressPredicate = Callable[[AlarmDef, Mapping[str, Sample]], str | None]
"""Suppression by design: returns the reason to hide the alarm now, or ``None``."""

SYSTEM_USER = "system"


@dataclass
class AlarmStatus:
    """Runtime state of one alarm (owned by the engine)."""

    defn: AlarmDef
    state: AlarmState = AlarmState.NORMAL
    active: bool = False
    value: float | None = None
    message: str = ""
    since: float | None = None
    last_change: float | None = None
    count: int = 0
    ack_user: str | None = None
    ack_ts: float | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    shelved_until: float | None = None
    suppress_reason: str | None = None
    oos_by: str | None = None
    oos_reason: str | None = None
    active_since: float | None = None
    """When the process condition became active (standing-alarm metric)."""
    external_raw: bool | None = None
    filter: DelayFilter = field(default_factory=DelayFilter)
    detector: DetectorState = field(default_factory=DetectorState)
    activations: deque[float] = field(default_factory=deque)

    @property
    def annunciate(self) -> bool:
        return self.state.unacknowledged and self.defn.requires_ack


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Outcome of an operator or system command: ``ok`` False always carries the reason."""

    ok: bool
    reason: str = ""
    events: tuple[AlarmEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatterEntry:
    alarm_id: str
    activations_window: int
    """Activations in the chatter window (default 60 s)."""
    activations_10min: int


@dataclass(frozen=True, slots=True)
class AlarmSummary:
    """What the HMI header, /api/status and /metrics show."""

    total: int
    by_state: dict[str, int]
    by_priority: dict[str, int]
    """Alarms on the list (unack, acked, rtn_unack) per priority."""
    unacknowledged: int
    annunciating: bool
    flood: dict[str, bool]
    """Per area: True while flooding."""
    alarms_last_10min: int
    alarms_last_10min_by_area: dict[str, int]
    standing: list[str]
    chattering: list[ChatterEntry]
    """Top offenders first."""
    stream_overflows: int


@dataclass(frozen=True, slots=True)
class RestoreResult:
    restored: int
    unknown: tuple[str, ...] = ()
    """Journal ids that are no longer defined (alarm removed from the config): skipped."""


class AlarmEngine:
    """All alarms of a plant. Build once per runtime; feed it once per scan."""

    def __init__(
        self,
        plant: PlantConfig,
        clock: Callable[[], float] = time.time,
        *,
        settings: AlarmSettings | None = None,
        suppress: SuppressPredicate | None = None,
        definitions: Iterable[AlarmDef] | None = None,
    ) -> None:
        self.plant = plant
        self.clock = clock
        self.settings = settings or AlarmSettings()
        self._suppress = suppress
        self._tank_in_service = {t.id: t.in_service for t in plant.tanks}
        self._tank_suppressed: dict[str, str] = {}
        self._alarms: dict[str, AlarmStatus] = {}
        defs = list(definitions) if definitions is not None else build_definitions(plant)
        for d in defs:
            self._add(d)
        self._subs: list[AlarmSubscription] = []
        self.stream_overflows = 0
        self._new_alarms: dict[str, deque[float]] = {}
        self._flood: dict[str, bool] = {}
        self._shared_trips: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ definitions

    def _add(self, d: AlarmDef) -> AlarmStatus:
        st = AlarmStatus(defn=d, message=d.message,
                         filter=DelayFilter(on_delay_s=d.on_delay_s, off_delay_s=d.off_delay_s))
        self._alarms[d.id] = st
        return st

    def define_external(
        self,
        alarm_id: str,
        *,
        priority: Priority | str = Priority.HIGH,
        message: str = "",
        area: str = "system",
        tank: str | None = None,
        on_delay_s: float = 0.0,
        off_delay_s: float = 0.0,
    ) -> AlarmDef:
        """Register an alarm raised by code through :meth:`set_condition` (idempotent for the same id)."""
        if alarm_id in self._alarms:
            d = self._alarms[alarm_id].defn
            if d.kind not in (DefKind.EXTERNAL, DefKind.INTERLOCK):
                raise ValueError(f"alarm {alarm_id!r} is already defined as a {d.kind.value} alarm")
            return d
        d = external_def(alarm_id, priority=priority, message=message, area=area, tank=tank,
                         on_delay_s=on_delay_s, off_delay_s=off_delay_s)
        self._add(d)
        return d

    @property
    def definitions(self) -> list[AlarmDef]:
        return [s.defn for s in self._alarms.values()]

    def __contains__(self, alarm_id: str) -> bool:
        return alarm_id in self._alarms

    # ------------------------------------------------------------------ the scan

    def evaluate(
        self,
        now: float,
        values: Mapping[str, Sample],
        setpoints: Mapping[str, float] | None = None,
    ) -> list[StreamItem]:
        """Evaluate every value-based alarm on this scan's validated values; expire shelves; track floods.

        ``values``: the scan's snapshot keyed by tag name (``<tank prefix>.<group>.pv`` for sensor groups,
        the input tag for inputs, ``<tp>.interlock.<id>`` for interlocks: pass the whole tag-store snapshot
        after the scan published). ``setpoints``: optional overrides keyed ``<tank prefix>.<loop id>.sp`` (or
        ``<tank prefix>.<group>.sp``); otherwise those keys are read from ``values``. A missing or Bad value
        holds the alarm as it is.
        """
        setpoints = setpoints or {}
        out: list[StreamItem] = []
        for st in self._alarms.values():
            d = st.defn
            if d.tag is None:
                if d.tags:
                    self._interlock_from_values(st, values)
                raw = st.external_raw
            else:
                sample = values.get(d.tag)
                sp = None
                for key in d.setpoint_keys:
                    if key in setpoints:
                        sp = setpoints[key]
                        break
                    spv = values.get(key)
                    if spv is not None and spv.usable and isinstance(spv.value, int | float):
                        sp = float(spv.value)  # the scan engine publishes <tp>.<loop>.sp as a tag
                        break
                raw = raw_condition(d, st.detector, sample, sp, now)
                if raw is not None:
                    st.detector.raw = raw
                    if sample is not None and sample.usable and isinstance(sample.value, int | float):
                        st.value = float(sample.value)
            reason = self._suppression(d, values)
            if reason and st.state is not AlarmState.SUPPRESSED:
                if st.state is not AlarmState.OUT_OF_SERVICE:
                    st.suppress_reason = reason
                self._fire(st, Trigger.SUPPRESS, now, out, comment=reason)
                self._apply_condition(st, raw, now, out)
            elif not reason and st.state is AlarmState.SUPPRESSED:
                self._apply_condition(st, raw, now, out)  # hand back with the current condition
                self._fire(st, Trigger.UNSUPPRESS, now, out)
            else:
                self._apply_condition(st, raw, now, out)
        out += self._housekeeping(now)
        self._publish(out)
        return out

    def tick(self, now: float | None = None) -> list[StreamItem]:
        """Time-only work (shelve expiry, delays of external alarms, flood window) between scans."""
        now = self.clock() if now is None else now
        out: list[StreamItem] = []
        for st in self._alarms.values():
            if st.defn.tag is None:
                self._apply_condition(st, st.external_raw, now, out)
        out += self._housekeeping(now)
        self._publish(out)
        return out

    @staticmethod
    def _interlock_from_values(st: AlarmStatus, values: Mapping[str, Sample]) -> None:
        """Interlock trip state from the scan engine's ``<tp>.interlock.<id>`` tags (first out in the detail)."""
        present = [values[t] for t in st.defn.tags if t in values]
        if not present:
            return
        tripped = [s for s in present if s.value is not None and bool(s.value)]
        st.external_raw = bool(tripped)
        if tripped and not st.active:
            detail = next((s.detail for s in tripped if s.detail), "")
            st.message = st.defn.message + (f" ({detail})" if detail else "")

    def _apply_condition(self, st: AlarmStatus, raw: bool | None, now: float, out: list[StreamItem]) -> None:
        was = st.filter.state
        active = st.filter.update(raw, now)
        if st.defn.kind is DefKind.QUALITY and active and st.detector.detail:
            st.message = f"{st.defn.message} ({st.detector.detail})"
        if active == was:
            return
        st.active = active
        if active:
            st.active_since = now
            st.activations.append(now)
            self._trim(st.activations, now, max(600.0, self.settings.chatter_window_s))
            self._fire(st, Trigger.ACTIVATE, now, out)
        else:
            st.active_since = None
            self._fire(st, Trigger.CLEAR, now, out)

    def _suppression(self, d: AlarmDef, values: Mapping[str, Sample]) -> str | None:
        if d.tank is not None:
            if not self._tank_in_service.get(d.tank, True):
                return f"tank {d.tank} out of service"
            if d.tank in self._tank_suppressed:
                return self._tank_suppressed[d.tank]
        for rc in d.suppress_when:
            if condition_true(rc.condition, values.get(rc.tag)):
                return f"suppressed while {rc.condition.text}"
        if self._suppress is not None:
            return self._suppress(d, values)
        return None

    # ------------------------------------------------------------------ transitions

    def _fire(self, st: AlarmStatus, trigger: Trigger, now: float, out: list[StreamItem], *,
              user: str | None = None, comment: str | None = None) -> str:
        """Apply one trigger; on a change record the event. Returns the refusal reason ('' when ok)."""
        prev = st.state
        res = step(prev, trigger, active=st.active, requires_ack=st.defn.requires_ack)
        if res.refused:
            return res.refused
        if not res.changed:
            return ""
        new = res.state
        on_list = (AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK)
        if new in (AlarmState.UNACK, AlarmState.ACKED) and prev not in on_list:
            # a new occurrence (from normal, or handed back active after shelve/suppression/OOS)
            st.since, st.count = now, 1
            st.ack_user = st.ack_ts = None
            if st.defn.requires_ack:
                self._count_new_alarm(st.defn.area, now)
        elif trigger is Trigger.ACTIVATE:
            st.count += 1  # the same fault again before anyone acknowledged it: one alarm, N repeats
        if trigger is Trigger.ACK:
            st.ack_user, st.ack_ts = user, now
        if new is AlarmState.NORMAL:
            st.since = None
            st.count = 0
        if prev is AlarmState.SHELVED and new is not AlarmState.SHELVED:
            st.shelved_by = st.shelve_reason = st.shelved_until = None
        if prev is AlarmState.SUPPRESSED and new is not AlarmState.SUPPRESSED:
            st.suppress_reason = None
        if prev is AlarmState.OUT_OF_SERVICE and new is not AlarmState.OUT_OF_SERVICE:
            st.oos_by = st.oos_reason = None
        st.state = new
        st.last_change = now
        out.append(self._event(st, trigger, prev, now, user=user, comment=comment))
        return ""

    def _event(self, st: AlarmStatus, trigger: Trigger | None, prev: AlarmState, now: float, *,
               user: str | None = None, comment: str | None = None) -> AlarmEvent:
        d = st.defn
        return AlarmEvent(
            ts=now, alarm_id=d.id, trigger=trigger, state=st.state, prev_state=prev, active=st.active,
            priority=d.priority.value, area=d.area, tank=d.tank, message=st.message, value=st.value,
            user=user, comment=comment, count=st.count, since=st.since, ack_user=st.ack_user,
            ack_ts=st.ack_ts, shelved_by=st.shelved_by, shelve_reason=st.shelve_reason,
            shelved_until=st.shelved_until, suppress_reason=st.suppress_reason, oos_by=st.oos_by,
            oos_reason=st.oos_reason, changed_ts=st.last_change,
        )

    def _command(self, alarm_id: str, trigger: Trigger, now: float | None, *, user: str | None,
                 comment: str | None = None, prepare: Callable[[AlarmStatus], None] | None = None) -> CommandResult:
        st = self._alarms.get(alarm_id)
        if st is None:
            return CommandResult(False, f"unknown alarm {alarm_id!r}")
        now = self.clock() if now is None else now
        refused = step(st.state, trigger, active=st.active, requires_ack=st.defn.requires_ack).refused
        if refused:
            return CommandResult(False, f"{alarm_id}: {refused}")
        if prepare:
            prepare(st)
        out: list[StreamItem] = []
        reason = self._fire(st, trigger, now, out, user=user, comment=comment)
        if reason:
            return CommandResult(False, f"{alarm_id}: {reason}")
        self._publish(out)
        return CommandResult(True, "", tuple(e for e in out if isinstance(e, AlarmEvent)))

    # ------------------------------------------------------------------ operator commands

    def ack(self, alarm_id: str, user: str, comment: str = "", now: float | None = None) -> CommandResult:
        """Acknowledge one alarm. Refused: unknown id, no user, already acknowledged, shelved/suppressed/OOS."""
        if not user or not user.strip():
            return CommandResult(False, "acknowledge needs a user")
        st = self._alarms.get(alarm_id)
        if st is not None and not st.defn.requires_ack:
            return CommandResult(False, f"{alarm_id}: a log-only alarm needs no acknowledgement")
        return self._command(alarm_id, Trigger.ACK, now, user=user, comment=comment or None)

    def ack_all(self, user: str, comment: str = "", now: float | None = None, *, area: str | None = None,
                tank: str | None = None) -> CommandResult:
        """Acknowledge every unacknowledged alarm (of an area / tank); ok when at least one was."""
        if not user or not user.strip():
            return CommandResult(False, "acknowledge needs a user")
        events: list[AlarmEvent] = []
        for st in list(self._alarms.values()):
            if not st.annunciate or (area and st.defn.area != area) or (tank and st.defn.tank != tank):
                continue
            r = self._command(st.defn.id, Trigger.ACK, now, user=user, comment=comment or None)
            events += r.events
        if not events:
            return CommandResult(False, "nothing to acknowledge")
        return CommandResult(True, "", tuple(events))

    def shelve(self, alarm_id: str, user: str, reason: str, duration_s: float,
               now: float | None = None) -> CommandResult:
        """Hide an alarm for ``duration_s`` (<= max shelve time). Needs a user and a reason."""
        if not user or not user.strip():
            return CommandResult(False, "shelving needs a user")
        if not reason or not reason.strip():
            return CommandResult(False, "shelving needs a reason")
        if not duration_s or duration_s <= 0:
            return CommandResult(False, "shelve duration must be positive")
        if duration_s > self.settings.max_shelve_s:
            return CommandResult(False, f"shelve duration {duration_s:g} s is beyond the maximum "
                                        f"shelve time of {self.settings.max_shelve_s:g} s")
        st = self._alarms.get(alarm_id)
        if st is not None and not st.defn.requires_ack:
            return CommandResult(False, f"{alarm_id}: a log-only alarm is never on the list; nothing to shelve")
        t = self.clock() if now is None else now

        def prepare(s: AlarmStatus) -> None:
            s.shelved_by, s.shelve_reason, s.shelved_until = user, reason, t + duration_s

        return self._command(alarm_id, Trigger.SHELVE, t, user=user, comment=reason, prepare=prepare)

    def unshelve(self, alarm_id: str, user: str, comment: str = "", now: float | None = None) -> CommandResult:
        """Return a shelved alarm to the list (active: as a new unacknowledged alarm)."""
        if not user or not user.strip():
            return CommandResult(False, "unshelving needs a user")
        return self._command(alarm_id, Trigger.UNSHELVE, now, user=user, comment=comment or None)

    def set_out_of_service(self, alarm_id: str, user: str, out_of_service: bool = True, reason: str = "",
                           now: float | None = None) -> CommandResult:
        """Remove an alarm from service (maintenance; needs a reason) or return it to service."""
        if not user or not user.strip():
            return CommandResult(False, "out of service needs a user")
        if out_of_service:
            if not reason or not reason.strip():
                return CommandResult(False, "removing an alarm from service needs a reason")

            def prepare(s: AlarmStatus) -> None:
                s.oos_by, s.oos_reason = user, reason

            return self._command(alarm_id, Trigger.REMOVE, now, user=user, comment=reason, prepare=prepare)
        return self._command(alarm_id, Trigger.RETURN, now, user=user, comment=reason or None)

    def set_tank_suppressed(self, tank_id: str, reason: str | None) -> CommandResult:
        """Suppress every alarm of a tank by design (idle, draining) until called with ``None``.

        Applied on the next :meth:`evaluate`.
        """
        if tank_id not in self._tank_in_service:
            return CommandResult(False, f"unknown tank {tank_id!r}")
        if reason:
            self._tank_suppressed[tank_id] = reason
        else:
            self._tank_suppressed.pop(tank_id, None)
        return CommandResult(True)

    # ------------------------------------------------------------------ conditions set by code

    def set_condition(self, alarm_id: str, active: bool, value: float | None = None, message: str = "",
                      now: float | None = None) -> CommandResult:
        """Set the condition of an external/system/interlock alarm (delays apply; ``tick`` advances them)."""
        st = self._alarms.get(alarm_id)
        if st is None:
            return CommandResult(False, f"unknown alarm {alarm_id!r}: register it with define_external")
        if st.defn.tag is not None:
            return CommandResult(False, f"{alarm_id} is evaluated from {st.defn.tag!r}, not set by code")
        now = self.clock() if now is None else now
        st.external_raw = bool(active)
        if value is not None:
            st.value = float(value)
        if message and active:
            st.message = message
        elif active is False and not st.active:
            st.message = st.defn.message
        out: list[StreamItem] = []
        self._apply_condition(st, st.external_raw, now, out)
        self._publish(out)
        return CommandResult(True, "", tuple(e for e in out if isinstance(e, AlarmEvent)))

    def set_interlock(self, tank_id: str, interlock_id: str, tripped: bool, first_out: str = "",
                      now: float | None = None) -> CommandResult:
        """Report an interlock trip state; ``first_out`` (the condition that tripped first) goes in the message.

        Interlocks tripped only by line signals (e-stop) share one ``line.interlock.<id>`` alarm: it is
        active while any tank reports it tripped.
        """
        alarm_id = f"{tank_id}.interlock.{interlock_id}"
        if alarm_id not in self._alarms and shared_interlock_id(interlock_id) in self._alarms:
            alarm_id = shared_interlock_id(interlock_id)
            members = self._shared_trips.setdefault(alarm_id, set())
            if tripped:
                members.add(tank_id)
            else:
                members.discard(tank_id)
            tripped = bool(members)
        st = self._alarms.get(alarm_id)
        if st is None:
            return CommandResult(False, f"unknown interlock alarm {alarm_id!r}")
        msg = st.defn.message + (f" (first out: {first_out})" if first_out else "")
        if st.active and tripped:
            msg = ""  # keep the first-out of the trip already showing
        return self.set_condition(alarm_id, tripped, message=msg, now=now)

    # ------------------------------------------------------------------ housekeeping, floods, metrics

    @staticmethod
    def _trim(dq: deque[float], now: float, window: float) -> None:
        while dq and now - dq[0] >= window:
            dq.popleft()

    def _count_new_alarm(self, area: str, now: float) -> None:
        self._new_alarms.setdefault(area, deque()).append(now)

    def _housekeeping(self, now: float) -> list[StreamItem]:
        out: list[StreamItem] = []
        for st in self._alarms.values():
            if st.state is AlarmState.SHELVED and st.shelved_until is not None and now >= st.shelved_until:
                self._fire(st, Trigger.UNSHELVE, now, out, user=SYSTEM_USER, comment="shelve expired")
        s = self.settings
        for area, dq in self._new_alarms.items():
            self._trim(dq, now, s.flood_window_s)
            n = len(dq)
            flooding = self._flood.get(area, False)
            if not flooding and n > s.flood_start:
                self._flood[area] = True
                out.append(FloodEvent(now, area, True, n))
            elif flooding and n < s.flood_end:
                self._flood[area] = False
                out.append(FloodEvent(now, area, False, n))
        return out

    def _publish(self, items: list[StreamItem]) -> None:
        if items:
            for sub in list(self._subs):
                sub._offer(items)

    def subscribe(self, name: str = "consumer", maxsize: int | None = None) -> AlarmSubscription:
        """A lossless queue of every :class:`AlarmEvent` / :class:`FloodEvent` from now on."""
        sub = AlarmSubscription(name=name, maxsize=maxsize or self.settings.stream_maxsize,
                                _on_close=self._drop)
        self._subs.append(sub)
        return sub

    def _drop(self, sub: AlarmSubscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        if sub.close_reason.startswith("overflow"):
            self.stream_overflows += 1

    # ------------------------------------------------------------------ views

    @property
    def annunciating(self) -> bool:
        """True while any alarm is unacknowledged: the HMI's horn/flash repeats until acknowledged."""
        return any(st.annunciate for st in self._alarms.values())

    def status(self, alarm_id: str) -> AlarmStatus:
        return self._alarms[alarm_id]

    def view(self, alarm_id: str, now: float | None = None) -> AlarmEvent:
        """The current state of one alarm as a snapshot record (``trigger`` None)."""
        st = self._alarms[alarm_id]
        return self._event(st, None, st.state, st.last_change if now is None else now)

    def active(self) -> list[AlarmEvent]:
        """The operator's alarm list: unack/acked/rtn_unack, no log-only; by priority, newest first."""
        rows = [st for st in self._alarms.values() if st.state.on_alarm_list and st.defn.requires_ack]
        rows.sort(key=lambda st: (st.defn.rank, -(st.last_change or 0.0), st.defn.id))
        return [self._event(st, None, st.state, st.last_change or 0.0) for st in rows]

    def alarms(self, states: Iterable[AlarmState] | None = None) -> list[AlarmEvent]:
        """Every alarm (or those in ``states``: e.g. the shelved list), by priority then id."""
        want = set(states) if states is not None else None
        rows = [st for st in self._alarms.values() if want is None or st.state in want]
        rows.sort(key=lambda st: (st.defn.rank, st.defn.id))
        return [self._event(st, None, st.state, st.last_change or 0.0) for st in rows]

    def snapshot_events(self, now: float | None = None) -> list[AlarmEvent]:
        """Every alarm not normal, as snapshot records: written to the journal to resync after an overflow."""
        now = self.clock() if now is None else now
        return [self._event(st, None, st.state, now) for st in self._alarms.values()
                if st.state is not AlarmState.NORMAL or st.active]

    def summary(self, now: float | None = None) -> AlarmSummary:
        now = self.clock() if now is None else now
        s = self.settings
        by_state: dict[str, int] = {x.value: 0 for x in AlarmState}
        by_priority: dict[str, int] = {p.value: 0 for p in Priority if p is not Priority.LOG}
        standing: list[str] = []
        chatter: list[ChatterEntry] = []
        for st in self._alarms.values():
            by_state[st.state.value] += 1
            if st.state.on_alarm_list and st.defn.requires_ack:
                by_priority[st.defn.priority.value] += 1
            if st.active and st.active_since is not None and now - st.active_since > s.standing_s:
                standing.append(st.defn.id)
            self._trim(st.activations, now, max(600.0, s.chatter_window_s))
            recent = sum(1 for t in st.activations if now - t < s.chatter_window_s)
            if recent >= s.chatter_count:
                chatter.append(ChatterEntry(st.defn.id, recent, len(st.activations)))
        chatter.sort(key=lambda c: (-c.activations_window, -c.activations_10min, c.alarm_id))
        per_area: dict[str, int] = {}
        for area, dq in self._new_alarms.items():
            self._trim(dq, now, s.flood_window_s)
            if dq:
                per_area[area] = len(dq)
        return AlarmSummary(
            total=len(self._alarms), by_state=by_state, by_priority=by_priority,
            unacknowledged=sum(1 for st in self._alarms.values() if st.annunciate),
            annunciating=self.annunciating, flood=dict(self._flood),
            alarms_last_10min=sum(per_area.values()), alarms_last_10min_by_area=per_area,
            standing=sorted(standing), chattering=chatter, stream_overflows=self.stream_overflows,
        )

    def flooding(self, area: str | None = None) -> bool:
        if area is None:
            return any(self._flood.values())
        return self._flood.get(area, False)

    # ------------------------------------------------------------------ restore

    def restore(self, latest: Iterable[AlarmEvent]) -> RestoreResult:
        """Put alarms back exactly as the journal last recorded them (later records win; no events)."""
        last: dict[str, AlarmEvent] = {}
        for ev in latest:
            prev = last.get(ev.alarm_id)
            if prev is None or ev.ts >= prev.ts:
                last[ev.alarm_id] = ev
        unknown: list[str] = []
        n = 0
        for alarm_id, ev in last.items():
            st = self._alarms.get(alarm_id)
            if st is None:
                unknown.append(alarm_id)
                continue
            st.state = ev.state
            st.active = ev.active
            st.filter.state = ev.active
            st.filter.pending_since = None
            st.detector.raw = ev.active
            if st.defn.tag is None:
                st.external_raw = ev.active
            st.value = ev.value
            st.message = ev.message or st.defn.message
            st.since, st.count = ev.since, ev.count
            st.last_change = ev.changed_ts if ev.changed_ts is not None else ev.ts
            st.active_since = ev.since if ev.active else None
            st.ack_user, st.ack_ts = ev.ack_user, ev.ack_ts
            st.shelved_by, st.shelve_reason, st.shelved_until = ev.shelved_by, ev.shelve_reason, ev.shelved_until
            st.suppress_reason = ev.suppress_reason
            st.oos_by, st.oos_reason = ev.oos_by, ev.oos_reason
            n += 1
        return RestoreResult(n, tuple(sorted(unknown)))
