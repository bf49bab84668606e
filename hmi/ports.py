"""What the web HMI needs from the rest of the system: one small typed port.

The HMI never imports the scan engine, the alarm engine or the historian. The composition root
(``scada/runtime.py``) hands :func:`hmi.app.create_app` an object satisfying :class:`RuntimePort`;
tests and the browser test use :class:`hmi.fake_runtime.FakeRuntime`. Everything the HMI can
derive itself from the plant config and the tag store (tag metadata, tank views, role limits,
CSV export) it derives, so the adapter stays thin.

Conventions: every command returns a :class:`CommandResult` (never raises for bad input; a
refusal carries ``kind`` and a human ``reason``); every time is epoch seconds UTC; loops and
interlocks are addressed by ``(tank id, loop/interlock id)``; alarms by the alarm engine's id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from scada.config import LoopMode, PlantConfig
from scada.events import Event, EventKind
from scada.tags import TagStore, Value


class Role(StrEnum):
    """Who may do what; ordered viewer < operator < engineer < admin."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ENGINEER: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated person behind a command (for the engine's checks and the audit trail)."""

    username: str
    role: Role
    address: str = ""
    """Source address of the request (client IP)."""


class CommandKind(StrEnum):
    """Outcome class of a command; the HMI maps it to an HTTP status."""

    OK = "ok"
    LIMIT = "limit"            # 422: outside the (role's) limits; reason names the limit
    INVALID = "invalid"        # 422: wrong type / not applicable (e.g. a number for a boolean)
    INTERLOCK = "interlock"    # 409: an interlock (or the loop's mode) forbids it now
    CONFLICT = "conflict"      # 409: state forbids it (already acked, not tripped, not bypassable, write failed)
    UNKNOWN = "unknown"        # 404: no such tag / loop / interlock / alarm
    FORBIDDEN = "forbidden"    # 403: nobody may (read-only tag) or the role is too low


@dataclass(frozen=True, slots=True)
class CommandResult:
    """Result of a command. ``old``/``new`` go into the audit trail when known."""

    ok: bool
    kind: CommandKind = CommandKind.OK
    reason: str = ""
    old: Value = None
    new: Value = None

    @classmethod
    def success(cls, old: Value = None, new: Value = None, reason: str = "") -> CommandResult:
        return cls(ok=True, kind=CommandKind.OK, reason=reason, old=old, new=new)

    @classmethod
    def refused(cls, kind: CommandKind, reason: str) -> CommandResult:
        return cls(ok=False, kind=kind, reason=reason)


@dataclass(frozen=True, slots=True)
class LoopState:
    """Runtime state of one control loop (config comes from ``PlantConfig``)."""

    tank: str
    loop: str
    mode: LoopMode
    setpoint: float | None
    """Target setpoint as entered."""
    working_setpoint: float | None = None
    """Ramped setpoint the loop is using now (equals ``setpoint`` without a ramp)."""
    output: float | None = None
    """Controller output (percent, or the rectifier setpoint in A); None when unknown."""
    detail: str = ""
    """Why the loop is not doing what its mode says (e.g. "held: interlock over_temp")."""


class InterlockStatus(StrEnum):
    HEALTHY = "healthy"        # not tripped
    TRIPPED = "tripped"        # cause present, outputs forced safe
    LATCHED = "latched"        # cause gone, waiting for an operator reset
    BYPASSED = "bypassed"      # bypassed by an engineer until ``bypass_until``


