"""Northbound MQTT publisher: the pure rate limiter and outbox, the config model, then a real broker.

Broker tests use Mosquitto on 127.0.0.1:1883 (override with SCADA_TEST_MQTT=host:port) and listen with a
plain aiomqtt client; every test has its own topic prefix and clears its retained topics afterwards. The
broker is taken away through a TCP proxy (``tests/historian/netproxy.py``): cutting the proxy closes the
publisher's socket without an MQTT DISCONNECT, which is what a crashed server or a broken link looks like.
Without a broker these tests skip, unless SCADA_REQUIRE_MQTT=1 (then they fail).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest
import pytest_asyncio
from pydantic import ValidationError

from alarms.engine import AlarmEngine
from alarms.model import AlarmState, Trigger
from alarms.stream import AlarmEvent, FloodEvent
from drivers.mqtt import (
    AlarmOutbox,
    Coalescer,
    MqttPublisher,
    alarm_topic,
    backoff_s,
    create_mqtt_publisher,
    plant_units,
    tag_payload,
    tag_topic,
)
from scada.config import PlantConfig
from scada.config.northbound import MqttConfig, NorthboundConfig
from scada.tags import Quality, QualityReason, Sample, TagStore


def _load_proxy() -> type:
    path = Path(__file__).resolve().parents[1] / "historian" / "netproxy.py"
    spec = importlib.util.spec_from_file_location("_mqtt_test_netproxy", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.Proxy


Proxy = _load_proxy()
BROKER_HOST, _, _port = os.environ.get("SCADA_TEST_MQTT", "127.0.0.1:1883").partition(":")
BROKER_PORT = int(_port or 1883)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def good(v: float, ts: float = 1000.0) -> Sample:
    return Sample.good_value(v, ts)


# =========================================================================== pure: no broker, no clock


def test_coalescer_releases_at_most_rate_and_keeps_latest() -> None:
    c = Coalescer(max_rate_hz=2.0)  # one per 0.5 s per tag
    c.offer("a", good(1))
    assert c.take_due(10.0) == [("a", good(1))]
    for i in range(2, 50):
        c.offer("a", good(i))
    assert c.take_due(10.2) == []  # too soon
    assert c.next_due(10.2) == pytest.approx(10.5)
    assert c.take_due(10.5) == [("a", good(49))]  # only the latest
    assert c.superseded == 47
    assert c.next_due(10.5) is None


def test_coalescer_tags_are_independent_and_restore_never_overwrites_newer() -> None:
    c = Coalescer(max_rate_hz=1.0)
    c.offer("a", good(1))
    c.offer("b", good(2))
    assert sorted(t for t, _ in c.take_due(0.0)) == ["a", "b"]
    c.restore("a", good(1))  # publish failed
    c.offer("b", good(3))
    c.restore("b", good(2))  # a newer one is already waiting: keep it
    assert dict(c.take_due(1.0)) == {"a": good(1), "b": good(3)}


def _event(alarm_id: str, trigger: Trigger | None, state: AlarmState, ts: float = 1.0) -> AlarmEvent:
    return AlarmEvent(ts=ts, alarm_id=alarm_id, trigger=trigger, state=state, prev_state=AlarmState.NORMAL,
                      active=state is AlarmState.UNACK, priority="high", area="a")


def test_outbox_keeps_order_counts_overflow_and_keeps_latest_state() -> None:
    ob = AlarmOutbox(maxsize=3)
    evs = [_event("x", Trigger.ACTIVATE, AlarmState.UNACK, ts=i) for i in range(5)]
    ob.offer(evs)
    assert list(ob.transitions) == evs[:3] and ob.dropped == 2
    assert ob.take_states() == [evs[4]]  # the state is right even though transitions were lost
    ob.offer([_event("y", None, AlarmState.ACKED)])  # a snapshot: a state, not a transition
    assert len(ob.transitions) == 3 and [s.alarm_id for s in ob.take_states()] == ["y"]
    ob.mark_all_states()
    assert [s.alarm_id for s in ob.take_states()] == ["x", "y"]
    ob.offer([FloodEvent(ts=1.0, area="a", flooding=True, count=12)])
    assert [f.area for f in ob.take_floods()] == ["a"] and ob.take_floods() == []


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_s(n, 0.5, 4.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_topics_and_payload_carry_quality() -> None:
    assert tag_topic("plating/line1", "line1.nickel.temp.pv") == "plating/line1/tags/line1/nickel/temp/pv"
    assert alarm_topic("p", "nickel.temp_limits.hh") == "p/alarms/nickel.temp_limits.hh"  # one level
    assert alarm_topic("p", "odd/id#") == "p/alarms/odd_id_"
    bad = Sample.bad(QualityReason.COMM_FAILURE, 5.0, value=math.nan)
    assert json.loads(tag_payload(bad, "degC")) == {
        "value": None, "quality": "bad", "reason": "comm_failure", "ts": 5.0, "unit": "degC"}


def test_config_defaults_and_refusals() -> None:
    cfg = MqttConfig(host="mes")
    assert cfg.prefix_for("line1") == "plating/line1" and cfg.broker_port == 1883
    assert cfg.client_id_for("line1") == "plating-scada-line1"
    assert MqttConfig(host="mes", tls=True).broker_port == 8883
    assert NorthboundConfig().mqtt is None
    for bad, word in [({"password_env": "s3cr3t!"}, "environment variable"),
                      ({"ca_file": "/ca.pem"}, "tls"),
                      ({"topic_prefix": "plant/#"}, "wildcard"),
                      ({"topic_prefix": "plant/"}, "slash"),
                      ({"qos": 2}, "qos"),
                      ({"reconnect_min_s": 10, "reconnect_max_s": 1}, "reconnect"),
                      ({"passwd": "x"}, "passwd")]:
        with pytest.raises(ValidationError) as exc:
            MqttConfig(host="mes", **bad)
        assert word in str(exc.value), (bad, str(exc.value))


def test_plant_config_takes_northbound_and_units(plant: PlantConfig) -> None:
    p = PlantConfig.model_validate({**plant.model_dump(), "northbound": {"mqtt": {"host": "mes", "patterns": ["line1.*"]}}})
    assert p.northbound.mqtt is not None and p.northbound.mqtt.patterns == ["line1.*"]
    bare = PlantConfig.model_validate({**plant.model_dump(), "northbound": {}})
    assert bare.northbound.mqtt is None and create_mqtt_publisher(bare, TagStore()) is None
    assert plant.northbound.mqtt is not None  # the example plant publishes (MQTT_HOST, default loopback)
    units = plant_units(plant)
    assert units and all(isinstance(u, str) and u for u in units.values())


async def test_missing_password_variable_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCADA_TEST_NO_SUCH_PW", raising=False)
    cfg = MqttConfig(host="127.0.0.1", port=free_port(), password_env="SCADA_TEST_NO_SUCH_PW",
                     reconnect_min_s=0.05, reconnect_max_s=0.1)
    pub = MqttPublisher(cfg, TagStore())
    await pub.start()
    await asyncio.sleep(0.2)
    st = pub.status()
    await pub.stop()
    assert st["connected"] is False and "SCADA_TEST_NO_SUCH_PW" in str(st["last_error"])
    assert pub.status()["state"] == "stopped"


async def test_stalled_broker_times_out_and_leaks_nothing() -> None:
    """A peer that accepts TCP but never answers CONNECT: each attempt times out and is cleaned up."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        except Exception:  # noqa: BLE001, S110 - the peer vanished: nothing to do
            pass
        writer.transport.abort()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fds0 = len(os.listdir("/proc/self/fd"))
    pub = MqttPublisher(MqttConfig(host="127.0.0.1", port=port, timeout_s=0.15, reconnect_min_s=0.02,
                                   reconnect_max_s=0.02), TagStore())
    try:
        await pub.start()
        await wait_status(pub, "connect_failures", lambda n: n >= 6)
        st = pub.status()
        assert st["connected"] is False and "timed out" in str(st["last_error"]).lower()
        assert len(os.listdir("/proc/self/fd")) <= fds0 + 4  # one attempt in flight, not one per attempt
        t0 = time.monotonic()
        await pub.stop()
        assert time.monotonic() - t0 < 1.0
        await asyncio.sleep(0.1)
        assert len(os.listdir("/proc/self/fd")) <= fds0
        assert not [t for t in asyncio.all_tasks() if "misc_loop" in repr(t.get_coro()) and not t.done()]
    finally:
        await pub.stop()
        server.close()


