"""Store-and-forward: the database is taken away mid-run and given back; nothing lost, nothing twice.

PostgreSQL is reached through a TCP proxy the test can cut (connection refused), black-hole (the
server hangs: timeouts) and restore, plus ``pg_terminate_backend``. SQLite is locked by another
connection holding an exclusive transaction.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from historian import ForwardBuffer, Historian, make_engine, upgrade
from scada.tags import Sample

from .conftest import pg_plain, tag
from .netproxy import Proxy

TAG = "line1.a.temp"
ROOT = str(Path(__file__).resolve().parents[2])


class Outage:
    """Takes the database away and gives it back (backend-specific)."""

    def __init__(self, url: str, proxy: Proxy | None, sqlite_path: Path | None, real_url: str) -> None:
        self.url = url
        self.real_url = real_url
        self.proxy = proxy
        self.sqlite_path = sqlite_path
        self._lock: sqlite3.Connection | None = None

    @property
    def pg(self) -> bool:
        return self.proxy is not None

    async def cut(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
        else:
            def lock() -> sqlite3.Connection:
                c = sqlite3.connect(str(self.sqlite_path), timeout=10, check_same_thread=False)
                c.execute("BEGIN EXCLUSIVE")
                return c

            self._lock = await asyncio.to_thread(lock)

    async def hang(self) -> None:
        assert self.proxy is not None
        self.proxy.mode = "blackhole"
        await self.proxy.start()

    async def restore(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy.mode = "forward"
            await self.proxy.start()
        elif self._lock is not None:
            self._lock.rollback()
            self._lock.close()
            self._lock = None

    def terminate_backends(self) -> int:
        import psycopg

        with psycopg.connect(pg_plain(self.real_url), autocommit=True) as c:
            rows = c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = 'scada-historian' AND datname = current_database()").fetchall()
        return len(rows)


@pytest.fixture
async def outage(migrated_url: str, tmp_path: Path) -> AsyncIterator[Outage]:
    u = make_url(migrated_url)
    if u.get_backend_name() == "sqlite":
        yield Outage(migrated_url, None, Path(str(u.database)), migrated_url)
        return
    proxy = Proxy(u.host or "127.0.0.1", u.port or 5432)
    await proxy.start()
    via = u.set(port=proxy.port).render_as_string(hide_password=False)
    o = Outage(via, proxy, None, migrated_url)
    try:
        yield o
    finally:
        await proxy.stop()


async def until(pred: Callable[[], bool], limit_s: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Feeder:
    """Submits distinct values at increasing timestamps (deadband 0: every one is logged)."""

    def __init__(self, h: Historian) -> None:
        self.h = h
        self.t0 = time.time() - 3000
        self.i = 0
        self.sent: dict[float, float] = {}

    def feed(self, n: int) -> None:
        for _ in range(n):
            ts = self.t0 + self.i * 0.01
            self.h.submit({TAG: Sample.good_value(float(self.i), ts)})
            self.sent[ts] = float(self.i)
            self.i += 1


async def stored(url: str) -> list[tuple[float, float]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            res = await conn.execute(text(
                "SELECT s.ts, s.value FROM samples s JOIN tags t ON t.id = s.tag_id WHERE t.name = :n ORDER BY s.ts"),
                {"n": TAG})
            return [(float(a), float(b)) for a, b in res.all()]
    finally:
        await engine.dispose()


def make_hist(url: str, buffer: Path, **kw: object) -> Historian:
    opts: dict[str, object] = {"flush_interval_s": 0.05, "batch_size": 100, "db_timeout_s": 1.0,
                               "retry_interval_s": 0.1}
    opts.update(kw)
    return Historian(url, buffer, [tag(TAG, max_interval_s=1e6)], **opts)  # type: ignore[arg-type]


def settled(h: Historian) -> bool:
    st = h.status()
    return st["queue_depth"] == 0 and st["buffer_rows"] == 0 and "buffering" not in st["flags"] and st["db_ok"]


async def test_outage_mid_run_loses_nothing_and_duplicates_nothing(outage: Outage, tmp_path: Path) -> None:
    events: list[str] = []
    h = make_hist(outage.url, tmp_path / "buf.db", on_event=lambda e: events.append(f"{e.source}:{e.state}"))
    await h.start()
    f = Feeder(h)
    try:
        f.feed(300)
        await until(lambda: h.counters["written"] == 300, what="first rows written")
        await outage.cut()
        for _ in range(6):
            f.feed(50)
            await asyncio.sleep(0.05)
        await until(lambda: h.status()["buffer_rows"] > 0, what="buffering")
        assert {"db_unreachable", "buffering"} <= set(h.status()["flags"])
        if outage.pg:  # a server that accepts and never answers: timeouts, not refusals
            await outage.hang()
            f.feed(200)
            await asyncio.sleep(1.5)
            assert "db_unreachable" in h.status()["flags"]
        await outage.restore()
        f.feed(200)
        await until(lambda: settled(h), what="buffer forwarded")
        if outage.pg:
            assert outage.terminate_backends() >= 1
            f.feed(100)
            await until(lambda: settled(h) and h.counters["logged"] == f.i, what="after terminate")
        st = h.status()
        assert st["counters"]["buffered"] > 0 and st["counters"]["forwarded"] == st["counters"]["buffered"]
    finally:
        await h.stop()
    rows = await stored(outage.real_url)
    assert len(rows) == len(f.sent) == f.i  # COUNT: nothing lost, nothing twice
    assert dict(rows) == f.sent  # content
    assert "historian.db_unreachable:active" in events and "historian.db_unreachable:cleared" in events
    engine = make_engine(outage.real_url)
    async with engine.connect() as conn:  # the outage is journalled once the database is back
        n = (await conn.execute(text("SELECT count(*) FROM events WHERE source = 'historian.db_unreachable'"))).scalar()
    await engine.dispose()
    assert n == 2


async def test_restart_with_a_non_empty_buffer_forwards_it(outage: Outage, tmp_path: Path) -> None:
    buf = tmp_path / "buf.db"
    await outage.cut()
    h = make_hist(outage.url, buf)
    await h.start()
    f = Feeder(h)
    f.feed(500)
    await h.stop()  # final flush goes to the buffer
    b = ForwardBuffer(buf)
    assert b.sample_rows == 500
    b.close()
    await outage.restore()
    h2 = make_hist(outage.url, buf)
    await h2.start()
    try:
        await until(lambda: settled(h2), what="forwarded after restart")
    finally:
        await h2.stop()
    rows = await stored(outage.real_url)
    assert len(rows) == 500 and dict(rows) == f.sent


async def test_full_buffer_raises_a_flag_and_keeps_data_in_memory(outage: Outage, tmp_path: Path) -> None:
    await outage.cut()
    h = make_hist(outage.url, tmp_path / "buf.db", buffer_max_bytes=64 * 1024)
    await h.start()
    f = Feeder(h)
    try:
        for _ in range(40):
            f.feed(250)
            await asyncio.sleep(0.02)
        await until(lambda: "buffer_full" in h.status()["flags"], what="buffer full")
        st = h.status()
        assert st["buffer_fraction"] > 0.8 and st["queue_depth"] > 0 and "buffer_filling" in st["flags"]
        assert st["counters"]["dropped"] == 0
        await outage.restore()
        await until(lambda: settled(h), limit_s=30, what="drained")
        assert "buffer_full" not in h.status()["flags"]
    finally:
        await h.stop()
    rows = await stored(outage.real_url)
    assert len(rows) == f.i == 10_000 and dict(rows) == f.sent


def test_buffer_is_fifo_and_reports_disk_full(tmp_path: Path) -> None:
    from historian import BufferFull
    from historian.policy import Record
    from scada.tags import Quality

    b = ForwardBuffer(tmp_path / "b.db", max_bytes=64 * 1024)
    b.append_samples([Record("a", float(i), float(i), Quality.GOOD, None) for i in range(10)])
    b.append_samples([Record("b", float(i), None, Quality.BAD, "comm_failure") for i in range(5)])
    seq, rows = b.peek_samples(12)
    assert [r.tag for r in rows] == ["a"] * 10 + ["b"] * 2 and rows[10].reason == "comm_failure"
    b.delete_samples_upto(seq)
    assert b.sample_rows == 3
    with pytest.raises(BufferFull):
        for _ in range(1000):
            b.append_samples([Record("x" * 50, float(i), 1.0, Quality.GOOD, None) for i in range(100)])
    assert b.fraction() > 0.9
    b.close()


CHILD = r"""
import asyncio, sys, time
sys.path.insert(0, {root!r})
from historian import Historian
from scada.config.tags import TagConfig
from scada.tags import Sample

