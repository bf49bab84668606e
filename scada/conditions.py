"""The interlock condition language: one readable line per condition, parsed, never eval'ed.

Forms (``ref`` is a sensor group or input role of the tank, e.g. ``temperature``, ``level_low``,
or a line-level signal such as ``line.estop``)::

    temperature > 68          comparison with a number (>, >=, <, <=, ==, !=)
    level_low                 a digital input is true
    not exhaust_fan_running   a digital input is false
    temperature not good      the value's quality is not Good
    ph disagree               the redundant probes of a group disagree (discrepancy)

Evaluation is fail-safe: a referenced value that is Bad or Uncertain makes *every* condition on it
true (tripped), whatever the form. That rule lives in the scan engine; this module only parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ConditionSyntaxError(ValueError):
    """The text is not one of the condition forms."""


class ConditionKind(StrEnum):
    COMPARE = "compare"
    IS_TRUE = "is_true"
    IS_FALSE = "is_false"
    NOT_GOOD = "not_good"
    DISAGREE = "disagree"


@dataclass(frozen=True, slots=True)
class Condition:
    kind: ConditionKind
    ref: str
    op: str | None = None
    value: float | None = None
    text: str = ""


_REF = r"(?P<ref>[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)*)"
_NUM = r"(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_PATTERNS: list[tuple[re.Pattern[str], ConditionKind]] = [
    (re.compile(rf"^{_REF}\s*(?P<op>>=|<=|==|!=|>|<)\s*{_NUM}$"), ConditionKind.COMPARE),
    (re.compile(rf"^{_REF}\s+not\s+good$"), ConditionKind.NOT_GOOD),
    (re.compile(rf"^{_REF}\s+disagree$"), ConditionKind.DISAGREE),
    (re.compile(rf"^not\s+{_REF}$"), ConditionKind.IS_FALSE),
    (re.compile(rf"^{_REF}$"), ConditionKind.IS_TRUE),
]
_RESERVED = {"not", "good", "disagree", "and", "or"}


def parse_condition(text: str) -> Condition:
    """Parse one condition; raise :class:`ConditionSyntaxError` naming the accepted forms."""
    t = " ".join(str(text).strip().split())
    for pattern, kind in _PATTERNS:
        m = pattern.match(t)
        if not m:
            continue
        ref = m.group("ref")
        if ref in _RESERVED:
            break
        if kind is ConditionKind.COMPARE:
            return Condition(kind, ref, m.group("op"), float(m.group("num")), t)
        return Condition(kind, ref, text=t)
    raise ConditionSyntaxError(
        f"cannot read condition {text!r}: use 'NAME > NUMBER' (or >=, <, <=, ==, !=), 'NAME', "
        "'not NAME', 'NAME not good' or 'NAME disagree'"
    )


OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
