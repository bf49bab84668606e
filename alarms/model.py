"""The ISA-18.2 alarm state machine: pure, table-driven, no I/O and no clock.

An alarm has a *process condition* (active or not, after deadband and delays) and an *alarm state*
that also remembers what the operator has done. The states are those of ISA-18.2 (figure 5)::

    NORMAL        condition clear, nothing to acknowledge
    UNACK         condition active, not acknowledged        (annunciated, horn)
    ACKED         condition active, acknowledged
    RTN_UNACK     condition cleared before it was acknowledged (still annunciated)
    SHELVED       hidden by an operator for a limited time (reason, user, expiry)
    SUPPRESSED    hidden by design (tank out of service / idle), decided by a predicate
    OUT_OF_SERVICE removed from service by maintenance (user, reason)

:data:`TRANSITIONS` is the whole behaviour: ``(state, trigger) -> outcome``. An outcome is either a new
state, a pair ``(state if the condition is active, state if clear)`` for the triggers that hand an alarm
back to the operator (unshelve, unsuppress, return to service), :data:`IGNORE` (no change, no event) or a
refusal with the reason an operator is shown. Anything missing from the table is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AlarmState(StrEnum):
    NORMAL = "normal"
    UNACK = "unack"
    ACKED = "acked"
    RTN_UNACK = "rtn_unack"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"

    @property
    def unacknowledged(self) -> bool:
        return self in (AlarmState.UNACK, AlarmState.RTN_UNACK)

    @property
    def on_alarm_list(self) -> bool:
        """Shown on the operator's alarm list (shelved/suppressed/out of service have their own lists)."""
        return self in (AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK)

    @property
    def hidden(self) -> bool:
        return self in (AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE)


class Trigger(StrEnum):
    ACTIVATE = "activate"              # the process condition became active
    CLEAR = "clear"                    # the process condition cleared
    ACK = "ack"                        # an operator acknowledged
    SHELVE = "shelve"
    UNSHELVE = "unshelve"              # by an operator, or the shelve expired
    SUPPRESS = "suppress"              # suppression-by-design predicate became true
    UNSUPPRESS = "unsuppress"
    REMOVE = "remove_from_service"
    RETURN = "return_to_service"


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


IGNORE = "ignore"
"""No state change and nothing to journal (e.g. a clear while already normal)."""

Outcome = AlarmState | tuple[AlarmState, AlarmState] | Refuse | str

S = AlarmState
T = Trigger
_BACK = (S.UNACK, S.NORMAL)  # handed back to the operator: active -> new annunciation, clear -> normal
_NOT_IN_ALARM = Refuse("already acknowledged: the alarm is not in an unacknowledged state")
_ACKED = Refuse("already acknowledged")
_SHELVED_ACK = Refuse("the alarm is shelved: unshelve it first")
_SUPPRESSED = Refuse("the alarm is suppressed by design")
_OOS = Refuse("the alarm is out of service")

