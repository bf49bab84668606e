"""Read side: raw ranges, bucketed aggregates computed in SQL, step-plot anchors, CSV, events, retention.

Aggregates use only usable rows (quality Good or Uncertain with a non-NULL value). The time-weighted
average holds each usable sample until the next stored sample of the tag (of any quality: a Bad
sample ends the hold) or the end of its bucket, whichever comes first; time before the first sample
of a bucket is not counted. ``tests/historian/test_queries.py`` checks every figure against numpy.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from scada.events import Event, EventKind
from scada.tags import Quality

_QUALITY = {q.value: q for q in Quality}


@dataclass(frozen=True, slots=True)
class StoredSample:
    """One row read back from ``samples``."""

    ts: float
    value: float | None
    quality: Quality
    reason: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates of one tag over ``[start, end)``. Empty buckets have count 0 and None figures."""

    start: float
    end: float
    count: int
    avg: float | None
    min: float | None
    max: float | None
    first: float | None
    last: float | None
    twa: float | None
    """Time-weighted average (sample-and-hold, see module docstring)."""


class UnknownTag(KeyError):
    """A query named a tag the historian has never stored."""

    def __str__(self) -> str:
        return f"unknown tag {self.args[0]!r}: not in the historian's tags table"


async def tag_id(conn: AsyncConnection, name: str) -> int:
    res = await conn.execute(text("SELECT id FROM tags WHERE name = :n"), {"n": name})
    row = res.first()
    if row is None:
        raise UnknownTag(name)
    return int(row[0])


def _sample(row: Any) -> StoredSample:
    return StoredSample(float(row[0]), None if row[1] is None else float(row[1]), _QUALITY[int(row[2])], row[3])


async def query_raw(engine: AsyncEngine, tag: str, start: float, end: float) -> list[StoredSample]:
    """Every stored row of ``tag`` with ``start <= ts < end``, oldest first."""
    async with engine.connect() as conn:
        tid = await tag_id(conn, tag)
        res = await conn.execute(
            text("SELECT ts, value, quality, reason FROM samples WHERE tag_id = :t AND ts >= :a AND ts < :b "
                 "ORDER BY ts"),
            {"t": tid, "a": start, "b": end},
        )
        return [_sample(r) for r in res.all()]


async def last_before(engine: AsyncEngine, tag: str, ts: float) -> StoredSample | None:
    """The newest row of ``tag`` strictly before ``ts`` (where a step plot starts), or None."""
    async with engine.connect() as conn:
        tid = await tag_id(conn, tag)
        res = await conn.execute(
            text("SELECT ts, value, quality, reason FROM samples WHERE tag_id = :t AND ts < :b "
                 "ORDER BY ts DESC LIMIT 1"),
            {"t": tid, "b": ts},
        )
        row = res.first()
        return None if row is None else _sample(row)


# Bucket i of n covers [start + i*width, start + (i+1)*width); the last one ends exactly at :end. Every
# query below computes the edges with that same expression, so adjacent buckets share one float edge.
_USABLE = "quality > 0 AND value IS NOT NULL"

