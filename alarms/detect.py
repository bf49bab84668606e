"""Condition detection: from a validated sample to "the alarm condition is active", pure and clock-free.

Two stages, each with its own state object the engine keeps per alarm:

1. the *raw* condition with deadband hysteresis (an active high alarm clears only below
   ``limit - deadband``); ``None`` means "cannot tell" (Bad quality, no value, no setpoint): the condition
   is *held* -- the quality alarm tells the operator why, and a limit alarm never clears because the
   sensor died;
2. the :class:`DelayFilter`: the raw condition must hold ``on_delay_s`` to activate and stay clear
   ``off_delay_s`` to clear. Together they stop a noisy value from chattering.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from alarms.definitions import AlarmDef, DefKind
from scada.conditions import OPS, Condition, ConditionKind
from scada.tags import Quality, QualityReason, Sample


@dataclass(slots=True)
class DelayFilter:
    """On/off delay: a change of the raw condition must persist before it counts."""

    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    state: bool = False
    pending_since: float | None = None

    def update(self, raw: bool | None, now: float) -> bool:
        """Feed the raw condition at ``now``; returns the debounced condition."""
        if raw is None or raw == self.state:
            self.pending_since = None
            return self.state
        delay = self.on_delay_s if raw else self.off_delay_s
        if self.pending_since is None:
            self.pending_since = now
        if now - self.pending_since >= delay:
            self.state = raw
            self.pending_since = None
        return self.state


@dataclass(slots=True)
class DetectorState:
    """Per-alarm memory of the detector: hysteresis state and a short value history for rates."""

    raw: bool = False
    history: deque[tuple[float, float]] = field(default_factory=deque)
    detail: str = ""
    """Why the condition is what it is (quality reason and NE 107 status), for the message."""


def _number(sample: Sample | None) -> float | None:
    if sample is None or not sample.usable:
        return None
    v = sample.value
    if isinstance(v, bool):
        return float(v)
    return float(v) if isinstance(v, int | float) else None


def _hysteresis(magnitude: float, threshold: float, deadband: float, was: bool) -> bool:
    return magnitude > (threshold - deadband if was else threshold)


def limit_condition(d: AlarmDef, value: float, was: bool) -> bool:
    assert d.limit is not None and d.level is not None
    if d.level.high:
        return _hysteresis(value, d.limit, d.deadband, was)
    return _hysteresis(-value, -d.limit, d.deadband, was)


def quality_condition(d: AlarmDef, sample: Sample | None) -> tuple[bool | None, str]:
    """Bad (or Uncertain, when asked) quality alarms; waiting for initial data is "cannot tell"."""
    if sample is None or sample.reason is QualityReason.WAITING_FOR_INITIAL_DATA:
        return None, ""
    bad = sample.quality is Quality.BAD or (d.on_uncertain and sample.quality is Quality.UNCERTAIN)
    if not bad:
        return False, ""
    detail = str(sample.reason).replace("_", " ")
    if sample.ne107.value != "ok":
        detail += f", NE 107 {sample.ne107.value}"
    if sample.detail:
        detail += f": {sample.detail}"
    return True, detail


def rate_per_min(history: deque[tuple[float, float]], now: float, value: float, window_s: float) -> float | None:
    """Change per minute over ``window_s`` (``None`` until at least half a window of history exists)."""
    history.append((now, value))
    while len(history) > 2 and now - history[1][0] >= window_s:
        history.popleft()
    t0, v0 = history[0]
    if now - t0 < window_s / 2:
        return None
    return (value - v0) / (now - t0) * 60.0


def raw_condition(d: AlarmDef, st: DetectorState, sample: Sample | None, setpoint: float | None,
                  now: float) -> bool | None:
    """The raw alarm condition of one value-based alarm (``None``: hold, cannot tell)."""
    if d.kind is DefKind.QUALITY:
        raw, st.detail = quality_condition(d, sample)
        return raw
    if d.kind is DefKind.DISCRETE:
        if sample is None or sample.quality is Quality.BAD or sample.value is None:
            return None
        return bool(sample.value) == d.alarm_state
    value = _number(sample)
    if value is None or not math.isfinite(value):
        if d.kind is DefKind.RATE:
            st.history.clear()  # a gap must not be read as a step
        return None
    if d.kind is DefKind.LIMIT:
        return limit_condition(d, value, st.raw)
    if d.kind is DefKind.DEVIATION:
        if setpoint is None or d.deviation is None:
            return None
        return _hysteresis(abs(value - setpoint), d.deviation, d.deadband, st.raw)
    if d.kind is DefKind.RATE:
        assert d.rate_per_min is not None
        r = rate_per_min(st.history, now, value, d.rate_window_s)
        if r is None:
            return None
        return _hysteresis(abs(r), d.rate_per_min, d.deadband, st.raw)
    return None


def condition_true(c: Condition, sample: Sample | None) -> bool:
    """A suppression condition (interlock language). Unknown or Bad values do not suppress: fail visible."""
    if sample is None:
        return False
    if c.kind is ConditionKind.NOT_GOOD:
        return sample.quality is not Quality.GOOD
    if c.kind is ConditionKind.DISAGREE:
        return sample.reason is QualityReason.DISCREPANCY
    if not sample.usable:
        return False
    if c.kind is ConditionKind.IS_TRUE:
        return bool(sample.value)
    if c.kind is ConditionKind.IS_FALSE:
        return not bool(sample.value)
    assert c.op is not None and c.value is not None
    return bool(OPS[c.op](float(sample.value), c.value))  # type: ignore[arg-type]
