"""The ISA-18.2 state machine, every (state, trigger) pair, table-driven."""

from __future__ import annotations

import pytest

from alarms.model import TRANSITIONS, AlarmState, Trigger, step

S = AlarmState
T = Trigger

# (state, trigger, condition active after the trigger, expected state or "refused:<text>" or "same")
CASES: list[tuple[AlarmState, Trigger, bool, str]] = [
    (S.NORMAL, T.ACTIVATE, True, "unack"),
    (S.NORMAL, T.CLEAR, False, "same"),
    (S.NORMAL, T.ACK, False, "refused:already acknowledged"),
    (S.NORMAL, T.SHELVE, False, "shelved"),
    (S.NORMAL, T.UNSHELVE, False, "refused:not shelved"),
    (S.NORMAL, T.SUPPRESS, False, "suppressed"),
    (S.NORMAL, T.UNSUPPRESS, False, "same"),
    (S.NORMAL, T.REMOVE, False, "out_of_service"),
    (S.NORMAL, T.RETURN, False, "refused:in service"),
    (S.UNACK, T.ACTIVATE, True, "same"),
    (S.UNACK, T.CLEAR, False, "rtn_unack"),
    (S.UNACK, T.ACK, True, "acked"),
    (S.UNACK, T.SHELVE, True, "shelved"),
    (S.UNACK, T.UNSHELVE, True, "refused:not shelved"),
    (S.UNACK, T.SUPPRESS, True, "suppressed"),
    (S.UNACK, T.UNSUPPRESS, True, "same"),
    (S.UNACK, T.REMOVE, True, "out_of_service"),
    (S.UNACK, T.RETURN, True, "refused:in service"),
    (S.ACKED, T.ACTIVATE, True, "same"),
    (S.ACKED, T.CLEAR, False, "normal"),
    (S.ACKED, T.ACK, True, "refused:already acknowledged"),
    (S.ACKED, T.SHELVE, True, "shelved"),
    (S.ACKED, T.UNSHELVE, True, "refused:not shelved"),
    (S.ACKED, T.SUPPRESS, True, "suppressed"),
    (S.ACKED, T.UNSUPPRESS, True, "same"),
    (S.ACKED, T.REMOVE, True, "out_of_service"),
    (S.ACKED, T.RETURN, True, "refused:in service"),
    (S.RTN_UNACK, T.ACTIVATE, True, "unack"),
    (S.RTN_UNACK, T.CLEAR, False, "same"),
    (S.RTN_UNACK, T.ACK, False, "normal"),
    (S.RTN_UNACK, T.SHELVE, False, "shelved"),
    (S.RTN_UNACK, T.UNSHELVE, False, "refused:not shelved"),
    (S.RTN_UNACK, T.SUPPRESS, False, "suppressed"),
    (S.RTN_UNACK, T.UNSUPPRESS, False, "same"),
    (S.RTN_UNACK, T.REMOVE, False, "out_of_service"),
    (S.RTN_UNACK, T.RETURN, False, "refused:in service"),
    (S.SHELVED, T.ACTIVATE, True, "same"),
    (S.SHELVED, T.CLEAR, False, "same"),
    (S.SHELVED, T.ACK, True, "refused:shelved"),
    (S.SHELVED, T.SHELVE, True, "shelved"),
    (S.SHELVED, T.UNSHELVE, True, "unack"),
    (S.SHELVED, T.UNSHELVE, False, "normal"),
    (S.SHELVED, T.SUPPRESS, True, "suppressed"),
    (S.SHELVED, T.UNSUPPRESS, True, "same"),
    (S.SHELVED, T.REMOVE, True, "out_of_service"),
    (S.SHELVED, T.RETURN, True, "refused:in service"),
    (S.SUPPRESSED, T.ACTIVATE, True, "same"),
    (S.SUPPRESSED, T.CLEAR, False, "same"),
    (S.SUPPRESSED, T.ACK, True, "refused:suppressed"),
    (S.SUPPRESSED, T.SHELVE, True, "refused:suppressed"),
    (S.SUPPRESSED, T.UNSHELVE, True, "refused:not shelved"),
    (S.SUPPRESSED, T.SUPPRESS, True, "same"),
    (S.SUPPRESSED, T.UNSUPPRESS, True, "unack"),
    (S.SUPPRESSED, T.UNSUPPRESS, False, "normal"),
    (S.SUPPRESSED, T.REMOVE, True, "out_of_service"),
    (S.SUPPRESSED, T.RETURN, True, "refused:in service"),
    (S.OUT_OF_SERVICE, T.ACTIVATE, True, "same"),
    (S.OUT_OF_SERVICE, T.CLEAR, False, "same"),
    (S.OUT_OF_SERVICE, T.ACK, True, "refused:out of service"),
    (S.OUT_OF_SERVICE, T.SHELVE, True, "refused:out of service"),
    (S.OUT_OF_SERVICE, T.UNSHELVE, True, "refused:not shelved"),
    (S.OUT_OF_SERVICE, T.SUPPRESS, True, "same"),
    (S.OUT_OF_SERVICE, T.UNSUPPRESS, True, "same"),
    (S.OUT_OF_SERVICE, T.REMOVE, True, "refused:already out of service"),
    (S.OUT_OF_SERVICE, T.RETURN, True, "unack"),
    (S.OUT_OF_SERVICE, T.RETURN, False, "normal"),
]


@pytest.mark.parametrize(("state", "trigger", "active", "expected"), CASES,
                         ids=[f"{s.value}-{t.value}-{'act' if a else 'clr'}" for s, t, a, _ in CASES])
def test_transition(state: AlarmState, trigger: Trigger, active: bool, expected: str) -> None:
    r = step(state, trigger, active=active)
    if expected.startswith("refused:"):
        assert not r.ok and not r.changed and r.state is state
        assert expected.split(":", 1)[1] in r.refused
    elif expected == "same":
        assert r.ok and not r.changed and r.state is state
    else:
        assert r.ok and r.changed and r.state is AlarmState(expected)


def test_every_pair_is_in_the_table_and_in_the_cases() -> None:
    pairs = {(s, t) for s in AlarmState for t in Trigger}
    assert set(TRANSITIONS) == pairs
    assert {(s, t) for s, t, _, _ in CASES} == pairs


@pytest.mark.parametrize(("state", "trigger", "active", "expected"), [
    (S.NORMAL, T.ACTIVATE, True, S.ACKED),       # log-only alarms never wait for an operator
    (S.ACKED, T.CLEAR, False, S.NORMAL),
    (S.SHELVED, T.UNSHELVE, True, S.ACKED),
    (S.OUT_OF_SERVICE, T.RETURN, True, S.ACKED),
])
def test_log_only_alarms_skip_acknowledgement(state: AlarmState, trigger: Trigger, active: bool,
                                               expected: AlarmState) -> None:
    assert step(state, trigger, active=active, requires_ack=False).state is expected


def test_state_properties() -> None:
    assert {s for s in AlarmState if s.unacknowledged} == {S.UNACK, S.RTN_UNACK}
    assert {s for s in AlarmState if s.on_alarm_list} == {S.UNACK, S.ACKED, S.RTN_UNACK}
    assert {s for s in AlarmState if s.hidden} == {S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE}