@dataclass(frozen=True, slots=True)
class InterlockState:
    tank: str
    interlock: str
    status: InterlockStatus
    causes: tuple[str, ...] = ()
    """Conditions (config text) currently true."""
    first_out: str | None = None
    """The condition that tripped first."""
    since: float | None = None
    bypass_until: float | None = None
    bypass_by: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm as the operator sees it (ISA-18.2 states)."""

    id: str
    """Unique id used in /api/alarms/{id} (the fake uses ``<tank>.<alarm id>``)."""
    tank: str | None
    area: str | None
    source: str
    """Tag or signal the alarm is about."""
    priority: str
    state: str
    """``unack_active`` | ``ack_active`` | ``unack_cleared`` | ``shelved`` | ``suppressed``."""
    message: str = ""
    active: bool = True
    acked: bool = False
    value: float | None = None
    limit: float | None = None
    ts: float | None = None
    """When the alarm went active (or last changed state)."""
    shelved_until: float | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One aggregate interval of a tag's history."""

    start: float
    end: float
    min: float | None
    max: float | None
    avg: float | None
    last: float | None
    count: int
    good_fraction: float = 1.0
    """Share of samples with Good quality (0..1)."""


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    tag: str
    ts: float
    value: Value
    quality: str
    reason: str = "none"


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A row of the historian's ``users`` table (``historian.users.UserRecord``, whose ``role`` is a
    plain string, has the same fields and is accepted as it is)."""

    id: int
    username: str
    password_hash: str
    role: Role
    created_ts: float
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeStatus:
    """For /api/status: every part JSON-serialisable."""

    drivers: list[dict[str, Any]] = field(default_factory=list)
    """One dict per device (``dataclasses.asdict(DriverStatus)``)."""
    scan: dict[str, Any] = field(default_factory=dict)
    """Scan statistics: period_s, count, lateness p50/p99 ms, overruns, last_ts."""
    historian: dict[str, Any] = field(default_factory=dict)
    """Historian state: connected, buffered (store-and-forward backlog), written, errors."""
    alarms: dict[str, Any] = field(default_factory=dict)
    """Alarm engine: active, unacked, shelved counts, flood (bool), rate per 10 min."""


@dataclass(frozen=True, slots=True)
class PlatingIssue:
    """One reason a plating command was refused: key path (``steps[1].temperature_c``) and message."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class PlatingResult:
    """Result of a plating command: the recipe or load (JSON-ready dict), or a refusal with its kind
    (the HMI maps it to a status exactly like :class:`CommandResult`) and the key-path issues."""

    ok: bool
    kind: CommandKind = CommandKind.OK
    reason: str = ""
    data: dict[str, Any] | None = None
    issues: tuple[PlatingIssue, ...] = ()
    audited: bool = False
    """True when the plating layer wrote the audit event itself (accepted recipe saves)."""

    def as_command(self) -> CommandResult:
        return CommandResult(ok=self.ok, kind=self.kind, reason=self.reason)


@dataclass(frozen=True, slots=True)
class LoadFilter:
    """Load history search; every field optional (``text`` matches id, part number or order)."""

    text: str | None = None
    part_number: str | None = None
    customer_order: str | None = None
    status: str | None = None
    since: float | None = None
    """Created at or after (epoch s)."""
    until: float | None = None
    """Created before (epoch s)."""
    limit: int = 100
    on_line: bool = False
    """Only loads queued, in a tank or in transit (the live tracker, not the store)."""


@dataclass(frozen=True, slots=True)
class NewLoad:
    """What the operator enters to put a load on the line."""

    part_number: str
    quantity: int
    area_dm2: float
    customer_order: str = ""
    id: str | None = None
    recipe_id: str | None = None
    note: str = ""


class LoadRecordView(Protocol):
    """The traceability record of one load (``scada.plating.LoadRecord`` satisfies it)."""

    @property
    def conforming(self) -> bool: ...

    def to_dict(self, *, trends: bool = False) -> dict[str, Any]:
        """JSON-ready record; ``trends`` adds each dwell's samples."""
        ...

    def to_csv(self) -> str:
        """One row per tank visit."""
        ...

    def to_html(self) -> str:
        """A printable self-contained page: every text escaped, inline SVG plots, no scripts."""
        ...


@runtime_checkable
class PlatingPort(Protocol):
    """The electroplating process layer as the HMI sees it (recipes, loads, traceability).

    Reads return JSON-ready dicts (``Recipe.to_dict()``, ``Load.to_dict()`` plus live dwell fields);
    commands never raise for bad input: they return a refused :class:`PlatingResult`.
    """

    def recipes(self) -> list[dict[str, Any]]:
        """Latest version of every recipe."""
        ...

    def recipe(self, recipe_id: str, version: int | None = None) -> dict[str, Any] | None:
        """One version (default the latest), or None."""
        ...

    def recipe_versions(self, recipe_id: str) -> list[dict[str, Any]]:
        """Every version, oldest first (empty when unknown)."""
        ...

    async def save_recipe(self, recipe_id: str, body: dict[str, Any], actor: Actor, comment: str) -> PlatingResult:
        """Create a recipe or its next version (engineer; the HMI has checked the role)."""
        ...

    def loads_on_line(self) -> list[dict[str, Any]]:
        """Loads queued, in a tank or in transit, with ``dwell_s`` and the current step's window."""
        ...

    async def find_loads(self, query: LoadFilter) -> list[dict[str, Any]]:
        """Load history, newest first."""
        ...

    async def get_load(self, load_id: str) -> dict[str, Any] | None:
        ...

    async def create_load(self, load: NewLoad, actor: Actor) -> PlatingResult:
        ...

    async def enter(self, load_id: str, tank: str, actor: Actor) -> PlatingResult:
        """The load goes into a tank (UNKNOWN load/tank, CONFLICT occupied or wrong state)."""
        ...

    async def leave(self, load_id: str, actor: Actor) -> PlatingResult:
        """The load comes out of the tank it is in (CONFLICT when it is in none)."""
        ...

    async def abort(self, load_id: str, reason: str, actor: Actor) -> PlatingResult:
        """Take the load off the line."""
        ...

    async def record(self, load_id: str) -> LoadRecordView | None:
        """The traceability record from the history, or None for an unknown load."""
        ...