# SQLite: the bucket edges go into a temp table keyed by i (INTEGER PRIMARY KEY = rowid order), and the
# aggregate is a nested loop "for each bucket, range-seek the (tag_id, ts) key": the rows come out
# grouped by i already, so GROUP BY needs no sorter (that sort was ~40 % of the query).
_SQLITE_BUCKETS = (
    "CREATE TEMP TABLE IF NOT EXISTS hist_buckets (i INTEGER PRIMARY KEY, b0 REAL NOT NULL, b1 REAL NOT NULL)",
    "DELETE FROM temp.hist_buckets",
    """INSERT INTO temp.hist_buckets (i, b0, b1)
WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < :n)
SELECT i, :start + i * :width, CASE WHEN i = :n - 1 THEN :end ELSE :start + (i + 1) * :width END FROM k""",
)
_SQLITE_FIRST_LAST = """
SELECT g.i, g.n, g.avg_v, g.min_v, g.max_v, f.value, l.value, g.wsum, g.wdur, g.first_ts
FROM g
JOIN samples f ON f.tag_id = :tag AND f.ts = g.first_ts
JOIN samples l ON l.tag_id = :tag AND l.ts = g.last_ts
ORDER BY g.i"""
_SQLITE_PLAIN = f"""
WITH g AS (
    SELECT k.i AS i, COUNT(*) AS n, AVG(s.value) AS avg_v, MIN(s.value) AS min_v, MAX(s.value) AS max_v,
           MIN(s.ts) AS first_ts, MAX(s.ts) AS last_ts, NULL AS wsum, NULL AS wdur
    FROM temp.hist_buckets k JOIN samples s ON s.tag_id = :tag AND s.ts >= k.b0 AND s.ts < k.b1
    WHERE s.quality > 0 AND s.value IS NOT NULL
    GROUP BY k.i
){_SQLITE_FIRST_LAST}"""
# Time-weighted average on SQLite. A usable row holds until the next row of the tag (any quality) in
# its bucket, else the bucket end: one PK seek per usable row finds that next row (SQLite has no cheap
# pairing: LEAD costs more than the seek and forces a sorted GROUP BY). The summed hold telescopes: from
# a bucket's first usable row on, all rows together hold b1 - first_ts, so the usable hold is that
# minus the holds of the (rare) unusable rows after it, which a second, filtered pass returns.
_NEXT = "COALESCE((SELECT MIN(x.ts) FROM samples x WHERE x.tag_id = :tag AND x.ts > s.ts AND x.ts < k.b1), k.b1)"
_SQLITE_TWA = f"""
WITH g AS (
    SELECT k.i AS i, COUNT(*) AS n, AVG(s.value) AS avg_v, MIN(s.value) AS min_v, MAX(s.value) AS max_v,
           MIN(s.ts) AS first_ts, MAX(s.ts) AS last_ts, SUM(s.value * ({_NEXT} - s.ts)) AS wsum,
           k.b1 - MIN(s.ts) AS wdur
    FROM temp.hist_buckets k JOIN samples s ON s.tag_id = :tag AND s.ts >= k.b0 AND s.ts < k.b1
    WHERE s.quality > 0 AND s.value IS NOT NULL
    GROUP BY k.i
){_SQLITE_FIRST_LAST}"""
_SQLITE_UNUSABLE_HOLDS = f"""
SELECT k.i, s.ts, {_NEXT} - s.ts
FROM temp.hist_buckets k JOIN samples s ON s.tag_id = :tag AND s.ts >= k.b0 AND s.ts < k.b1
WHERE s.quality = 0 OR s.value IS NULL"""

# PostgreSQL: one index-only scan of the (tag_id, ts) INCLUDE (value, quality) key range, hash
# aggregated by bucket (work_mem raised for the transaction so the planner does not sort instead),
# then first/last read by two index-only lookups per bucket.
_PG_BUCKET = "LEAST(CAST(floor((ts - :start) / :width) AS INTEGER), :n - 1)"
_PG_LOOKUP = "(SELECT value FROM samples x WHERE x.tag_id = :tag AND x.ts = g.{col})"
_PG_PLAIN = f"""
WITH g AS (
    SELECT {_PG_BUCKET} AS i, COUNT(*) AS n, AVG(value) AS avg_v, MIN(value) AS min_v, MAX(value) AS max_v,
           MIN(ts) AS first_ts, MAX(ts) AS last_ts
    FROM samples WHERE tag_id = :tag AND ts >= :start AND ts < :end AND {_USABLE}
    GROUP BY 1
)
SELECT g.i, g.n, g.avg_v, g.min_v, g.max_v, {_PG_LOOKUP.format(col="first_ts")}, {_PG_LOOKUP.format(col="last_ts")},
       NULL, NULL
FROM g"""
# Time-weighted average on PostgreSQL: per bucket (LATERAL), LEAD over the bucket's own rows with the
# bucket end as default, so the last row of a bucket holds to the bucket end without a CASE per row.
_F8 = "CAST(:{} AS DOUBLE PRECISION)"  # asyncpg would infer integer parameters next to k.i
_PG_B0 = f"{_F8.format('start')} + k.i * {_F8.format('width')}"
_PG_B1 = (f"CASE WHEN k.i = :n - 1 THEN {_F8.format('end')} "
          f"ELSE {_F8.format('start')} + (k.i + 1) * {_F8.format('width')} END")
