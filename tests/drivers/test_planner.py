"""Pure planner tests: coalescing, limits, gaps, periods, units, tables."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from drivers.planner import PlanItem, plan_reads
from scada.config.tags import ModbusTable

H, IN, C = ModbusTable.HOLDING, ModbusTable.INPUT, ModbusTable.COIL


def it(tag: str, first: int, width: int = 1, table: ModbusTable = H, unit: int = 1, period: float = 1.0) -> PlanItem:
    return PlanItem(tag, unit, table, first, first + width - 1, period)


def test_contiguous_tags_one_request() -> None:
    plan = plan_reads([it(f"t{i}", i) for i in range(100)])
    assert [(r.start, r.count) for r in plan.requests] == [(0, 100)]
    assert len(plan.requests[0].tags) == 100


def test_125_register_cap_splits() -> None:
    plan = plan_reads([it(f"t{i}", i) for i in range(300)])
    assert [(r.start, r.count) for r in plan.requests] == [(0, 125), (125, 125), (250, 50)]


def test_device_max_and_gap() -> None:
    items = [it("a", 0), it("b", 5), it("c", 30), it("d", 31, 2)]
    plan = plan_reads(items, max_registers=10, max_gap=3)
    assert [(r.start, r.count) for r in plan.requests] == [(0, 1), (5, 1), (30, 3)]
    plan = plan_reads(items, max_registers=125, max_gap=24)
    assert [(r.start, r.count, r.tags) for r in plan.requests] == [(0, 33, ("a", "b", "c", "d"))]


def test_gap_exactly_max_gap_is_bridged() -> None:
    assert len(plan_reads([it("a", 0), it("b", 17)], max_gap=16).requests) == 1
    assert len(plan_reads([it("a", 0), it("b", 18)], max_gap=16).requests) == 2


def test_multi_register_value_never_split() -> None:
    plan = plan_reads([it("a", 0, 2), it("b", 2, 4), it("c", 6, 2)], max_registers=5, max_gap=0)
    assert [(r.start, r.count) for r in plan.requests] == [(0, 2), (2, 4), (6, 2)]
    assert all(i.first >= r.start and i.last < r.start + r.count for r in plan.requests for i in r.items)


def test_bits_use_2000_cap() -> None:
    plan = plan_reads([it(f"c{i}", i, table=C) for i in range(0, 4500)], max_bits=5000)
    assert [(r.start, r.count) for r in plan.requests] == [(0, 2000), (2000, 2000), (4000, 500)]


def test_grouped_by_table_unit_and_period() -> None:
    items = [it("a", 0), it("b", 1, table=IN), it("c", 2, unit=2), it("d", 3, period=0.1), it("e", 4)]
    plan = plan_reads(items)
    keys = sorted((r.period_s, r.unit, r.table.value, r.tags) for r in plan.requests)
    assert keys == [(0.1, 1, "holding", ("d",)), (1.0, 1, "holding", ("a", "e")), (1.0, 1, "input", ("b",)),
                    (1.0, 2, "holding", ("c",))]
    assert list(plan.by_period()) == [0.1, 1.0]


def test_value_wider_than_device_max_is_unplannable() -> None:
    plan = plan_reads([it("wide", 0, 4), it("ok", 10)], max_registers=2)
    assert "wide" in plan.unplannable and "exceed" in plan.unplannable["wide"]
    assert [r.tags for r in plan.requests] == [("ok",)]


@given(
    addrs=st.lists(st.tuples(st.integers(0, 2000), st.sampled_from([1, 2, 4])), min_size=1, max_size=200, unique_by=lambda a: a[0]),
    cap=st.integers(4, 125),
    gap=st.integers(0, 30),
)
def test_plan_properties(addrs: list[tuple[int, int]], cap: int, gap: int) -> None:
    items = [it(f"t{a}", a, w) for a, w in addrs]
    plan = plan_reads(items, max_registers=cap, max_gap=gap)
    covered = [i.tag for r in plan.requests for i in r.items]
    assert sorted(covered) == sorted(i.tag for i in items)  # every tag exactly once
    for r in plan.requests:
        assert 1 <= r.count <= cap
        for i in r.items:
            assert r.start <= i.first and i.last <= r.start + r.count - 1