# =========================================================================== real broker


def _broker_up() -> str:
    try:
        with socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=1.0):
            return ""
    except OSError as e:
        return str(e)


@pytest.fixture(scope="module")
def broker() -> tuple[str, int]:
    err = _broker_up()
    if err:
        msg = f"MQTT broker not reachable at {BROKER_HOST}:{BROKER_PORT} ({err}); start mosquitto"
        if os.environ.get("SCADA_REQUIRE_MQTT") == "1":
            pytest.fail("SCADA_REQUIRE_MQTT=1 but " + msg)
        pytest.skip(msg)
    return BROKER_HOST, BROKER_PORT


@dataclass
class Listener:
    """A plain aiomqtt subscriber on ``<prefix>/#`` that records every message."""

    prefix: str
    messages: list[aiomqtt.Message] = field(default_factory=list)

    def on(self, suffix: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == f"{self.prefix}/{suffix}"]

    def values(self, tag: str) -> list[dict[str, object]]:
        return [json.loads(m.payload) for m in self.on("tags/" + tag.replace(".", "/"))]  # type: ignore[arg-type]

    async def wait(self, pred: object, within_s: float = 5.0, what: str = "") -> None:
        end = time.monotonic() + within_s
        while not pred():  # type: ignore[operator]
            if time.monotonic() > end:
                raise AssertionError(f"not seen within {within_s} s: {what}; got "
                                     f"{[(m.topic.value, m.payload) for m in self.messages]}")
            await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def listener(broker: tuple[str, int]) -> AsyncIterator[Listener]:
    lst = Listener(prefix=f"scada-test/{uuid.uuid4().hex[:10]}")
    async with aiomqtt.Client(broker[0], broker[1], identifier=f"lst-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"{lst.prefix}/#", qos=1)

        async def read() -> None:
            async for m in client.messages:
                lst.messages.append(m)

        task = asyncio.create_task(read())
        yield lst
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for topic in {m.topic.value for m in lst.messages}:  # leave no retained litter on the broker
            await client.publish(topic, b"", qos=1, retain=True)


def cfg_for(lst: Listener, port: int = BROKER_PORT, **kw: object) -> MqttConfig:
    base: dict[str, object] = dict(host=BROKER_HOST, port=port, topic_prefix=lst.prefix,
                                   client_id=f"pub-{uuid.uuid4().hex[:8]}", max_rate_hz=20.0,
                                   reconnect_min_s=0.05, reconnect_max_s=0.2, keepalive_s=5, timeout_s=2.0)
    base.update(kw)
    return MqttConfig(**base)  # type: ignore[arg-type]


async def wait_status(pub: MqttPublisher, key: str, pred: object, within_s: float = 5.0) -> None:
    end = time.monotonic() + within_s
    while not pred(pub.status()[key]):  # type: ignore[operator]
        if time.monotonic() > end:
            raise AssertionError(f"status {key} not as expected: {pub.status()}")
        await asyncio.sleep(0.01)


async def test_values_published_with_quality_unit_and_retained(listener: Listener, broker: tuple[str, int]) -> None:
    store = TagStore()
    store.publish({"line1.a.temp": good(55.5, 1.0), "line1.a.level": Sample.bad(QualityReason.COMM_FAILURE, 2.0)})
    pub = MqttPublisher(cfg_for(listener), store, units={"line1.a.temp": "degC"})
    await pub.start()
    try:
        await listener.wait(lambda: listener.on("status") and listener.values("line1.a.temp")
                            and listener.values("line1.a.level"), what="status + both tags")
        assert listener.on("status")[0].payload == b"online"
        assert listener.values("line1.a.temp")[-1] == {"value": 55.5, "quality": "good", "reason": "none",
                                                        "ts": 1.0, "unit": "degC"}
        lvl = listener.values("line1.a.level")[-1]
        assert lvl["quality"] == "bad" and lvl["reason"] == "comm_failure" and lvl["value"] is None
        store.publish({"line1.a.temp": good(56.0, 3.0).with_quality(Quality.UNCERTAIN, QualityReason.OUT_OF_RANGE)})
        await listener.wait(lambda: listener.values("line1.a.temp")[-1]["quality"] == "uncertain", what="update")
        # a late subscriber (an MES restarting) gets the current value at once: retained
        async with aiomqtt.Client(*broker, identifier=f"late-{uuid.uuid4().hex[:6]}") as late:
            await late.subscribe(f"{listener.prefix}/tags/line1/a/temp")
            msg = await asyncio.wait_for(anext(aiter(late.messages)), 3.0)
            assert msg.retain and json.loads(msg.payload)["value"] == 56.0  # type: ignore[arg-type]
        assert pub.status()["connected"] is True and pub.status()["last_error"] == ""
    finally:
        await pub.stop()
    await listener.wait(lambda: listener.on("status")[-1].payload == b"offline", what="offline on clean stop")
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("mqtt") and not t.done()]
    assert store.subscriptions == []