_PG_TWA = f"""
WITH g AS (
    SELECT k.i, a.n, a.avg_v, a.min_v, a.max_v, a.first_ts, a.last_ts, a.wsum, a.wdur
    FROM generate_series(0, :n - 1) AS k(i) CROSS JOIN LATERAL (
        SELECT COUNT(*) AS n, AVG(value) AS avg_v, MIN(value) AS min_v, MAX(value) AS max_v,
               MIN(ts) AS first_ts, MAX(ts) AS last_ts, SUM(value * (nx - ts)) AS wsum, SUM(nx - ts) AS wdur
        FROM (
            SELECT ts, value, quality, LEAD(ts, 1, {_PG_B1}) OVER (ORDER BY ts) AS nx
            FROM samples WHERE tag_id = :tag AND ts >= {_PG_B0} AND ts < {_PG_B1}
        ) r
        WHERE {_USABLE}
    ) a
    WHERE a.n > 0
)
SELECT g.i, g.n, g.avg_v, g.min_v, g.max_v, {_PG_LOOKUP.format(col="first_ts")}, {_PG_LOOKUP.format(col="last_ts")},
       g.wsum, g.wdur
FROM g"""


async def _aggregate_rows(conn: AsyncConnection, tid: int, params: dict[str, Any], twa: bool) -> list[Any]:
    """Rows ``(i, n, avg, min, max, first, last, wsum, wdur)`` of the non-empty buckets of one tag."""
    p = {**params, "tag": tid}
    if conn.dialect.name == "sqlite":
        for stmt in _SQLITE_BUCKETS:
            await conn.execute(text(stmt), p)
        if not twa:
            return list((await conn.execute(text(_SQLITE_PLAIN), p)).all())
        rows = (await conn.execute(text(_SQLITE_TWA), p)).all()
        unusable = (await conn.execute(text(_SQLITE_UNUSABLE_HOLDS), p)).all()
        if not unusable:
            return list(rows)
        first_ts = {int(r[0]): float(r[9]) for r in rows}
        cut: dict[int, float] = {}
        for i, ts, hold in unusable:  # only holds after the bucket's first usable row overlap its span
            f = first_ts.get(int(i))
            if f is not None and ts > f:
                cut[int(i)] = cut.get(int(i), 0.0) + float(hold)
        return [(*r[:8], float(r[8]) - cut.get(int(r[0]), 0.0)) for r in rows]
    elif conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL work_mem = '32MB'"))
        sql = _PG_TWA if twa else _PG_PLAIN
    else:
        raise NotImplementedError(f"aggregates on {conn.dialect.name}: SQLite and PostgreSQL only")
    res = await conn.execute(text(sql), p)
    return list(res.all())


async def query_aggregates(
    engine: AsyncEngine, tags: list[str], start: float, end: float, buckets: int, *, twa: bool = True
) -> dict[str, list[Bucket]]:
    """``buckets`` equal time buckets over ``[start, end)`` per tag, every bucket listed.

    ``twa=False`` skips the time-weighted average (``Bucket.twa`` is None): what a trend plot needs
    (min/max/first/last per pixel column), and the cheaper query.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, not {buckets}")
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ValueError(f"empty or invalid time range [{start}, {end})")
    width = (end - start) / buckets
    params: dict[str, Any] = {"start": start, "end": end, "width": width, "n": buckets}
    out: dict[str, list[Bucket]] = {}
    async with engine.connect() as conn:
        for tag in tags:
            tid = await tag_id(conn, tag)
            got = {int(r[0]): r for r in await _aggregate_rows(conn, tid, params, twa)}
            series: list[Bucket] = []
            for i in range(buckets):
                b0 = start + i * width
                b1 = end if i == buckets - 1 else start + (i + 1) * width
                r = got.get(i)
                if r is None:
                    series.append(Bucket(b0, b1, 0, None, None, None, None, None, None))
                    continue
                twa_v = float(r[7]) / float(r[8]) if r[8] else None
                series.append(Bucket(b0, b1, int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]),
                                     float(r[6]), twa_v))
            out[tag] = series
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def export_csv(engine: AsyncEngine, tags: list[str], start: float, end: float) -> str:
    """CSV (long format: one row per sample) of ``tags`` over ``[start, end)``, by tag then time."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["time_utc", "ts", "tag", "value", "quality", "reason"])
    for tag in tags:
        for s in await query_raw(engine, tag, start, end):
            w.writerow([_iso(s.ts), repr(s.ts), tag, "" if s.value is None else repr(s.value), s.quality.label,
                        s.reason or ""])
    return buf.getvalue()


