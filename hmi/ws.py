"""Live WebSocket ``/api/ws``: each client gets only what it subscribed to, coalesced, never blocking the scan.

Protocol (JSON text frames)::

    client -> {"type": "subscribe", "tags": ["line1.nickel.*"], "alarms": true}   (replaces the subscription)
    client -> {"type": "unsubscribe"}      client -> {"type": "ping"}
    server -> {"type": "hello", "user": ..., "role": ...}
    server -> {"type": "subscribed", "tags": [...], "alarms": bool, "count": N}
    server -> {"type": "tags", "values": {name: {value, quality, reason, server_ts, source_ts, ne107, detail}}}
    server -> {"type": "alarms", "active": [...]}        (whenever the active list changes)
    server -> {"type": "error", "message": ...}          (bad frame; the connection stays up)
    server -> {"type": "pong"}

Values come from ``TagStore.subscribe(policy="coalesce")``: the store keeps only the latest sample per
tag for this client, and the pump sends at most ``max_rate_hz`` frames per second, so each tag is
pushed at most that often. A send that does not complete within ``send_timeout_s`` drops the client
(close code 1013); the scan never waits on a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from hmi.context import HmiContext, ctx_of
from hmi.deps import SESSION_COOKIE
from hmi.ports import AlarmView, Role
from hmi.security import TokenError
from hmi.views import alarm_dict, sample_dict
from scada.tags import Subscription, SubscriptionClosed, TagStore

MAX_PATTERNS = 200
MAX_FRAME = 64 * 1024
MAX_ERRORS = 50
_PATTERN_RE = re.compile(r"^[a-z0-9_.*?\[\]!-]{1,200}$")


class SlowClient(Exception):
    """The client did not take a frame in time."""


class WsSession:
    """One client's subscription and pump; the socket is reached only through ``send``."""

    def __init__(
        self,
        store: TagStore,
        send: Callable[[str], Awaitable[None]],
        *,
        alarms: Callable[[], list[AlarmView]],
        name: str = "ws",
        max_rate_hz: float = 10.0,
        send_timeout_s: float = 2.0,
        alarm_poll_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._send = send
        self._alarms = alarms
        self.name = name
        self.min_interval_s = 1.0 / max_rate_hz
        self.send_timeout_s = send_timeout_s
        self.alarm_poll_s = alarm_poll_s
        self._clock = clock
        self.sub: Subscription | None = None
        self.want_alarms = False
        self._alarm_sig: tuple[Any, ...] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.errors = 0
        self.frames = 0
        self.closed_reason = ""

    async def send(self, obj: dict[str, Any]) -> None:
        """Send one frame, or raise SlowClient when the client does not take it in time."""
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
        async with self._lock:
            try:
                await asyncio.wait_for(self._send(text), self.send_timeout_s)
            except TimeoutError:
                raise SlowClient(f"client took more than {self.send_timeout_s:g} s to accept a frame") from None
        self.frames += 1

    def handle(self, text: str | None) -> dict[str, Any] | None:
        """Apply one client frame; return the reply frame. Never raises for bad input."""
        if text is None:
            return self._error("binary frames are not accepted: send JSON text")
        if len(text) > MAX_FRAME:
            return self._error(f"frame larger than {MAX_FRAME} bytes")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            return self._error("not JSON: send {\"type\": \"subscribe\", \"tags\": [...], \"alarms\": true}")
        if not isinstance(msg, dict):
            return self._error("a frame must be a JSON object with a 'type'")
        kind = msg.get("type")
        if kind == "ping":
            return {"type": "pong"}
        if kind == "unsubscribe":
            self._replace(None)
            self.want_alarms = False
            return {"type": "subscribed", "tags": [], "alarms": False, "count": 0}
        if kind != "subscribe":
            return self._error(f"unknown type {str(kind)[:40]!r}: use subscribe, unsubscribe or ping")
        tags = msg.get("tags", [])
        alarms = msg.get("alarms", False)
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self._error("'tags' must be a list of tag names or glob patterns")
        if len(tags) > MAX_PATTERNS:
            return self._error(f"at most {MAX_PATTERNS} patterns")
        bad = [t for t in tags if not _PATTERN_RE.match(t)]
        if bad:
            return self._error(f"bad pattern {bad[0][:60]!r}: use dotted lower-case names with * or ?")
        if not isinstance(alarms, bool):
            return self._error("'alarms' must be true or false")
        self._replace(tags)
        self.want_alarms = alarms
        self._alarm_sig = None
        self._wake.set()
        count = sum(1 for n in self.store.names() if self.sub and self.sub.matches(n)) if tags else 0
        return {"type": "subscribed", "tags": tags, "alarms": alarms, "count": count}

    def _error(self, message: str) -> dict[str, Any]:
        self.errors += 1
        return {"type": "error", "message": message}

    def _replace(self, patterns: list[str] | None) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None
        if patterns:
            self.sub = self.store.subscribe(self.name, patterns, policy="coalesce", initial=True)

    def close(self) -> None:
        self._replace(None)

    async def _next_tags(self, wait_s: float) -> list[tuple[str, Any]]:
        sub = self.sub
        if sub is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
            return []
        try:
            return await sub.get(wait_s)
        except SubscriptionClosed:
            return []  # replaced by a new subscribe (or dropped): the next round uses self.sub

    def _alarm_frame(self) -> dict[str, Any] | None:
        active = self._alarms()
        sig = tuple((a.id, a.state, a.acked, a.active, a.shelved_until, a.value) for a in active)
        if sig == self._alarm_sig:
            return None
        self._alarm_sig = sig
        return {"type": "alarms", "active": [alarm_dict(a) for a in active]}

    async def pump(self) -> None:
        """Push subscribed changes until the client goes away or is too slow (raises SlowClient).

        Frames carrying tags are at least ``1 / max_rate_hz`` apart; what changed meanwhile is
        coalesced by the subscription, so the client always ends on the latest value.
        """
        last = -1e9
        while True:
            changes = await self._next_tags(self.alarm_poll_s)
            if changes:
                wait = self.min_interval_s - (self._clock() - last)
                if wait > 0:
                    await asyncio.sleep(wait)
                    if self.sub is not None and not self.sub.closed:
                        changes += self.sub.drain()
                last = self._clock()
                await self.send({"type": "tags", "values": {n: sample_dict(s) for n, s in changes}})
            if self.want_alarms:
                frame = self._alarm_frame()
                if frame is not None:
                    await self.send(frame)


def _authenticate_ws(ctx: HmiContext, ws: WebSocket) -> tuple[str, Role] | str:
    token = ws.query_params.get("token")
    try:
        if token:
            claims = ctx.codec.decode(token, "access")
        else:
            cookie = ws.cookies.get(SESSION_COOKIE)
            if not cookie:
                return "not authenticated: pass ?token= or log in"
            origin = ws.headers.get("origin")
            host = ws.headers.get("host")
            if origin is not None and host is not None and origin.split("://", 1)[-1] != host:
                return "cross-origin WebSocket with a cookie session refused"
            claims = ctx.codec.decode(cookie, "session")
    except TokenError as e:
        return str(e)
    return claims.username, claims.role


async def websocket_endpoint(ws: WebSocket) -> None:
    ctx = ctx_of(ws)  # type: ignore[arg-type]
    who = _authenticate_ws(ctx, ws)
    if isinstance(who, str):
        await ws.close(code=1008, reason=who[:120])
        return
    username, role = who
    user = await ctx.runtime.get_user(username)
    if user is None or user.disabled:
        await ws.close(code=1008, reason="user disabled or removed")
        return
    await ws.accept()
    session = WsSession(
        ctx.runtime.tags, ws.send_text, alarms=ctx.runtime.active_alarms, name=f"ws:{username}",
        max_rate_hz=ctx.settings.ws_max_rate_hz, send_timeout_s=ctx.settings.ws_send_timeout_s,
    )
    ctx.ws_clients += 1
    ctx.metrics.ws_clients.set(ctx.ws_clients)
    pump = asyncio.create_task(session.pump(), name=f"ws-pump:{username}")
    reader = asyncio.create_task(_read(ws, session), name=f"ws-read:{username}")
    try:
        await session.send({"type": "hello", "user": username, "role": min(role, Role(user.role), key=lambda r: r.rank).value})
        done, _ = await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if isinstance(exc, SlowClient):
                ctx.ws_dropped += 1
                ctx.metrics.ws_dropped.inc()
                session.closed_reason = str(exc)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(code=1013, reason="too slow"), 1.0)
    except SlowClient:
        ctx.ws_dropped += 1
        ctx.metrics.ws_dropped.inc()
    except Exception:  # noqa: BLE001 - a broken socket ends this client only
        pass
    finally:
        for t in (pump, reader):
            t.cancel()
        for t in (pump, reader):
            with contextlib.suppress(BaseException):
                await t
        session.close()
        ctx.ws_clients -= 1
        ctx.metrics.ws_clients.set(ctx.ws_clients)
        ctx.metrics.ws_frames.inc(session.frames)


async def _read(ws: WebSocket, session: WsSession) -> None:
    while True:
        try:
            msg = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if msg["type"] == "websocket.disconnect":
            return
        reply = session.handle(msg.get("text"))
        if reply is not None:
            await session.send(reply)
        if session.errors > MAX_ERRORS:
            with contextlib.suppress(Exception):
                await session.send({"type": "error", "message": "too many bad frames; closing"})
                await ws.close(code=1008, reason="too many bad frames")
            return