TRANSITIONS: dict[tuple[AlarmState, Trigger], Outcome] = {
    # ---- normal
    (S.NORMAL, T.ACTIVATE): S.UNACK,
    (S.NORMAL, T.CLEAR): IGNORE,
    (S.NORMAL, T.ACK): _NOT_IN_ALARM,
    (S.NORMAL, T.SHELVE): S.SHELVED,
    (S.NORMAL, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.NORMAL, T.SUPPRESS): S.SUPPRESSED,
    (S.NORMAL, T.UNSUPPRESS): IGNORE,
    (S.NORMAL, T.REMOVE): S.OUT_OF_SERVICE,
    (S.NORMAL, T.RETURN): Refuse("the alarm is in service"),
    # ---- active, unacknowledged
    (S.UNACK, T.ACTIVATE): IGNORE,
    (S.UNACK, T.CLEAR): S.RTN_UNACK,
    (S.UNACK, T.ACK): S.ACKED,
    (S.UNACK, T.SHELVE): S.SHELVED,
    (S.UNACK, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.UNACK, T.SUPPRESS): S.SUPPRESSED,
    (S.UNACK, T.UNSUPPRESS): IGNORE,
    (S.UNACK, T.REMOVE): S.OUT_OF_SERVICE,
    (S.UNACK, T.RETURN): Refuse("the alarm is in service"),
    # ---- active, acknowledged
    (S.ACKED, T.ACTIVATE): IGNORE,
    (S.ACKED, T.CLEAR): S.NORMAL,
    (S.ACKED, T.ACK): _ACKED,
    (S.ACKED, T.SHELVE): S.SHELVED,
    (S.ACKED, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.ACKED, T.SUPPRESS): S.SUPPRESSED,
    (S.ACKED, T.UNSUPPRESS): IGNORE,
    (S.ACKED, T.REMOVE): S.OUT_OF_SERVICE,
    (S.ACKED, T.RETURN): Refuse("the alarm is in service"),
    # ---- returned to normal, unacknowledged
    (S.RTN_UNACK, T.ACTIVATE): S.UNACK,  # the same fault again: one alarm, its repeat count rises
    (S.RTN_UNACK, T.CLEAR): IGNORE,
    (S.RTN_UNACK, T.ACK): S.NORMAL,
    (S.RTN_UNACK, T.SHELVE): S.SHELVED,
    (S.RTN_UNACK, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.RTN_UNACK, T.SUPPRESS): S.SUPPRESSED,
    (S.RTN_UNACK, T.UNSUPPRESS): IGNORE,
    (S.RTN_UNACK, T.REMOVE): S.OUT_OF_SERVICE,
    (S.RTN_UNACK, T.RETURN): Refuse("the alarm is in service"),
    # ---- shelved: the condition is still tracked, nothing is annunciated
    (S.SHELVED, T.ACTIVATE): IGNORE,
    (S.SHELVED, T.CLEAR): IGNORE,
    (S.SHELVED, T.ACK): _SHELVED_ACK,
    (S.SHELVED, T.SHELVE): S.SHELVED,  # re-shelve: new expiry, reason, user
    (S.SHELVED, T.UNSHELVE): _BACK,
    (S.SHELVED, T.SUPPRESS): S.SUPPRESSED,
    (S.SHELVED, T.UNSUPPRESS): IGNORE,
    (S.SHELVED, T.REMOVE): S.OUT_OF_SERVICE,
    (S.SHELVED, T.RETURN): Refuse("the alarm is in service"),
    # ---- suppressed by design
    (S.SUPPRESSED, T.ACTIVATE): IGNORE,
    (S.SUPPRESSED, T.CLEAR): IGNORE,
    (S.SUPPRESSED, T.ACK): _SUPPRESSED,
    (S.SUPPRESSED, T.SHELVE): _SUPPRESSED,
    (S.SUPPRESSED, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.SUPPRESSED, T.SUPPRESS): IGNORE,
    (S.SUPPRESSED, T.UNSUPPRESS): _BACK,
    (S.SUPPRESSED, T.REMOVE): S.OUT_OF_SERVICE,
    (S.SUPPRESSED, T.RETURN): Refuse("the alarm is in service"),
    # ---- out of service: only a return to service changes it
    (S.OUT_OF_SERVICE, T.ACTIVATE): IGNORE,
    (S.OUT_OF_SERVICE, T.CLEAR): IGNORE,
    (S.OUT_OF_SERVICE, T.ACK): _OOS,
    (S.OUT_OF_SERVICE, T.SHELVE): _OOS,
    (S.OUT_OF_SERVICE, T.UNSHELVE): Refuse("the alarm is not shelved"),
    (S.OUT_OF_SERVICE, T.SUPPRESS): IGNORE,
    (S.OUT_OF_SERVICE, T.UNSUPPRESS): IGNORE,
    (S.OUT_OF_SERVICE, T.REMOVE): Refuse("the alarm is already out of service"),
    (S.OUT_OF_SERVICE, T.RETURN): _BACK,
}


@dataclass(frozen=True, slots=True)
class Step:
    """Result of one trigger: ``changed`` False with a ``refused`` reason, or with neither for IGNORE."""

    state: AlarmState
    changed: bool
    refused: str = ""

    @property
    def ok(self) -> bool:
        return not self.refused


def step(state: AlarmState, trigger: Trigger, *, active: bool, requires_ack: bool = True) -> Step:
    """Apply one trigger. ``active`` is the process condition *after* the trigger.

    ``requires_ack`` False (priority ``log``): an alarm nobody sees cannot wait for an acknowledgement,
    so UNACK becomes ACKED and RTN_UNACK becomes NORMAL at once.
    """
    outcome = TRANSITIONS.get((state, trigger))
    if outcome is None:
        return Step(state, False, f"{trigger.value} is not allowed in state {state.value}")
    if isinstance(outcome, Refuse):
        return Step(state, False, outcome.reason)
    if outcome == IGNORE:
        return Step(state, False)
    if isinstance(outcome, tuple):
        new = outcome[0] if active else outcome[1]
    else:
        new = AlarmState(outcome)
    if not requires_ack:
        new = {S.UNACK: S.ACKED, S.RTN_UNACK: S.NORMAL}.get(new, new)
    return Step(new, new is not state or trigger is T.SHELVE)
