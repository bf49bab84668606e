"""Queries on both backends: aggregates equal numpy, raw/step/CSV, events, users, retention, bad input."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest

from historian import Historian, UnknownTag, UserExists
from scada.events import Event, EventKind
from scada.tags import Quality, QualityReason, Sample

from .conftest import FakeClock, tag

T0 = 1_800_000_000.0


async def make(url: str, tmp_path: Path, clock: FakeClock, **kw: object) -> Historian:
    h = Historian(url, tmp_path / "buffer.db", [tag("line1.a.temp"), tag("line1.b.temp")],
                  flush_interval_s=0.05, db_timeout_s=3.0, clock=clock, **kw)  # type: ignore[arg-type]
    await h.start()
    return h


def series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.uniform(0.2, 3.0, n))
    vals = 50 + np.cumsum(rng.normal(0, 1, n))
    qual = np.where(rng.random(n) < 0.05, 0, np.where(rng.random(n) < 0.05, 1, 2))
    return ts, vals, qual


def reference(ts: np.ndarray, vals: np.ndarray, qual: np.ndarray, start: float, end: float,
              n: int) -> dict[int, tuple[float, ...]]:
    """The documented aggregate semantics, in numpy."""
    m = (ts >= start) & (ts < end)
    ts, vals, qual = ts[m], vals[m], qual[m]
    width = (end - start) / n
    # bucket i covers [start + i*width, start + (i+1)*width), the last one ends at end (as documented)
    edges = start + np.arange(1, n) * width
    b = np.searchsorted(edges, ts, side="right")
    nxt = np.append(ts[1:], np.nan)
    bend = np.where(b == n - 1, end, start + (b + 1) * width)
    hold = np.where(np.isnan(nxt) | (nxt > bend), bend, nxt)
    dur = hold - ts
    use = qual > 0
    out: dict[int, tuple[float, ...]] = {}
    for k in np.unique(b[use]):
        s = use & (b == k)
        v = vals[s]
        out[int(k)] = (int(s.sum()), v.mean(), v.min(), v.max(), v[0], v[-1],
                       float((v * dur[s]).sum() / dur[s].sum()))
    return out


async def test_aggregates_equal_numpy(migrated_url: str, tmp_path: Path) -> None:
    clock = FakeClock(T0 + 5000)
    h = await make(migrated_url, tmp_path, clock)
    try:
        data = {}
        for i, name in enumerate(["line1.a.temp", "line1.b.temp"]):
            ts, vals, qual = series(2500, seed=i)
            data[name] = (ts, vals, qual)
            for t, v, q in zip(ts, vals, qual, strict=True):
                quality = Quality(int(q))
                h.submit({name: Sample(value=float(v), quality=quality, server_ts=float(t),
                                       reason=QualityReason.NONE if q == 2 else QualityReason.COMM_FAILURE)})
        await h.stop()
        await h.start()
        for start, end, n in [(T0 + 13.7, T0 + 4000.3, 37), (T0, T0 + 5000, 1000), (T0 + 100, T0 + 101, 1)]:
            got = await h.query_aggregates(["line1.a.temp", "line1.b.temp"], start, end, n)
            for name, buckets in got.items():
                assert len(buckets) == n
                ref = reference(*data[name], start, end, n)
                for i, bk in enumerate(buckets):
                    if i not in ref:
                        assert bk.count == 0 and bk.avg is None and bk.twa is None
                        continue
                    cnt, avg, mn, mx, first, last, twa = ref[i]
                    assert bk.count == cnt
                    assert (bk.avg, bk.min, bk.max, bk.first, bk.last, bk.twa) == pytest.approx(
                        (avg, mn, mx, first, last, twa), rel=1e-9, abs=1e-9)
                assert buckets[0].start == start and buckets[-1].end == end
            fast = await h.query_aggregates(["line1.a.temp"], start, end, n, twa=False)
            full = got["line1.a.temp"]
            for a, b in zip(fast["line1.a.temp"], full, strict=True):
                assert (a.count, a.first, a.last, a.min, a.max) == (b.count, b.first, b.last, b.min, b.max)
                assert a.avg == (None if b.avg is None else pytest.approx(b.avg, rel=1e-12))
            assert all(b.twa is None for b in fast["line1.a.temp"])
        with pytest.raises(UnknownTag):
            await h.query_aggregates(["nope"], T0, T0 + 1, 3)
        with pytest.raises(ValueError):
            await h.query_aggregates(["line1.a.temp"], T0, T0, 3)
    finally:
        await h.stop()


async def test_raw_last_before_and_csv(migrated_url: str, tmp_path: Path) -> None:
    clock = FakeClock(T0 + 100)
    h = await make(migrated_url, tmp_path, clock)
    try:
        for i in range(10):
            h.submit({"line1.a.temp": Sample.good_value(20.0 + i, T0 + i)})
        h.submit({"line1.a.temp": Sample.bad(QualityReason.COMM_FAILURE, T0 + 10)})
        await h.stop()
        await h.start()
        raw = await h.query_raw("line1.a.temp", T0 + 2, T0 + 11)
        assert [s.ts for s in raw] == [T0 + i for i in range(2, 11)]
        assert raw[-1].quality is Quality.BAD and raw[-1].value is None and raw[-1].reason == "comm_failure"
        before = await h.last_before("line1.a.temp", T0 + 2)
        assert before is not None and before.ts == T0 + 1 and before.value == 21.0
        assert await h.last_before("line1.a.temp", T0) is None
        text_ = await h.export_csv(["line1.a.temp", "line1.b.temp"], T0, T0 + 3)
        rows = list(csv.DictReader(io.StringIO(text_)))
        assert [(r["tag"], float(r["value"]), r["quality"]) for r in rows] == [
            ("line1.a.temp", 20.0, "good"), ("line1.a.temp", 21.0, "good"), ("line1.a.temp", 22.0, "good")]
        assert rows[0]["time_utc"].endswith("Z")
    finally:
        await h.stop()


async def test_events_round_trip_and_filters(migrated_url: str, tmp_path: Path) -> None:
    h = await make(migrated_url, tmp_path, FakeClock(T0 + 100))
    try:
        evs = [
            Event(ts=T0 + i, kind=[EventKind.ALARM, EventKind.AUDIT, EventKind.LOGIN][i % 3], source=f"src{i % 4}",
                  message=f"m{i}", tank="nickel" if i % 2 else "chrome", priority=["high", "low"][i % 2],
                  state=["active", "cleared"][i % 2], value=float(i), user="alice" if i % 5 == 0 else None,
                  data={"i": i, "nested": {"ok": True}})
            for i in range(30)
        ]
        await h.write_events(evs)
        got = await h.query_events(limit=1000)
        assert len(got) == 30 and got[0].ts == T0 + 29  # newest first
        assert got[-1].data == {"i": 0, "nested": {"ok": True}} and got[-1].user == "alice"
        assert all(e.id is not None for e in got)
        alarms = await h.query_events(kinds=["alarm"], tank="nickel", newest_first=False)
        assert [e.message for e in alarms] == [f"m{i}" for i in range(30) if i % 3 == 0 and i % 2]
        page = await h.query_events(start=T0 + 10, end=T0 + 20, limit=3, offset=2, newest_first=False)
        assert [e.value for e in page] == [12.0, 13.0, 14.0]
        assert {e.source for e in await h.query_events(source="src1")} == {"src1"}
        assert all(e.priority == "high" and e.state == "active" for e in await h.query_events(priority="high"))
        assert len(await h.query_events(state="cleared", kinds=["audit", "login"])) == 10
    finally:
        await h.stop()


async def test_users(migrated_url: str, tmp_path: Path) -> None:
    h = await make(migrated_url, tmp_path, FakeClock())
    try:
        u = await h.create_user("alice", "argon2$x", "operator")
        assert u.username == "alice" and not u.disabled and u.id > 0
        with pytest.raises(UserExists):
            await h.create_user("alice", "y", "admin")
        await h.create_user("bob", "h", "engineer")
        assert [x.username for x in await h.list_users()] == ["alice", "bob"]
        assert (await h.update_user_role("alice", "supervisor")).role == "supervisor"
        assert (await h.set_user_disabled("bob")).disabled
        assert (await h.get_user("bob")).disabled  # type: ignore[union-attr]
        assert await h.get_user("carol") is None
        with pytest.raises(KeyError):
            await h.update_user_role("carol", "x")
    finally:
        await h.stop()


async def test_retention_per_tag_and_global_in_batches(migrated_url: str, tmp_path: Path) -> None:
    clock = FakeClock(T0 + 10 * 86400)
    tags = [tag("line1.short.temp", retention_days=2), tag("line1.long.temp")]
    h = Historian(migrated_url, tmp_path / "b.db", tags, flush_interval_s=0.05, clock=clock,
                  retention_days=5, events_retention_days=3, retention_batch=7)
    await h.start()
    try:
        for d in range(10):
            for k in range(10):
                t = T0 + d * 86400 + k
                h.submit({"line1.short.temp": Sample.good_value(float(k + d), t),
                          "line1.long.temp": Sample.good_value(float(k + d), t)})
        await h.write_events([Event(ts=T0 + d * 86400, kind=EventKind.SYSTEM, source="s") for d in range(10)])
        await h.stop()
        await h.start()
        res = await h.apply_retention()
        # cutoff short: day 8 (2 days back), long: global 5 days -> day 5
        assert res == {"samples": 80 + 50, "events": 7}
        short = await h.query_raw("line1.short.temp", 0, T0 + 20 * 86400)
        long_ = await h.query_raw("line1.long.temp", 0, T0 + 20 * 86400)
        # 2 resp. 5 days kept, plus the heartbeat row written at stop (value unchanged until "now")
        assert min(s.ts for s in short) == T0 + 8 * 86400 and len(short) == 20 + 1
        assert min(s.ts for s in long_) == T0 + 5 * 86400 and len(long_) == 50 + 1
        assert short[-1].ts == clock.t and short[-1].value == short[-2].value
    finally:
        await h.stop()


async def test_bad_input_is_counted_and_never_loses_the_batch(migrated_url: str, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    h = await make(migrated_url, tmp_path, clock)
    try:
        h.submit({
            "line1.a.temp": Sample.good_value(math.nan, T0 - 5),
            "line1.b.temp": Sample.good_value(math.inf, T0 - 5),
            "line1.new.tag": Sample.good_value(1.0, T0 - 5),  # unknown: auto-registered
            "line1.c.temp": Sample.good_value(1.0, T0 + 3600),  # far future
            "line1.d.temp": Sample.good_value(1.0, 1.0),  # 1970
        })
        h.submit([("line1.new.tag", Sample.good_value(2.0, T0 - 4)), ("line1.new.tag", Sample.good_value(3.0, T0 - 4))])
        await h.stop()
        st = h.status()
        assert st["coerced"] == {"non_finite": 2}
        assert st["rejected"] == {"future_timestamp": 1, "past_timestamp": 1, "out_of_order": 1}
        await h.start()
        a = await h.query_raw("line1.a.temp", 0, T0)
        assert [(s.value, s.quality, s.reason) for s in a] == [(None, Quality.BAD, "out_of_range")]
        assert [s.value for s in await h.query_raw("line1.new.tag", 0, T0)] == [1.0, 2.0]
        with pytest.raises(UnknownTag):
            await h.query_raw("line1.c.temp", 0, T0 + 1e6)
    finally:
        await h.stop()


async def test_unknown_tags_rejected_when_auto_register_is_off(migrated_url: str, tmp_path: Path) -> None:
    h = await make(migrated_url, tmp_path, FakeClock(T0), auto_register=False)
    try:
        h.submit({"line1.x": Sample.good_value(1.0, T0), "line1.a.temp": Sample.good_value(1.0, T0)})
        assert h.status()["rejected"] == {"unknown_tag": 1}
        assert h.status()["queue_depth"] == 1
    finally:
        await h.stop()
