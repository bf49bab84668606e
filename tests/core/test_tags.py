"""Tag model and TagStore fan-out: many subscribers, and a slow one never blocks the producer."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from scada.tags import NE107, Quality, QualityReason, Sample, SubscriptionClosed, TagStore


def good(v: float, ts: float = 1.0) -> Sample:
    return Sample.good_value(v, ts)


def test_quality_order_and_opcua_codes() -> None:
    assert Quality.BAD < Quality.UNCERTAIN < Quality.GOOD
    assert good(1).opcua_status == 0
    assert Sample.bad(QualityReason.COMM_FAILURE, 0).opcua_status == 0x80050000
    assert Sample.bad(QualityReason.SENSOR_FAILURE, 0).opcua_status == 0x808C0000
    unc = Sample(1.0, Quality.UNCERTAIN, 0, reason=QualityReason.SENSOR_NOT_ACCURATE)
    assert unc.opcua_status >> 30 == 1  # Uncertain family


def test_usable_refuses_bad_and_non_finite() -> None:
    assert good(1.0).usable
    assert not Sample.bad(QualityReason.COMM_FAILURE, 0, value=3.0).usable
    assert not good(math.nan).usable
    assert not Sample(None, Quality.GOOD, 0).usable
    assert Sample(2.0, Quality.UNCERTAIN, 0).usable


def test_ne107_maps_to_quality() -> None:
    assert NE107.FAILURE.quality() is Quality.BAD
    assert NE107.CHECK_FUNCTION.quality() is Quality.BAD
    assert NE107.OUT_OF_SPECIFICATION.quality() is Quality.UNCERTAIN
    assert NE107.MAINTENANCE_REQUIRED.quality() is Quality.GOOD


def test_declared_tags_start_bad_waiting() -> None:
    store = TagStore(clock=lambda: 5.0)
    store.declare(["a", "b"])
    assert store.get("a").quality is Quality.BAD
    assert store.get("a").reason is QualityReason.WAITING_FOR_INITIAL_DATA
    with pytest.raises(KeyError, match="unknown tag 'zz'"):
        store.get("zz")


def test_publish_reports_only_real_changes() -> None:
    store = TagStore()
    assert store.publish({"a": good(1, 1)}) == ["a"]
    assert store.publish({"a": good(1, 2)}) == []  # same reading, newer timestamp
    assert store.get("a").server_ts == 2  # but the value is refreshed
    assert store.publish({"a": good(1, 3).with_quality(Quality.BAD, QualityReason.COMM_FAILURE)}) == ["a"]


async def test_coalescing_subscription_keeps_latest_per_tag() -> None:
    store = TagStore()
    sub = store.subscribe("hmi", ["line1.*"], initial=False)
    for i in range(100):
        store.publish({"line1.t": good(i), "other.x": good(i)})
    items = await sub.get(timeout=0.1)
    assert items == [("line1.t", good(99))]
    assert sub.coalesced == 99


async def test_queue_subscription_is_lossless_in_order() -> None:
    store = TagStore()
    sub = store.subscribe("alarms", policy="queue", maxsize=1000, initial=False)
    for i in range(50):
        store.publish({"a": good(i)})
    items = await sub.get(timeout=0.1)
    assert [s.value for _, s in items] == list(range(50))


async def test_overflowing_queue_subscriber_is_dropped_and_told() -> None:
    store = TagStore()
    slow = store.subscribe("slow", policy="queue", maxsize=10, initial=False)
    fast = store.subscribe("fast", policy="queue", maxsize=10_000, initial=False)
    for i in range(11):
        store.publish({"a": good(i)})
    assert slow.closed and "overflow" in slow.close_reason
    assert store.dropped_subscriptions == 1
    assert slow not in store.subscriptions and fast in store.subscriptions
    with pytest.raises(SubscriptionClosed, match="overflow"):
        await slow.get(timeout=0.1)
    assert len(await fast.get(timeout=0.1)) == 11


async def test_many_subscribers_and_a_stuck_one_do_not_slow_the_producer() -> None:
    store = TagStore()
    names = [f"line1.t{i}" for i in range(1000)]
    store.declare(names)
    received: dict[int, int] = {}

    async def consumer(idx: int) -> None:
        sub = store.subscribe(f"c{idx}", ["line1.*"], initial=False)
        received[idx] = 0
        while True:
            received[idx] += len(await sub.get())

    stuck = store.subscribe("stuck", initial=False)  # never read
    tasks = [asyncio.create_task(consumer(i)) for i in range(20)]
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    worst = 0.0
    for scan in range(50):
        s0 = time.perf_counter()
        store.publish({n: good(scan) for n in names})
        worst = max(worst, time.perf_counter() - s0)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - t0
    await asyncio.sleep(0.05)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Every live consumer saw the last scan's values; the stuck one holds one coalesced value per tag.
    assert all(n > 0 for n in received.values())
    assert stuck.pending() == 1000
    assert not stuck.closed
    assert elapsed < 10  # sanity only; speed is measured in bench/, not here
    assert worst < 5


async def test_get_times_out_empty_and_close() -> None:
    store = TagStore()
    sub = store.subscribe("x", initial=False)
    assert await sub.get(timeout=0.01) == []
    sub.close()
    with pytest.raises(SubscriptionClosed):
        await sub.get()


def test_invalid_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        TagStore().subscribe("x", policy="lossy")


def test_initial_snapshot_delivered() -> None:
    store = TagStore()
    store.publish({"a": good(1), "b": good(2)})
    sub = store.subscribe("x", ["a"])
    assert sub.drain() == [("a", good(1))]