async def test_coalescing_respects_rate_and_delivers_last_value(listener: Listener) -> None:
    store = TagStore()
    store.publish({"line1.a.temp": good(0.0)})
    pub = MqttPublisher(cfg_for(listener, max_rate_hz=4.0), store)
    await pub.start()
    try:
        await listener.wait(lambda: listener.values("line1.a.temp"), what="first value")
        t0 = time.monotonic()
        for i in range(1, 101):  # 100 changes in ~0.25 s: a scan never waits for the broker
            store.publish({"line1.a.temp": good(float(i))})
            if i % 10 == 0:
                await asyncio.sleep(0.025)
        burst_s = time.monotonic() - t0
        await listener.wait(lambda: listener.values("line1.a.temp")[-1]["value"] == 100.0, what="last value")
        n = len(listener.values("line1.a.temp"))
        assert n <= 2 + math.ceil((burst_s + 0.25) * 4.0), (n, burst_s)
        assert pub.status()["coalesced"] >= 90
    finally:
        await pub.stop()


async def test_patterns_filter_tags(listener: Listener) -> None:
    store = TagStore()
    store.publish({"line1.a.temp": good(1.0), "line1.b.temp": good(2.0), "line1.a.ph": good(3.0)})
    pub = MqttPublisher(cfg_for(listener, patterns=["line1.a.*"]), store)
    await pub.start()
    try:
        store.publish({"line1.b.temp": good(20.0), "line1.a.temp": good(10.0)})
        await listener.wait(lambda: listener.values("line1.a.temp") and listener.values("line1.a.temp")[-1]["value"] == 10.0
                            and listener.values("line1.a.ph"), what="a.* tags")
        await asyncio.sleep(0.1)
        assert listener.values("line1.b.temp") == []
    finally:
        await pub.stop()