async def query_events(
    engine: AsyncEngine,
    *,
    start: float | None = None,
    end: float | None = None,
    kinds: list[str] | None = None,
    tank: str | None = None,
    priority: str | None = None,
    state: str | None = None,
    source: str | None = None,
    limit: int = 1000,
    offset: int = 0,
    newest_first: bool = True,
) -> list[Event]:
    """Events matching every given filter, newest first by default, paged by ``limit``/``offset``."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": int(limit), "offset": int(offset)}
    for col, val in (("tank", tank), ("priority", priority), ("state", state), ("source", source)):
        if val is not None:
            where.append(f"{col} = :{col}")
            params[col] = val
    if start is not None:
        where.append("ts >= :start")
        params["start"] = start
    if end is not None:
        where.append("ts < :end")
        params["end"] = end
    if kinds:
        where.append("kind IN :kinds")
        params["kinds"] = [str(k) for k in kinds]
    order = "DESC" if newest_first else "ASC"
    sql = text(
        "SELECT id, ts, kind, source, message, tank, area, priority, state, value, username, comment, data "
        f"FROM events {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY ts {order}, id {order} LIMIT :limit OFFSET :offset"
    )
    if kinds:
        sql = sql.bindparams(bindparam("kinds", expanding=True))
    async with engine.connect() as conn:
        res = await conn.execute(sql, params)
        rows = res.all()
    out: list[Event] = []
    for r in rows:
        data = r[12]
        if isinstance(data, str):
            data = json.loads(data) if data else {}
        out.append(Event(ts=float(r[1]), kind=EventKind(r[2]), source=r[3], message=r[4] or "", tank=r[5],
                         area=r[6], priority=r[7], state=r[8], value=None if r[9] is None else float(r[9]),
                         user=r[10], comment=r[11], data=data or {}, id=int(r[0])))
    return out


async def delete_before(engine: AsyncEngine, tag_id_: int, cutoff: float, batch: int) -> int:
    """Delete a tag's rows older than ``cutoff`` in batches of ``batch`` rows (short transactions)."""
    total = 0
    while True:
        async with engine.begin() as conn:
            res = await conn.execute(
                text("SELECT ts FROM samples WHERE tag_id = :t AND ts < :c ORDER BY ts LIMIT 1 OFFSET :o"),
                {"t": tag_id_, "c": cutoff, "o": batch},
            )
            row = res.first()
            bound = cutoff if row is None else float(row[0])
            res = await conn.execute(
                text("DELETE FROM samples WHERE tag_id = :t AND ts < :c"), {"t": tag_id_, "c": bound}
            )
            total += int(res.rowcount or 0)
        if row is None:
            return total


async def delete_events_before(engine: AsyncEngine, cutoff: float, batch: int) -> int:
    """Delete events older than ``cutoff``, ``batch`` rows per transaction."""
    total = 0
    while True:
        async with engine.begin() as conn:
            res = await conn.execute(
                text("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < :c ORDER BY ts LIMIT :n)"),
                {"c": cutoff, "n": batch},
            )
            n = int(res.rowcount or 0)
        total += n
        if n < batch:
            return total
