"""WebSocket /api/ws: auth, subscription filtering, coalescing, slow clients, garbage frames."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hmi import HmiSettings, create_app
from hmi.fake_runtime import FakeRuntime
from hmi.ports import Role
from hmi.security import TokenCodec
from hmi.ws import SlowClient, WsSession
from scada.tags import Sample, TagStore

from .conftest import SECRET, free_port_local, serve


def _token(user: str = "viewer") -> str:
    return TokenCodec(SECRET, 600).issue(user, Role(user))[0]


async def _recv(ws, kind: str, within_s: float = 3.0) -> dict:  # noqa: ANN001
    """Next frame of this type (skipping others)."""
    deadline = time.monotonic() + within_s
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if frame["type"] == kind:
            return frame


# ---------------------------------------------------------------- pure session tests (no sockets)


def _session(store: TagStore, sent: list[dict], **kw: object) -> WsSession:
    async def send(text: str) -> None:
        sent.append(json.loads(text))

    return WsSession(store, send, alarms=lambda: [], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("frame", "needle"), [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "launch"}', "unknown type"),
    ('{"type": "subscribe", "tags": "line1.*"}', "list"),
    ('{"type": "subscribe", "tags": [1]}', "list"),
    ('{"type": "subscribe", "tags": ["<script>"]}', "bad pattern"),
    ('{"type": "subscribe", "tags": ["a"], "alarms": "yes"}', "alarms"),
    ('{"type": "subscribe", "tags": ["x*"' + ', "y"' * 300 + "]}", "at most"),
    (None, "binary"),
    ("[" * 100_000, "larger"),
])
def test_garbage_frames_get_an_error(frame: str | None, needle: str) -> None:
    s = _session(TagStore(), [])
    reply = s.handle(frame)
    assert reply is not None and reply["type"] == "error" and needle in reply["message"]
    assert s.sub is None


def test_subscribe_replaces_and_unsubscribe_closes() -> None:
    store = TagStore()
    store.declare(["a.x", "a.y", "b.x"])
    s = _session(store, [])
    assert s.handle('{"type": "subscribe", "tags": ["a.*"]}')["count"] == 2
    first = s.sub
    assert s.handle('{"type": "subscribe", "tags": ["b.*"], "alarms": true}')["count"] == 1
    assert first is not None and first.closed and len(store.subscriptions) == 1
    s.handle('{"type": "unsubscribe"}')
    assert store.subscriptions == []


async def test_pump_sends_only_subscribed_tags_coalesced_to_10_hz() -> None:
    store = TagStore()
    store.declare(["line1.a.temp", "line1.b.temp"])
    sent: list[dict] = []
    times: list[float] = []

    async def send(text: str) -> None:
        times.append(time.monotonic())
        sent.append(json.loads(text))

    s = WsSession(store, send, alarms=lambda: [], max_rate_hz=10.0)
    s.handle('{"type": "subscribe", "tags": ["line1.a.*"]}')
    pump = asyncio.create_task(s.pump())
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 1.0:  # ~1000 updates/s of both tags for 1 s
        n += 1
        store.publish({"line1.a.temp": Sample.good_value(float(n), time.time()),
                       "line1.b.temp": Sample.good_value(float(n), time.time())})
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.25)
    pump.cancel()
    frames = [f for f in sent if f["type"] == "tags"]
    assert all(set(f["values"]) == {"line1.a.temp"} for f in frames)
    assert 3 <= len(frames) <= 13, len(frames)  # at most 10 Hz over ~1.25 s
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.095, gaps  # never two frames within 100 ms: <= 10 Hz per tag
    stamps = [f["values"]["line1.a.temp"]["value"] for f in frames]
    assert stamps == sorted(stamps)
    assert frames[-1]["values"]["line1.a.temp"]["value"] == float(n)  # the latest value always arrives
    assert n > 200
    s.close()


async def test_slow_client_is_dropped_and_never_blocks_publish() -> None:
    store = TagStore()
    store.declare([f"t.{i}" for i in range(100)])
    never = asyncio.Event()

    async def stuck_send(text: str) -> None:
        await never.wait()

    s = WsSession(store, stuck_send, alarms=lambda: [], send_timeout_s=0.2)
    s.handle('{"type": "subscribe", "tags": ["t.*"]}')
    pump = asyncio.create_task(s.pump())
    worst = 0.0
    t0 = time.monotonic()
    while not pump.done() and time.monotonic() - t0 < 3.0:
        p0 = time.perf_counter()
        store.publish({f"t.{i}": Sample.good_value(time.time(), time.time()) for i in range(100)})
        worst = max(worst, time.perf_counter() - p0)
        await asyncio.sleep(0.005)
    assert pump.done() and isinstance(pump.exception(), SlowClient)
    assert time.monotonic() - t0 < 1.0
    assert worst < 0.05  # publishing never waited on the stuck client
    s.close()
    assert store.subscriptions == []


# ---------------------------------------------------------------- over a real socket


@pytest.fixture
async def server(runtime: FakeRuntime):  # noqa: ANN201
    app = create_app(runtime, HmiSettings(secret_key=SECRET))
    async with serve(app, free_port_local()) as host:
        yield host


@pytest.mark.parametrize("query", ["", "?token=garbage", "?token=" + TokenCodec("x" * 40, 60).issue("admin", Role.ADMIN)[0]])
async def test_unauthenticated_socket_is_refused(server: str, query: str) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"ws://{server}/api/ws{query}"):
            pass


async def test_subscription_filtering_over_the_wire(server: str, runtime: FakeRuntime) -> None:
    async with connect(f"ws://{server}/api/ws?token={_token()}") as ws:
        hello = await _recv(ws, "hello")
        assert hello["user"] == "viewer" and hello["role"] == "viewer"
        await ws.send(json.dumps({"type": "subscribe", "tags": ["line1.nickel.ph.*"]}))
        assert (await _recv(ws, "subscribed"))["count"] == 3
        seen: set[str] = set()
        for _ in range(4):
            runtime.step(1.0)
            frame = await _recv(ws, "tags")
            seen |= set(frame["values"])
            sample = next(iter(frame["values"].values()))
            assert {"value", "quality", "reason", "server_ts"} <= sample.keys()
        assert seen == {"line1.nickel.ph.a", "line1.nickel.ph.b", "line1.nickel.ph.pv"}


async def test_garbage_then_still_alive(server: str) -> None:
    async with connect(f"ws://{server}/api/ws?token={_token()}") as ws:
        await _recv(ws, "hello")
        for junk in ("{", b"\x00\xff", '{"type": 5}', "null"):
            await ws.send(junk)
            assert (await _recv(ws, "error"))["message"]
        await ws.send('{"type": "ping"}')
        assert (await _recv(ws, "pong")) == {"type": "pong"}


async def test_alarm_stream(server: str, runtime: FakeRuntime) -> None:
    async with connect(f"ws://{server}/api/ws?token={_token('operator')}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "tags": [], "alarms": True}))
        first = await _recv(ws, "alarms")
        assert "nickel.ph_limits" in {a["id"] for a in first["active"]}
        runtime.raise_alarm("chrome.exhaust_off")
        second = await _recv(ws, "alarms")
        assert "chrome.exhaust_off" in {a["id"] for a in second["active"]}


async def test_disconnect_releases_the_subscription(server: str, runtime: FakeRuntime) -> None:
    base = len(runtime.tags.subscriptions)
    async with connect(f"ws://{server}/api/ws?token={_token()}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "tags": ["line1.*"]}))
        await _recv(ws, "subscribed")
        assert len(runtime.tags.subscriptions) == base + 1
    for _ in range(100):
        if len(runtime.tags.subscriptions) == base:
            break
        await asyncio.sleep(0.02)
    assert len(runtime.tags.subscriptions) == base


async def test_cookie_socket_refuses_cross_origin(server: str, runtime: FakeRuntime) -> None:
    tok = TokenCodec(SECRET, 600).issue("viewer", Role.VIEWER, "session")[0]
    with pytest.raises(InvalidStatus):
        async with connect(f"ws://{server}/api/ws", additional_headers={"Cookie": f"scada_session={tok}"},
                           origin="http://evil.example"):
            pass
    async with connect(f"ws://{server}/api/ws", additional_headers={"Cookie": f"scada_session={tok}"},
                       origin=f"http://{server}") as ws:
        assert (await _recv(ws, "hello"))["user"] == "viewer"