async def test_link_cut_gives_last_will_then_recovers_with_latest_values(listener: Listener) -> None:
    proxy = Proxy(BROKER_HOST, BROKER_PORT)
    await proxy.start()
    store = TagStore()
    store.publish({"line1.a.temp": good(1.0)})
    pub = MqttPublisher(cfg_for(listener, port=proxy.port), store)
    await pub.start()
    try:
        await listener.wait(lambda: listener.values("line1.a.temp"), what="first value")
        await proxy.stop()  # the socket dies without DISCONNECT: the broker publishes the will
        await listener.wait(lambda: listener.on("status")[-1].payload == b"offline", what="last will 'offline'")
        await wait_status(pub, "connected", lambda c: c is False)
        for v in (2.0, 3.0, 4.0):  # changes while disconnected: only the latest matters
            store.publish({"line1.a.temp": good(v)})
        await wait_status(pub, "last_error", lambda e: "broker" in e)
        await proxy.start()  # same port
        await listener.wait(lambda: listener.on("status")[-1].payload == b"online", what="online again")
        await listener.wait(lambda: listener.values("line1.a.temp")[-1]["value"] == 4.0, what="latest value")
        assert [v["value"] for v in listener.values("line1.a.temp")] == [1.0, 4.0]
        st = pub.status()
        assert st["connected"] is True and st["reconnects"] == 1
    finally:
        await pub.stop()
        await proxy.stop()