async def main():
    h = Historian({url!r}, {buf!r}, [TagConfig(name="line1.a.temp", history={{"max_interval_s": 1e6}})],
                  flush_interval_s=0.2, db_timeout_s=0.5, retry_interval_s=60)
    await h.start()
    t0 = time.time() - 100
    i = 0
    while True:
        h.submit({{"line1.a.temp": Sample.good_value(float(i), t0 + i * 0.01)}})
        print(i, h.status()["buffer_rows"], flush=True)
        i += 1
        await asyncio.sleep(0.005)

asyncio.run(main())
"""


def run_and_kill(code: str) -> tuple[int, int, str]:
    """Run the child until it has buffered for ~150 more samples, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = -1
    flushed_at = -1  # first i printed while the buffer already held rows
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            i, rows = (int(x) for x in line.split())
            last = i
            if rows > 0 and flushed_at < 0:
                flushed_at = i
            if flushed_at >= 0 and i >= flushed_at + 150:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    return last, flushed_at, err


async def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    """Child process buffering (database unreachable) is killed -9; the buffer keeps every flushed row."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here: connection refused
    buf = tmp_path / "buf.db"
    code = CHILD.format(root=ROOT, url=f"postgresql+asyncpg://nobody@127.0.0.1:{dead}/x", buf=str(buf))
    last, flushed_at, err = await asyncio.to_thread(run_and_kill, code)
    assert flushed_at >= 0, err
    b = ForwardBuffer(buf)
    _, rows = b.peek_samples(100_000)
    n = b.sample_rows
    b.close()
    values = [r.value for r in rows]
    assert values == [float(i) for i in range(n)]  # in order, no gap, no duplicate
    # lost: what was submitted after the last flush; at 5 ms per sample and a 0.2 s flush interval
    # that is ~40 rows (plus scheduling slack on a loaded machine), never an older row
    assert last - n < 120, (last, n)
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    await upgrade(url)
    h = make_hist(url, buf)
    await h.start()
    try:
        await until(lambda: settled(h), what="forward after kill")
    finally:
        await h.stop()
    assert [v for _, v in await stored(url)] == values
