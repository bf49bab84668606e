"""History (aggregates, raw, CSV), alarm journal, audit trail, status, health and metrics."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hmi.context import HmiContext
from hmi.deps import Ctx, Operator, Viewer
from scada.events import Event, EventKind

router = APIRouter()

MAX_TAGS = 20
MAX_SPAN_S = 400 * 86400
_TAG_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")

TagsQ = Annotated[list[str], Query(max_length=MAX_TAGS, description="Tag names (repeat, or comma-separated)")]
TimeQ = Annotated[datetime | None, Query(description="ISO 8601 or epoch seconds; default end = now, start = end - 1 h")]


def _epoch(dt: datetime) -> float:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _window(start: datetime | None, end: datetime | None, default_s: float = 3600.0) -> tuple[float, float]:
    try:
        e = _epoch(end) if end is not None else time.time()
        s = _epoch(start) if start is not None else e - default_s
    except (OverflowError, OSError, ValueError):
        raise HTTPException(422, detail="start/end out of range") from None
    if s >= e:
        raise HTTPException(422, detail="start must be before end")
    if e - s > MAX_SPAN_S:
        raise HTTPException(422, detail=f"time span longer than {MAX_SPAN_S // 86400} days")
    return s, e


def _tags(ctx: HmiContext, tags: list[str]) -> list[str]:
    names: list[str] = []
    for item in tags:
        for n in item.split(","):
            n = n.strip()
            if n and n not in names:
                names.append(n)
    if not names:
        raise HTTPException(422, detail="give at least one tag in 'tags'")
    if len(names) > MAX_TAGS:
        raise HTTPException(422, detail=f"at most {MAX_TAGS} tags per request")
    for n in names:
        if not _TAG_RE.match(n) or (n not in ctx.runtime.tags and ctx.catalog.meta(n) is None):
            raise HTTPException(404, detail=f"unknown tag {n[:200]!r}")
    return names


@router.get("/api/history", tags=["history"], summary="Aggregates (min/max/avg/last per bucket) for trends")
async def history(
    ctx: Ctx,
    p: Viewer,
    tags: TagsQ,
    start: TimeQ = None,
    end: TimeQ = None,
    buckets: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> dict[str, object]:
    names = _tags(ctx, tags)
    s, e = _window(start, end)
    series = await ctx.runtime.history_aggregate(names, s, e, buckets)
    return {
        "start": s, "end": e, "buckets": buckets,
        "series": {t: [asdict(b) for b in series.get(t, [])] for t in names},
    }


@router.get("/api/history/raw", tags=["history"], summary="Logged samples in time order")
async def history_raw(
    ctx: Ctx,
    p: Viewer,
    tags: TagsQ,
    start: TimeQ = None,
    end: TimeQ = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, object]:
    names = _tags(ctx, tags)
    s, e = _window(start, end)
    pts = await ctx.runtime.history_raw(names, s, e, limit)
    return {"start": s, "end": e, "points": [asdict(pt) for pt in pts], "truncated": len(pts) >= limit}


@router.get("/api/history/csv", tags=["history"], summary="Logged samples as CSV (ts ISO UTC, tag, value, quality, reason)",
            response_class=StreamingResponse)
async def history_csv(
    ctx: Ctx,
    p: Viewer,
    tags: TagsQ,
    start: TimeQ = None,
    end: TimeQ = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> StreamingResponse:
    names = _tags(ctx, tags)
    s, e = _window(start, end)
    pts = await ctx.runtime.history_raw(names, s, e, limit)

    async def rows() -> AsyncIterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["ts", "epoch_s", "tag", "value", "quality", "reason"])
        for i, pt in enumerate(pts):
            iso = datetime.fromtimestamp(pt.ts, tz=UTC).isoformat(timespec="milliseconds")
            w.writerow([iso, f"{pt.ts:.3f}", pt.tag, "" if pt.value is None else pt.value, pt.quality, pt.reason])
            if i % 1000 == 999:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    fname = f"history-{int(s)}-{int(e)}.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{fname}"'})


def _event_dict(e: Event) -> dict[str, object]:
    d = asdict(e)
    d["kind"] = e.kind.value
    return d


@router.get("/api/alarms/journal", tags=["alarms"], summary="Alarm journal: state transitions, acks, shelving")
async def alarm_journal(
    ctx: Ctx,
    p: Viewer,
    start: TimeQ = None,
    end: TimeQ = None,
    tank: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, object]]:
    s, e = _window(start, end, default_s=7 * 86400)
    events = await ctx.runtime.query_events(kinds=[EventKind.ALARM], start=s, end=e, limit=limit, tank=tank)
    return [_event_dict(ev) for ev in events]


AUDIT_KINDS = {"audit": EventKind.AUDIT, "login": EventKind.LOGIN, "interlock": EventKind.INTERLOCK,
               "system": EventKind.SYSTEM}


@router.get("/api/audit", tags=["audit"], summary="Audit trail: writes, commands, logins (operator+)")
async def audit(
    ctx: Ctx,
    p: Operator,
    start: TimeQ = None,
    end: TimeQ = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[list[str] | None, Query(max_length=4, description="audit, login, interlock, system")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, object]]:
    s, e = _window(start, end, default_s=7 * 86400)
    kinds = [EventKind.AUDIT, EventKind.LOGIN]
    if kind:
        try:
            kinds = [AUDIT_KINDS[k] for k in kind]
        except KeyError as k:
            raise HTTPException(422, detail=f"unknown kind {k.args[0]!r}: use {', '.join(AUDIT_KINDS)}") from None
    events = await ctx.runtime.query_events(kinds=kinds, start=s, end=e, limit=limit, user=user)
    return [_event_dict(ev) for ev in events]


@router.get("/api/status", tags=["system"], summary="Drivers, scan statistics, historian buffer, alarm flood, HMI")
async def status(ctx: Ctx, p: Viewer) -> dict[str, object]:
    st = await ctx.runtime.status()
    out = asdict(st)
    ready, why = ctx.runtime.ready()
    out["hmi"] = {"ws_clients": ctx.ws_clients, "ws_dropped": ctx.ws_dropped, "uptime_s": time.time() - ctx.started,
                  "ready": ready, "not_ready_reason": why, "tags": len(ctx.runtime.tags)}
    return out


@router.get("/healthz", tags=["system"], summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["system"], summary="Readiness: scan running and historian reachable (503 otherwise)",
            responses={503: {"description": "not ready, with the reason"}})
async def readyz(ctx: Ctx) -> JSONResponse:
    ok, why = ctx.runtime.ready()
    return JSONResponse({"ready": ok, "reason": why}, status_code=200 if ok else 503)


@router.get("/metrics", tags=["system"], summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: Ctx) -> Response:
    ctx.metrics.tags.set(len(ctx.runtime.tags))
    ctx.metrics.ws_clients.set(ctx.ws_clients)
    try:
        ctx.metrics.alarms_active.set(sum(1 for a in ctx.runtime.active_alarms() if a.active))
    except Exception:  # noqa: BLE001 - metrics must answer even if the alarm engine is unhappy
        pass
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
