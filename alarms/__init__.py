"""Alarm management per ISA-18.2: definitions, detection, state machine, journal (see docs/alarms.md)."""

from alarms.definitions import (
    HISTORIAN_BUFFERING,
    SCAN_OVERRUN,
    AlarmDef,
    DefinitionError,
    DefKind,
    build_definitions,
    driver_down_id,
)
from alarms.engine import AlarmEngine, AlarmStatus, AlarmSummary, ChatterEntry, CommandResult, RestoreResult
from alarms.journal import JournalWriter, query_journal, restore_from_journal
from alarms.model import AlarmState, Trigger
from alarms.stream import AlarmEvent, AlarmSubscription, FloodEvent

__all__ = [
    "HISTORIAN_BUFFERING", "SCAN_OVERRUN", "AlarmDef", "AlarmEngine", "AlarmEvent", "AlarmState", "AlarmStatus",
    "AlarmSubscription", "AlarmSummary", "ChatterEntry", "CommandResult", "DefKind", "DefinitionError",
    "FloodEvent", "JournalWriter", "RestoreResult", "Trigger", "build_definitions", "driver_down_id",
    "query_journal", "restore_from_journal",
]
