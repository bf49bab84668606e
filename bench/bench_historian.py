"""Historian benchmark: ingest through our writer vs the raw driver, and trend aggregation speed.

    .venv/bin/python bench/bench_historian.py            # full: 100 tags x 1 day of 1 s data
    .venv/bin/python bench/bench_historian.py --quick    # CI smoke: a few tags, fewer rows

1. Ingest: N samples (100 tags, every value a change) through ``Historian.submit`` until committed,
   against the raw driver writing the same rows into the same schema in the same run: sqlite3
   ``executemany`` (5,000-row transactions) and psycopg ``executemany`` / ``COPY``. Target >= 50%.
2. Aggregation: a 1-day, 1-second series of one tag (86,400 rows) into 1,000 buckets (avg, min,
   max, first, last, count, time-weighted average, all in SQL) with ``--tags`` tags' worth of data
   in the table (100 in the full run). Target < 50 ms.

PostgreSQL: a private database is created from SCADA_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test) and dropped afterwards; skipped when unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from historian import Historian, make_engine, upgrade  # noqa: E402
from historian.queries import query_aggregates  # noqa: E402
from scada.config.tags import TagConfig  # noqa: E402
from scada.tags import Sample  # noqa: E402

DAY = 86_400
T0 = 1_790_000_000.0
INSERT = "INSERT INTO samples (tag_id, ts, value, quality, reason) VALUES ({p}) ON CONFLICT DO NOTHING"


def admin_url() -> str:
    return os.environ.get("SCADA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


class PgDatabase:
    """A throw-away PostgreSQL database for the run."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"bench_hist_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(admin_url(), autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')
        base = admin_url().rsplit("/", 1)[0]
        self.plain = f"{base}/{self.name}"
        self.url = self.plain.replace("postgresql://", "postgresql+asyncpg://", 1)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(admin_url(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def tag_configs(n: int) -> list[TagConfig]:
    return [TagConfig(name=f"line1.t{i:03d}.pv", history={"max_interval_s": 1e9}) for i in range(n)]


def make_rows(n_tags: int, n_per_tag: int, step_s: float, base: float) -> list[tuple[int, float, float, int, None]]:
    """(tag_id, ts, value, quality, reason) rows: tag ids 1..n_tags, a wandering value."""
    rows = []
    for k in range(n_per_tag):
        ts = base + k * step_s
        for t in range(n_tags):
            rows.append((t + 1, ts, 50.0 + ((k * 7919 + t * 104729) % 1000) / 10.0, 2, None))
    return rows


# ---------------------------------------------------------------------------------- raw baselines
def raw_sqlite_insert(path: str, rows: list[tuple[int, float, float, int, None]], batch: int = 5000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = INSERT.format(p="?, ?, ?, ?, ?")
    gc.collect()
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN")
        conn.executemany(sql, rows[i:i + batch])
        conn.execute("COMMIT")
    dt = time.perf_counter() - t
    conn.close()
    return dt


def raw_pg_executemany(plain: str, rows: list[tuple[int, float, float, int, None]], batch: int = 5000) -> float:
    import psycopg

    sql = INSERT.format(p="%s, %s, %s, %s, %s")
    with psycopg.connect(plain) as conn:
        t = time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows[i:i + batch])
        return time.perf_counter() - t


def raw_pg_copy(plain: str, rows: list[tuple[int, float, float, int, None]], batch: int = 5000) -> float:
    import psycopg

    with psycopg.connect(plain) as conn:
        t = time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY samples (tag_id, ts, value, quality, reason) FROM STDIN") as cp:
                    for r in rows[i:i + batch]:
                        cp.write_row(r)
        return time.perf_counter() - t


def checkpoint(url: str, plain: str | None) -> None:
    """Start a timed part from a clean state: SQLite WAL folded into the database, PostgreSQL CHECKPOINT."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import psycopg

    assert plain is not None
    try:
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute("CHECKPOINT")
    except psycopg.Error:  # not a superuser: only the in-run alternation remains
        pass


async def sql(url: str, statement: str) -> None:
    from sqlalchemy import text

    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


async def register_tags(url: str, n: int) -> None:
    from sqlalchemy import text

    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO tags (name, unit, description, history_mode, auto_registered, created_ts) "
                 "VALUES (:n, '', '', 'on_change', false, 0)"),
            [{"n": c.name} for c in tag_configs(n)],
        )
    await engine.dispose()


# ---------------------------------------------------------------------------------- our writer
async def writer_ingest(url: str, buffer: Path, n_tags: int, n_per_tag: int, base: float) -> float:
    """Seconds from the first submit until every row is committed through the Historian."""
    h = Historian(url, buffer, tag_configs(n_tags), flush_interval_s=0.2, batch_size=5000,
                  max_future_s=1e12, max_past_s=1e12)
    await h.start()
    names = [f"line1.t{i:03d}.pv" for i in range(n_tags)]
    total = n_tags * n_per_tag
    # The producer's work (building Samples) is not the writer's: like the raw rows, built before the clock.
    scans = [{name: Sample.good_value(50.0 + ((k * 7919 + j * 104729) % 1000) / 10.0, base + k)
              for j, name in enumerate(names)} for k in range(n_per_tag)]
    gc.collect()
    t = time.perf_counter()
    for k, scan in enumerate(scans):
        h.submit(scan)
        if k % 50 == 0:
            await asyncio.sleep(0)  # a scan loop yields between scans
    while h.counters["written"] + h.counters["forwarded"] < total:  # noqa: ASYNC110 - polling a counter
        await asyncio.sleep(0.001)
    dt = time.perf_counter() - t
    st = h.status()
    await h.stop()
    assert st["counters"]["buffered"] == 0, "the writer fell back to the buffer during the benchmark"
    return dt


async def aggregate_ms(url: str, twa: bool, runs: int = 7) -> tuple[float, float]:
    """Median and best time of a 1-day / 1,000-bucket aggregate of one tag."""
    engine = make_engine(url)
    times = []
    try:
        for _ in range(runs + 1):
            t = time.perf_counter()
            res = await query_aggregates(engine, ["line1.t000.pv"], T0, T0 + DAY, 1000, twa=twa)
            times.append((time.perf_counter() - t) * 1000)
        b = res["line1.t000.pv"]
        assert len(b) == 1000 and sum(x.count for x in b) == DAY, sum(x.count for x in b)
    finally:
        await engine.dispose()
    times = times[1:]  # first run warms the cache
    return statistics.median(times), min(times)


# ---------------------------------------------------------------------------------- driver
async def bench_backend(name: str, url: str, plain: str | None, tmp: Path, n_tags_ingest: int, per_tag: int,
                        agg_tags: int, rounds: int) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    n = n_tags_ingest * per_tag
    # 1. ingest: alternate writer and raw driver, each into its own day, `rounds` times -------------
    # Each timed part starts from a checkpointed WAL (SQLite) so that none pays for the other's pages.
    ours_s: list[float] = []
    raw_s: list[float] = []
    copy_s: list[float] = []
    for r in range(rounds):
        day = T0 + (10 + 3 * r) * DAY
        checkpoint(url, plain)
        ours_s.append(await writer_ingest(url, tmp / f"{name}-buf-{r}.db", n_tags_ingest, per_tag, day))
        checkpoint(url, plain)
        rows = make_rows(n_tags_ingest, per_tag, 1.0, day + DAY)
        if name == "sqlite":
            raw_s.append(raw_sqlite_insert(url.split("///", 1)[1], rows))
        else:
            assert plain is not None
            raw_s.append(raw_pg_executemany(plain, rows))
            checkpoint(url, plain)
            copy_s.append(raw_pg_copy(plain, make_rows(n_tags_ingest, per_tag, 1.0, day + 2 * DAY)))

    def rate(xs: list[float]) -> str:
        return f"{n / statistics.median(xs):,.0f} rows/s"

    def ratio(base: list[float]) -> str:
        each = [b / o for b, o in zip(base, ours_s, strict=True)]
        return f"{statistics.median(each):.0%} (rounds: {', '.join(f'{x:.0%}' for x in each)})"

    what = f"({n:,} rows, {n_tags_ingest} tags, median of {rounds})"
    out.append((name, f"ingest via Historian.submit {what}", rate(ours_s)))
    if name == "sqlite":
        out.append((name, "ingest raw sqlite3 executemany (same rows, same table)", rate(raw_s)))
        out.append((name, "writer / raw", ratio(raw_s)))
    else:
        out.append((name, "ingest raw psycopg executemany", rate(raw_s)))
        out.append((name, "writer / raw executemany", ratio(raw_s)))
        out.append((name, "ingest raw psycopg COPY", rate(copy_s)))
        out.append((name, "writer / raw COPY", ratio(copy_s)))
    # 2. aggregation over a day with agg_tags tags' worth of data --------------------------------
    await sql(url, "DELETE FROM samples")
    t = time.perf_counter()
    step = 1.0
    chunk_k = max(1, 200_000 // agg_tags)
    for k0 in range(0, DAY, chunk_k):
        k1 = min(DAY, k0 + chunk_k)
        rows = make_rows(agg_tags, k1 - k0, step, T0 + k0)
        if name == "sqlite":
            raw_sqlite_insert(url.split("///", 1)[1], rows, batch=200_000)
        else:
            assert plain is not None
            raw_pg_copy(plain, rows, batch=200_000)
    build = time.perf_counter() - t
    out.append((name, f"build table: {agg_tags} tags x 86,400 s", f"{agg_tags * DAY:,} rows in {build:.1f} s"))
    labels = ((False, "count/avg/min/max/first/last"), (True, "the same + time-weighted avg"))
    if name == "postgresql":
        assert plain is not None
        pg_maintenance(plain, "ANALYZE samples")
        # Rows written since the last (auto)vacuum are not all-visible yet: index-only scans visit the heap.
        med, best = await aggregate_ms(url, False, runs=3)
        out.append((name, f"  {labels[0][1]}, fresh rows before VACUUM (median/best)", f"{med:.1f} / {best:.1f} ms"))
        t = time.perf_counter()
        pg_maintenance(plain, "VACUUM samples")  # what autovacuum does (insert threshold lowered by 0003)
        out.append((name, "  VACUUM samples (sets the visibility map)", f"{time.perf_counter() - t:.1f} s"))
    for twa, label in labels:
        med, best = await aggregate_ms(url, twa)
        ok = "OK" if med < 50 else "over 50 ms"
        out.append((name, f"86,400 rows -> 1,000 buckets, {label} (median/best)", f"{med:.1f} / {best:.1f} ms {ok}"))
    return out


def pg_maintenance(plain: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(statement)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI smoke pass (a few seconds per backend)")
    ap.add_argument("--tags", type=int, default=None, help="tags' worth of 1-day data for the aggregate test")
    ap.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=3, help="alternating writer/raw ingest rounds (median reported)")
    args = ap.parse_args()
    import logging

    logging.getLogger("historian").setLevel(logging.ERROR)  # backlog warnings are expected in a burst
    agg_tags = args.tags or (3 if args.quick else 100)
    per_tag = 300 if args.quick else 2000
    results: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hist-") as d:
        tmp = Path(d)
        if args.backend in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
            await upgrade(url)
            await register_tags(url, max(agg_tags, 100))
            results += await bench_backend("sqlite", url, None, tmp, 100, per_tag, agg_tags, args.rounds)
        if args.backend in ("postgresql", "both"):
            try:
                pg = PgDatabase()
            except Exception as e:  # noqa: BLE001
                print(f"PostgreSQL skipped: {e}")
            else:
                try:
                    await upgrade(pg.url)
                    await register_tags(pg.url, max(agg_tags, 100))
                    results += await bench_backend("postgresql", pg.url, pg.plain, tmp, 100, per_tag, agg_tags,
                                                    args.rounds)
                finally:
                    pg.drop()
    w = max(len(r[1]) for r in results)
    print(f"\n{'backend':<11} {'measure':<{w}}  result")
    print(f"{'-' * 11} {'-' * w}  {'-' * 30}")
    for b, m, r in results:
        print(f"{b:<11} {m:<{w}}  {r}")


if __name__ == "__main__":
    asyncio.run(main())