@runtime_checkable
class RuntimePort(Protocol):
    """Everything the HMI calls. Commands never raise for bad input: they return a refusal."""

    plant: PlantConfig
    """The validated plant: tag metadata, tanks, loops, interlocks, alarm definitions."""
    tags: TagStore
    """Live values; the HMI reads ``get``/``snapshot`` and subscribes with ``policy="coalesce"``."""
    plating_port: PlatingPort | None
    """The plating layer (recipes, loads, records); None when the runtime has none (plating routes answer 404)."""

    def ready(self) -> tuple[bool, str]:
        """(True, "") when the scan runs and the historian accepts data; else (False, why)."""
        ...

    async def status(self) -> RuntimeStatus:
        """Drivers, scan statistics, historian buffer, alarm flood (for /api/status and /metrics)."""
        ...

    async def write_tag(self, name: str, value: Value, actor: Actor) -> CommandResult:
        """Write one tag (output/setpoint). The HMI has already checked role and config limits."""
        ...

    async def set_setpoint(self, tank: str, loop: str, value: float, actor: Actor) -> CommandResult:
        """Change a loop's setpoint (HMI has checked the role's setpoint limits)."""
        ...

    async def set_loop_mode(self, tank: str, loop: str, mode: LoopMode, actor: Actor) -> CommandResult:
        """Switch a loop between auto / manual / off."""
        ...

    async def reset_interlock(self, tank: str, interlock: str, actor: Actor) -> CommandResult:
        """Reset a latched interlock; CONFLICT when the cause is still present or it is not latched."""
        ...

    async def bypass_interlock(
        self, tank: str, interlock: str, actor: Actor, *, enable: bool, duration_s: float, reason: str
    ) -> CommandResult:
        """Start (``enable``) or end a time-limited bypass (HMI has checked bypassable and max time)."""
        ...

    def loop_states(self) -> list[LoopState]:
        """Current state of every loop of the plant."""
        ...

    def interlock_states(self) -> list[InterlockState]:
        """Current state of every interlock of the plant."""
        ...

    def active_alarms(self) -> list[AlarmView]:
        """Alarms that are active, unacknowledged or shelved (cheap: called by each WebSocket at 4 Hz)."""
        ...

    async def ack_alarm(self, alarm_id: str, actor: Actor, comment: str) -> CommandResult:
        """Acknowledge an alarm (UNKNOWN if no such alarm, CONFLICT if already acknowledged)."""
        ...

    async def shelve_alarm(self, alarm_id: str, actor: Actor, duration_s: float, comment: str) -> CommandResult:
        """Shelve an alarm for ``duration_s`` (0 = unshelve)."""
        ...

    async def history_aggregate(
        self, tags: Sequence[str], start: float, end: float, buckets: int
    ) -> dict[str, list[Bucket]]:
        """``buckets`` equal intervals over [start, end) per tag (empty buckets have count 0)."""
        ...

    async def history_raw(self, tags: Sequence[str], start: float, end: float, limit: int) -> list[HistoryPoint]:
        """Logged samples in time order, at most ``limit``."""
        ...

    async def record_event(self, event: Event) -> None:
        """Append an event (audit, login) to the events table."""
        ...

    async def query_events(
        self,
        *,
        kinds: Sequence[EventKind],
        start: float | None = None,
        end: float | None = None,
        limit: int = 200,
        tank: str | None = None,
        user: str | None = None,
    ) -> list[Event]:
        """Events of the given kinds, newest first (alarm journal = kind ALARM; audit = AUDIT/LOGIN/...)."""
        ...

    async def get_user(self, username: str) -> UserRecord | None:
        """The user with that name, or None."""
        ...

    async def create_user(self, username: str, password_hash: str, role: Role) -> UserRecord:
        """Insert a user; raise ``ValueError`` when the name is taken."""
        ...

    async def list_users(self) -> list[UserRecord]:
        """Every user (the HMI never returns the hashes)."""
        ...
