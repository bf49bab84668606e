"""Read planner: coalesce tags into the fewest Modbus requests.

Pure. Tags are grouped by (poll period, unit id, table); within a group they are sorted by address
and merged greedily into blocks that respect the protocol limit (125 registers / 2000 bits), the
device's own maximum, and the largest hole worth bridging (``max_gap``: reading a few unused
registers is cheaper than another round trip). Greedy merging over address-sorted spans gives the
fewest blocks for non-overlapping tags under a length cap, so no search is needed.

A tag wider than the device's maximum request can never be read: it is returned in
:attr:`ReadPlan.unplannable` with the reason instead of silently producing an oversized request.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from scada.config.tags import ModbusTable

MAX_REGISTERS = 125
MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One tag's location: ``first``..``last`` inclusive registers (or bits)."""

    tag: str
    unit: int
    table: ModbusTable
    first: int
    last: int
    period_s: float


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read: ``count`` registers/bits from ``start`` covering ``tags``."""

    unit: int
    table: ModbusTable
    start: int
    count: int
    period_s: float
    items: tuple[PlanItem, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(i.tag for i in self.items)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    requests: tuple[ReadRequest, ...]
    unplannable: dict[str, str] = field(default_factory=dict)
    """Tag name -> why it cannot be read with these limits."""

    def by_period(self) -> dict[float, list[ReadRequest]]:
        out: dict[float, list[ReadRequest]] = defaultdict(list)
        for r in self.requests:
            out[r.period_s].append(r)
        return dict(sorted(out.items()))


def plan_reads(
    items: Iterable[PlanItem],
    *,
    max_registers: int = MAX_REGISTERS,
    max_bits: int = MAX_BITS,
    max_gap: int = 16,
) -> ReadPlan:
    """Fewest requests covering every item, per (period, unit, table)."""
    max_registers = min(max_registers, MAX_REGISTERS)
    max_bits = min(max_bits, MAX_BITS)
    groups: dict[tuple[float, int, ModbusTable], list[PlanItem]] = defaultdict(list)
    unplannable: dict[str, str] = {}
    for it in items:
        cap = max_bits if it.table.is_bits else max_registers
        width = it.last - it.first + 1
        if width > cap:
            unplannable[it.tag] = f"{width} registers exceed the device's maximum of {cap} per request"
            continue
        groups[(it.period_s, it.unit, it.table)].append(it)

    requests: list[ReadRequest] = []
    for (period, unit, table), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2].value)):
        cap = max_bits if table.is_bits else max_registers
        group.sort(key=lambda i: (i.first, i.last))
        block: list[PlanItem] = []
        start = end = 0
        for it in group:
            if block and it.first - end - 1 <= max_gap and max(end, it.last) - start + 1 <= cap:
                block.append(it)
                end = max(end, it.last)
                continue
            if block:
                requests.append(ReadRequest(unit, table, start, end - start + 1, period, tuple(block)))
            block, start, end = [it], it.first, it.last
        if block:
            requests.append(ReadRequest(unit, table, start, end - start + 1, period, tuple(block)))
    return ReadPlan(tuple(requests), unplannable)