class Freezer:
    """A TCP relay that can go silent mid-connection (a partition without RST: only keepalive notices)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.frozen = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for w in self._writers:
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        r2, w2 = await asyncio.open_connection(BROKER_HOST, self.target)
        self._writers += [writer, w2]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if not self.frozen:  # frozen: bytes vanish, nothing is closed
                        dst.write(data)
                        await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.transport.abort()

        for coro in (pipe(reader, w2), pipe(r2, writer)):
            t = asyncio.create_task(coro)
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)


@pytest.mark.parametrize(("keepalive", "qos"), [(1, 0), (3, 1)], ids=["keepalive", "puback-timeout"])
async def test_silent_link_is_detected_and_recovered(listener: Listener, keepalive: int, qos: int) -> None:
    """QoS 0 notices a silent link by keepalive (~2 x keepalive_s); QoS 1 by the missing PUBACK (timeout_s)."""
    relay = Freezer(BROKER_PORT)
    await relay.start()
    store = TagStore()
    store.publish({"line1.a.temp": good(1.0)})
    pub = MqttPublisher(cfg_for(listener, port=relay.port, keepalive_s=keepalive, timeout_s=0.3, qos=qos), store)
    await pub.start()
    try:
        await listener.wait(lambda: listener.values("line1.a.temp"), what="first value")
        relay.frozen = True
        store.publish({"line1.a.temp": good(2.0)})
        await wait_status(pub, "connected", lambda c: c is False, within_s=6.0)
        relay.frozen = False
        await listener.wait(lambda: listener.values("line1.a.temp")[-1]["value"] == 2.0, what="value after thaw")
        await listener.wait(lambda: [m.payload for m in listener.on("status")] == [b"online", b"offline", b"online"],
                            what="will of the dead link, then online")
        assert pub.status()["connected"] is True
    finally:
        await pub.stop()
        await relay.stop()


async def test_stale_offline_is_corrected_while_connected(listener: Listener, broker: tuple[str, int]) -> None:
    """A late will (a half-open old connection the broker drops after our new birth) must not stick."""
    pub = MqttPublisher(cfg_for(listener), TagStore())
    await pub.start()
    try:
        await listener.wait(lambda: listener.on("status"), what="online")
        async with aiomqtt.Client(*broker, identifier=f"ghost-{uuid.uuid4().hex[:6]}") as ghost:
            await ghost.publish(f"{listener.prefix}/status", b"offline", qos=1, retain=True)
        await listener.wait(lambda: [m.payload for m in listener.on("status")] == [b"online", b"offline", b"online"],
                            what="online re-asserted")
        assert pub.status()["status_reasserted"] == 1
    finally:
        await pub.stop()


async def test_broker_unreachable_at_start_is_reported_then_recovers(listener: Listener) -> None:
    port = free_port()  # nothing listens here yet
    store = TagStore()
    store.publish({"line1.a.temp": good(7.0)})
    pub = MqttPublisher(cfg_for(listener, port=port), store)
    await pub.start()  # returns at once, never raises
    try:
        await wait_status(pub, "connect_failures", lambda n: n >= 2)
        st = pub.status()
        assert st["connected"] is False and str(port) in str(st["last_error"]) and st["last_error_ts"]
        store.publish({"line1.a.temp": good(8.0)})
        proxy = Proxy(BROKER_HOST, BROKER_PORT)
        proxy.port = port
        await proxy.start()
        try:
            await listener.wait(lambda: listener.values("line1.a.temp"), what="value after recovery")
            assert [v["value"] for v in listener.values("line1.a.temp")] == [8.0]
            await wait_status(pub, "connected", lambda c: c is True)
        finally:
            await pub.stop()
            await proxy.stop()
    finally:
        await pub.stop()


async def test_alarm_transitions_in_order_qos1_and_retained_state(
    listener: Listener, plant: PlantConfig, broker: tuple[str, int]
) -> None:
    t = [100.0]
    engine = AlarmEngine(plant, lambda: t[0], definitions=[])
    engine.define_external("test.pump_fail", priority="high", message="pump failed", area="tank1")
    store = TagStore()
    pub = MqttPublisher(cfg_for(listener), store, alarm_source=lambda: engine.subscribe("mqtt"),
                        alarm_snapshot=engine.alarms)
    await pub.start()
    try:
        await listener.wait(lambda: listener.on("alarms/test.pump_fail/state"), what="snapshot state at start")
        engine.set_condition("test.pump_fail", True, now=101.0)
        engine.set_condition("test.pump_fail", False, now=102.0)
        engine.ack("test.pump_fail", "op1", now=103.0)
        engine.set_condition("test.pump_fail", True, now=104.0)
        await listener.wait(lambda: len(listener.on("alarms/test.pump_fail")) == 4, what="4 transitions")
        msgs = listener.on("alarms/test.pump_fail")
        got = [json.loads(m.payload) for m in msgs]  # type: ignore[arg-type]
        assert [g["trigger"] for g in got] == ["activate", "clear", "ack", "activate"]
        assert [g["state"] for g in got] == ["unack", "rtn_unack", "normal", "unack"]
        assert got[2]["ack_user"] == "op1" and all(m.qos == 1 for m in msgs)
        await listener.wait(lambda: json.loads(listener.on("alarms/test.pump_fail/state")[-1].payload)["ts"] == 104.0,
                            what="state follows")
        async with aiomqtt.Client(*broker, identifier=f"late-{uuid.uuid4().hex[:6]}") as late:
            await late.subscribe(f"{listener.prefix}/alarms/+/state", qos=1)
            msg = await asyncio.wait_for(anext(aiter(late.messages)), 3.0)
            assert msg.retain and json.loads(msg.payload)["state"] == "unack"  # type: ignore[arg-type]
        assert pub.status()["dropped"] == 0
    finally:
        await pub.stop()


async def test_alarms_while_disconnected_are_queued_bounded_and_sent_in_order(listener: Listener, plant: PlantConfig) -> None:
    engine = AlarmEngine(plant, lambda: 0.0, definitions=[])
    engine.define_external("test.x", area="a")
    port = free_port()
    pub = MqttPublisher(cfg_for(listener, port=port, alarm_queue=10), TagStore(),
                        alarm_source=lambda: engine.subscribe("mqtt"))
    await pub.start()
    try:
        await wait_status(pub, "connect_failures", lambda n: n >= 1)
        for i in range(12):  # 12 transitions, 10 fit
            engine.set_condition("test.x", i % 2 == 0, now=float(i + 1))
        await asyncio.sleep(0.05)
        st = pub.status()
        assert st["dropped"] == 2 and st["connected"] is False
        proxy = Proxy(BROKER_HOST, BROKER_PORT)
        proxy.port = port
        await proxy.start()
        try:
            await listener.wait(lambda: len(listener.on("alarms/test.x")) == 10, what="10 queued transitions")
            ts = [json.loads(m.payload)["ts"] for m in listener.on("alarms/test.x")]  # type: ignore[arg-type]
            assert ts == [float(i + 1) for i in range(10)]
            await listener.wait(lambda: listener.on("alarms/test.x/state")
                                and json.loads(listener.on("alarms/test.x/state")[-1].payload)["ts"] == 12.0,
                                what="state is the latest despite the overflow")
        finally:
            await pub.stop()
            await proxy.stop()
    finally:
        await pub.stop()


async def test_engine_overflow_resyncs_states_from_snapshot(listener: Listener, plant: PlantConfig) -> None:
    from scada.config.alarms import AlarmSettings

    engine = AlarmEngine(plant, lambda: 0.0, settings=AlarmSettings(stream_maxsize=10), definitions=[])
    ids = [f"test.a{i:02d}" for i in range(12)]
    for i in ids:
        engine.define_external(i, area="a")
    pub = MqttPublisher(cfg_for(listener), TagStore(), alarm_source=lambda: engine.subscribe("mqtt"),
                        alarm_snapshot=engine.alarms)
    await pub.start()
    try:
        await listener.wait(lambda: all(listener.on(f"alarms/{i}/state") for i in ids), what="initial states")
        for n, i in enumerate(ids):  # 12 transitions before the publisher runs: the engine queue (10) overflows
            engine.set_condition(i, True, now=float(n + 1))
        await wait_status(pub, "alarm_resyncs", lambda n: n == 1)
        await listener.wait(lambda: all(json.loads(listener.on(f"alarms/{i}/state")[-1].payload)["state"] == "unack"
                                        for i in ids), what="every state resynchronised")
        st = pub.status()
        assert st["dropped"] >= 1 and "overflow" in str(st["last_error"])
        engine.set_condition(ids[0], False, now=20.0)  # the new subscription carries on
        await listener.wait(lambda: any(json.loads(m.payload)["trigger"] == "clear"
                                        for m in listener.on(f"alarms/{ids[0]}")), what="transition after resync")
    finally:
        await pub.stop()


async def test_created_from_plant_config_publishes_units_and_alarm_states(listener: Listener, plant: PlantConfig) -> None:
    """The composition root's call: ``create_mqtt_publisher(plant, store, alarms)``."""
    p = PlantConfig.model_validate({**plant.model_dump(), "northbound": {"mqtt": {
        "host": BROKER_HOST, "port": BROKER_PORT, "topic_prefix": listener.prefix, "patterns": ["*.pv"],
        "client_id": f"pub-{uuid.uuid4().hex[:8]}"}}})
    store = TagStore()
    tank = p.tanks[0]
    group, sg = next((g, s) for g, s in tank.sensors.items() if s.unit)
    pv = tank.pv_tag(p.line.prefix, group)
    store.declare([pv, p.tags[0].name])
    engine = AlarmEngine(p)
    pub = create_mqtt_publisher(p, store, engine)
    assert pub is not None
    await pub.start()
    try:
        await listener.wait(lambda: listener.values(pv), what=pv)
        assert listener.values(pv)[-1]["unit"] == sg.unit and listener.values(pv)[-1]["reason"] == "waiting_for_initial_data"
        d = engine.definitions[0]
        await listener.wait(lambda: listener.on(f"alarms/{d.id}/state"), what="alarm state")
        if not p.tags[0].name.endswith(".pv"):
            assert listener.values(p.tags[0].name) == []
    finally:
        await pub.stop()
