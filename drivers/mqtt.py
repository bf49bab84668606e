"""Northbound MQTT publisher: tag values, server status and alarms to a plant's MES / IIoT broker.

Topics under ``<prefix>`` (``plating/<line prefix>`` unless configured):

- ``<prefix>/status``: ``online`` (retained, on every connect) / ``offline`` (retained: the MQTT last will
  when the server dies or its link breaks, and published explicitly on a clean stop).
- ``<prefix>/tags/<tag with dots as slashes>``: JSON ``{"value", "quality", "reason", "ts", "unit"}``,
  retained unless configured otherwise, at most ``max_rate_hz`` per tag (faster changes coalesce to the
  latest). Every matching tag is published on each (re)connect, so a broker that lost its retained store
  is refilled and a change made while disconnected arrives as its latest value.
- ``<prefix>/alarms/<alarm id>``: each transition (``AlarmEvent.to_dict()``), QoS 1, not retained, in order.
  ``<prefix>/alarms/<alarm id>/state``: the alarm's full current state, retained. The alarm id stays one
  topic level (``alarms/+`` is every transition, ``alarms/+/state`` every state).
- ``<prefix>/floods/<area>``: alarm-flood state of an area, retained.

The scan never waits on the broker: tags come from a ``coalesce`` subscription of the TagStore, alarms
from a lossless alarm-engine subscription drained into a bounded outbox (overflow counted, never silent).
A broker that is down or lost is retried with capped exponential backoff; nothing raises into the caller
and :meth:`MqttPublisher.status` says why. The rate limiter and the outbox are pure (no I/O, no clock).
Only this module imports aiomqtt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt

from alarms.stream import AlarmEvent, FloodEvent
from drivers.stats import HealthLog
from scada.config.northbound import MqttConfig
from scada.tags import Sample, SubscriptionClosed, TagStore

if TYPE_CHECKING:
    from alarms.engine import AlarmEngine
    from scada.config import PlantConfig

log = logging.getLogger("drivers.mqtt")

_CHUNK = 64
"""Tag messages in flight at once (QoS 1 waits for PUBACK; a batch overlaps the round trips). Small enough
that one burst never holds the event loop, and so the scan, for more than a few ms (500 held it for 30-80 ms
with 1,000 tags, bench/bench_system.py)."""


class AlarmFeed(Protocol):
    """What the publisher needs of an alarm subscription (``alarms.stream.AlarmSubscription``)."""

    async def get(self, wait_s: float | None = None) -> list[Any]: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- pure: topics and payloads


def _level(text: str) -> str:
    """One topic level: no separators or wildcards inside."""
    return text.replace("/", "_").replace("+", "_").replace("#", "_") or "_"


def tag_topic(prefix: str, tag: str) -> str:
    return f"{prefix}/tags/" + "/".join(_level(p) for p in tag.split("."))


def alarm_topic(prefix: str, alarm_id: str) -> str:
    return f"{prefix}/alarms/{_level(alarm_id)}"


def _finite(v: object) -> object:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def tag_payload(sample: Sample, unit: str = "") -> bytes:
    """JSON of one value: a number never travels without its quality (NaN/inf become null)."""
    return json.dumps({
        "value": _finite(sample.value),
        "quality": sample.quality.label,
        "reason": str(sample.reason),
        "ts": sample.server_ts,
        "unit": unit,
    }, separators=(",", ":")).encode()


def event_payload(item: AlarmEvent | FloodEvent) -> bytes:
    return json.dumps({k: _finite(v) for k, v in item.to_dict().items()}, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- pure: rate limit, outbox


class Coalescer:
    """Latest sample per tag, released at most ``max_rate_hz`` per tag. Times are passed in (monotonic s)."""

    def __init__(self, max_rate_hz: float) -> None:
        self.min_interval_s = 1.0 / max_rate_hz
        self._pending: dict[str, Sample] = {}
        self._last: dict[str, float] = {}
        self.superseded = 0

    def offer(self, tag: str, sample: Sample) -> None:
        if tag in self._pending:
            self.superseded += 1
        self._pending[tag] = sample

    def restore(self, tag: str, sample: Sample) -> None:
        """Put back a sample whose publish failed, unless a newer one is already waiting."""
        self._pending.setdefault(tag, sample)

    def take_due(self, now: float) -> list[tuple[str, Sample]]:
        """Every pending tag whose last release is at least one interval ago; marks them released now."""
        due = [t for t in self._pending if now - self._last.get(t, -math.inf) >= self.min_interval_s]
        for t in due:
            self._last[t] = now
        return [(t, self._pending.pop(t)) for t in due]

    def next_due(self, now: float) -> float | None:
        """When the earliest pending tag may go (``None`` when nothing is pending)."""
        if not self._pending:
            return None
        return max(now, min(self._last.get(t, -math.inf) + self.min_interval_s for t in self._pending))

    def pending(self) -> int:
        return len(self._pending)


class AlarmOutbox:
    """Alarm transitions waiting for the broker (bounded, in order) plus the latest state of each alarm.

    On overflow the *newest* transition is refused and counted (the oldest are the ones an MES is
    missing); the per-alarm state is kept regardless, so ``.../state`` is always right after reconnect.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.transitions: deque[AlarmEvent] = deque()
        self._states: dict[str, AlarmEvent] = {}
        self._dirty: set[str] = set()
        self._floods: dict[str, FloodEvent] = {}
        self._dirty_floods: set[str] = set()
        self.dropped = 0

    def offer(self, items: Iterable[AlarmEvent | FloodEvent]) -> None:
        for it in items:
            if isinstance(it, FloodEvent):
                self._floods[it.area] = it
                self._dirty_floods.add(it.area)
                continue
            if it.trigger is not None:
                if len(self.transitions) >= self.maxsize:
                    self.dropped += 1
                else:
                    self.transitions.append(it)
            self._states[it.alarm_id] = it
            self._dirty.add(it.alarm_id)

    def mark_all_states(self) -> None:
        """Republish every known state (after a reconnect: the broker may have lost its retained store)."""
        self._dirty |= set(self._states)
        self._dirty_floods |= set(self._floods)

    def take_states(self) -> list[AlarmEvent]:
        out = [self._states[i] for i in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def take_floods(self) -> list[FloodEvent]:
        out = [self._floods[a] for a in sorted(self._dirty_floods)]
        self._dirty_floods.clear()
        return out

    def restore_state(self, alarm_id: str) -> None:
        self._dirty.add(alarm_id)

    def restore_flood(self, area: str) -> None:
        self._dirty_floods.add(area)

    def pending(self) -> int:
        return len(self.transitions) + len(self._dirty) + len(self._dirty_floods)


def backoff_s(failures: int, min_s: float, max_s: float) -> float:
    """Capped exponential backoff: min, 2 min, 4 min, ... max."""
    return min(max_s, min_s * (2 ** max(0, min(failures - 1, 30))))


# --------------------------------------------------------------------------- the publisher


class MqttPublisher:
    """One broker connection fed by the TagStore and (optionally) the alarm engine. Never raises."""

    def __init__(
        self,
        cfg: MqttConfig,
        store: TagStore,
        *,
        alarm_source: Callable[[], AlarmFeed] | None = None,
        alarm_snapshot: Callable[[], Iterable[AlarmEvent]] | None = None,
        units: Mapping[str, str] | None = None,
        line_prefix: str = "line1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.prefix = cfg.prefix_for(line_prefix)
        self.client_id = cfg.client_id_for(line_prefix)
        self.status_topic = f"{self.prefix}/status"
        self._alarm_source = alarm_source if cfg.publish_alarms else None
        self._alarm_snapshot = alarm_snapshot if cfg.publish_alarms else None
        self._units = dict(units or {})
        self._clock = clock
        self._coalescer = Coalescer(cfg.max_rate_hz)
        self._outbox = AlarmOutbox(cfg.alarm_queue)
        self._alarm_wake = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._tag_sub: Any = None
        self._alarm_sub: AlarmFeed | None = None
        self._task: asyncio.Task[None] | None = None
        self._collector: asyncio.Task[None] | None = None
        self._ssl: ssl.SSLContext | None = None
        self._health = HealthLog(log, "mqtt publisher")
        self._connected = False
        self._state = "stopped"
        self.published = 0
        self.connects = 0
        self.connect_failures = 0
        self.alarm_resyncs = 0
        self.status_reasserted = 0
        self._resync_dropped = 0
        self.last_error = ""
        self.last_error_ts: float | None = None
        self.last_connect_ts: float | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Subscribe and connect in the background; returns at once even when the broker is down."""
        if self._task is not None:
            return
        self._stop_event.clear()
        self._tag_sub = self.store.subscribe(f"mqtt:{self.client_id}", self.cfg.patterns,
                                             policy="coalesce", initial=False)
        if self._alarm_source is not None:
            self._alarm_sub = self._alarm_source()
            self._snapshot_alarms()
            self._collector = asyncio.create_task(self._collect_alarms(), name="mqtt-alarms")
        self._state = "connecting"
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self) -> None:
        """Publish ``offline``, disconnect cleanly, end every task. Never raises."""
        if self._task is None:
            return
        self._stop_event.set()
        task, self._task = self._task, None
        # never cancel a connect in flight: aiomqtt connects in a thread, and a connection that completes
        # after we gave up would live on as a ghost client holding our id and will (bounded by timeout_s)
        try:
            await asyncio.wait_for(asyncio.shield(task), self.cfg.timeout_s + 2.0)
        except (TimeoutError, asyncio.CancelledError, Exception):  # noqa: BLE001 - stop must not raise
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(BaseException):
                await self._collector
            self._collector = None
        if self._tag_sub is not None:
            self._tag_sub.close()
            self._tag_sub = None
        if self._alarm_sub is not None:
            self._alarm_sub.close()
            self._alarm_sub = None
        self._connected = False
        self._state = "stopped"

    def status(self) -> dict[str, object]:
        """What /api/status and /metrics show: link state, counters, and why it is down."""
        return {
            "broker": f"{self.cfg.host}:{self.cfg.broker_port}",
            "topic_prefix": self.prefix,
            "state": self._state,
            "connected": self._connected,
            "published": self.published,
            "dropped": self._outbox.dropped + self._resync_dropped,
            "reconnects": max(0, self.connects - 1),
            "connect_failures": self.connect_failures,
            "coalesced": self._coalescer.superseded + (self._tag_sub.coalesced if self._tag_sub else 0),
            "pending_tags": self._coalescer.pending() + (self._tag_sub.pending() if self._tag_sub else 0),
            "pending_alarms": self._outbox.pending(),
            "alarm_resyncs": self.alarm_resyncs,
            "status_reasserted": self.status_reasserted,
            "last_error": self.last_error,
            "last_error_ts": self.last_error_ts,
            "last_connect_ts": self.last_connect_ts,
        }

    # ------------------------------------------------------------------ connection loop

    def _error(self, text: str) -> None:
        self.last_error = text
        self.last_error_ts = self._clock()
        self._health.fail(self.prefix, text)

    async def _client(self) -> aiomqtt.Client:
        password = None
        if self.cfg.password_env:
            password = os.environ.get(self.cfg.password_env)
            if password is None:
                raise _Refused(f"environment variable {self.cfg.password_env} (password_env) is not set")
        if self.cfg.tls and self._ssl is None:
            self._ssl = await asyncio.to_thread(ssl.create_default_context, cafile=self.cfg.ca_file)
        client = aiomqtt.Client(
            self.cfg.host, self.cfg.broker_port, identifier=self.client_id,
            username=self.cfg.username, password=password,
            will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
            keepalive=self.cfg.keepalive_s, timeout=self.cfg.timeout_s, tls_context=self._ssl,
            logger=log, max_inflight_messages=_CHUNK,
        )
        client.pending_calls_threshold = _CHUNK + 20
        return client

    async def _run(self) -> None:
        failures = 0
        while not self._stop_event.is_set():
            linked = False
            try:
                self._state = "connecting"
                client = await self._client()
                try:
                    await client.__aenter__()
                except BaseException:
                    _discard(client)
                    raise
                try:
                    linked = True
                    self._on_connected()
                    await self._session(client)
                finally:
                    with contextlib.suppress(Exception):
                        await client.__aexit__(None, None, None)
                    _discard(client)
            except asyncio.CancelledError:
                raise
            except _Refused as e:
                self._error(str(e))
            except (aiomqtt.MqttError, OSError) as e:
                cause = f" ({e.__cause__})" if e.__cause__ is not None and str(e.__cause__) else ""
                self._error(f"broker {self.cfg.host}:{self.cfg.broker_port}: {e or type(e).__name__}{cause}")
            except Exception as e:  # noqa: BLE001 - no exception may escape the publisher
                self._error(f"{type(e).__name__}: {e}")
                log.exception("mqtt publisher error")
            finally:
                self._connected = False
            if self._stop_event.is_set():
                break
            if linked:
                failures = 1  # lost after a good connection: retry soon
            else:
                failures += 1
                self.connect_failures += 1
            self._state = "disconnected"
            wait = backoff_s(failures, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), wait)
        self._state = "stopped"

    def _on_connected(self) -> None:
        self._connected = True
        self._state = "connected"
        self.connects += 1
        self.last_connect_ts = self._clock()
        self._health.ok(self.prefix)
        # a birth: every current value and alarm state again (retained store may be gone, values moved)
        sub = self._tag_sub
        for tag, sample in self.store.snapshot().items():
            if sub is None or sub.matches(tag):
                self._coalescer.offer(tag, sample)
        self._outbox.mark_all_states()
        self._alarm_wake.set()

    async def _session(self, client: aiomqtt.Client) -> None:
        """Publish until the link breaks (raises MqttError) or stop is asked (publishes ``offline``)."""
        if self._stop_event.is_set():  # connected while stopping: say goodbye only
            await client.publish(self.status_topic, b"offline", qos=1, retain=True)
            return
        await client.publish(self.status_topic, b"online", qos=1, retain=True)
        self.published += 1
        # the will of an earlier, half-open connection may land after this birth: watch and correct it
        await client.subscribe(self.status_topic, qos=1)
        stop = asyncio.ensure_future(self._stop_event.wait())
        jobs: list[asyncio.Future[Any]] = [stop, asyncio.ensure_future(self._watch(client)),
                                           asyncio.ensure_future(self._pump_tags(client))]
        if self._alarm_sub is not None or self._alarm_snapshot is not None:
            jobs.append(asyncio.ensure_future(self._pump_alarms(client)))
        try:
            done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for j in jobs:
                j.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
        for j in done:
            if j is not stop and not j.cancelled() and j.exception() is not None:
                raise j.exception()  # type: ignore[misc]
        if self._stop_event.is_set():
            await client.publish(self.status_topic, b"offline", qos=1, retain=True)
            self.published += 1

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Detect a lost link (the message iterator raises MqttError) and re-assert ``online``.

        A half-open connection the broker only notices later (1.5 x keepalive) gets its ``offline`` will
        published after our new ``online``; seeing our own status go ``offline`` while connected, we
        publish ``online`` again.
        """
        try:
            async for msg in client.messages:
                if msg.payload == b"offline" and not self._stop_event.is_set():
                    self.status_reasserted += 1
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    self.published += 1
        except aiomqtt.MqttError as e:
            raise aiomqtt.MqttError(f"connection lost ({e.__cause__ or e})") from None
        raise aiomqtt.MqttError("connection lost")

    # ------------------------------------------------------------------ tags

    async def _pump_tags(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        sub = self._tag_sub
        while True:
            for tag, sample in sub.drain():
                self._coalescer.offer(tag, sample)
            due = self._coalescer.take_due(loop.time())
            if due:
                await self._publish_tags(client, due)
                continue
            nd = self._coalescer.next_due(loop.time())
            try:
                items = await sub.get(None if nd is None else max(0.0, nd - loop.time()) + 0.001)
            except SubscriptionClosed:
                return  # closed by stop()
            for tag, sample in items:
                self._coalescer.offer(tag, sample)

    async def _publish_tags(self, client: aiomqtt.Client, due: list[tuple[str, Sample]]) -> None:
        qos, retain = self.cfg.qos, self.cfg.retain
        for i in range(0, len(due), _CHUNK):
            chunk = due[i:i + _CHUNK]
            results = await asyncio.gather(
                *(client.publish(tag_topic(self.prefix, t), tag_payload(s, self._units.get(t, "")),
                                 qos=qos, retain=retain) for t, s in chunk),
                return_exceptions=True)
            failed: BaseException | None = None
            for (t, s), r in zip(chunk, results, strict=True):
                if isinstance(r, BaseException):
                    self._coalescer.restore(t, s)
                    failed = failed or r
                else:
                    self.published += 1
            if failed is not None:
                for t, s in due[i + _CHUNK:]:
                    self._coalescer.restore(t, s)
                raise failed if isinstance(failed, aiomqtt.MqttError) else aiomqtt.MqttError(str(failed))

    # ------------------------------------------------------------------ alarms

    def _snapshot_alarms(self) -> None:
        if self._alarm_snapshot is not None:
            try:
                self._outbox.offer(list(self._alarm_snapshot()))
            except Exception as e:  # noqa: BLE001
                self._error(f"alarm snapshot failed: {e}")
        self._alarm_wake.set()

    async def _collect_alarms(self) -> None:
        """Always running (connected or not): engine subscription -> bounded outbox."""
        while True:
            sub = self._alarm_sub
            if sub is None:
                return
            try:
                items = await sub.get(None)
            except SubscriptionClosed as e:
                # the engine's queue overflowed: transitions were lost there; count, resubscribe, resync
                self.alarm_resyncs += 1
                self._resync_dropped += 1
                self._error(f"alarm stream overflowed ({e}); resynchronised from the alarm snapshot")
                assert self._alarm_source is not None
                self._alarm_sub = self._alarm_source()
                self._snapshot_alarms()
                continue
            self._outbox.offer(items)
            self._alarm_wake.set()

    async def _pump_alarms(self, client: aiomqtt.Client) -> None:
        ob = self._outbox
        while True:
            self._alarm_wake.clear()
            while ob.transitions:
                ev = ob.transitions[0]
                await client.publish(alarm_topic(self.prefix, ev.alarm_id), event_payload(ev), qos=1, retain=False)
                ob.transitions.popleft()
                self.published += 1
            for st in ob.take_states():
                await self._publish_or_restore(
                    client.publish(alarm_topic(self.prefix, st.alarm_id) + "/state", event_payload(st),
                                   qos=1, retain=True), lambda i=st.alarm_id: ob.restore_state(i))
            for fl in ob.take_floods():
                await self._publish_or_restore(
                    client.publish(f"{self.prefix}/floods/{_level(fl.area)}", event_payload(fl), qos=1, retain=True),
                    lambda a=fl.area: ob.restore_flood(a))
            if not ob.pending():
                await self._alarm_wake.wait()

    async def _publish_or_restore(self, publish: Awaitable[None], restore: Callable[[], None]) -> None:
        try:
            await publish
        except BaseException:
            restore()
            raise
        self.published += 1


def _discard(client: aiomqtt.Client) -> None:
    """Close what aiomqtt leaves open after a failed connect (socket, housekeeping task).

    A connect that times out waiting for CONNACK keeps paho's socket and its keepalive task alive; a
    retry loop against a stalled broker would leak one of each per attempt. paho closes the socket as
    soon as the queued DISCONNECT is written (on the next loop iteration).
    """
    paho = getattr(client, "_client", None)
    if paho is not None and paho.socket() is not None:
        with contextlib.suppress(Exception):
            paho.disconnect()


class _Refused(Exception):
    """A local reason not to try the broker now (missing password variable)."""


# --------------------------------------------------------------------------- composition


def plant_units(plant: PlantConfig) -> dict[str, str]:
    """Engineering unit of every tag the plant names (device tags and voted sensor values)."""
    units = {t.name: t.unit for t in plant.tags if t.unit}
    for tank in plant.tanks:
        for group, sg in tank.sensors.items():
            if sg.unit:
                units[tank.pv_tag(plant.line.prefix, group)] = sg.unit
        if any(lc.kind.value == "rectifier" for lc in tank.loops):
            units[tank.pv_tag(plant.line.prefix, "current_density")] = "A/dm2"
    return units


def create_mqtt_publisher(
    plant: PlantConfig,
    store: TagStore,
    alarms: AlarmEngine | None = None,
    clock: Callable[[], float] = time.time,
) -> MqttPublisher | None:
    """The plant's MQTT publisher, or ``None`` when ``northbound.mqtt`` is not configured."""
    cfg = plant.northbound.mqtt
    if cfg is None:
        return None
    return MqttPublisher(
        cfg, store,
        alarm_source=(lambda: alarms.subscribe("mqtt")) if alarms is not None else None,
        alarm_snapshot=alarms.alarms if alarms is not None else None,
        units=plant_units(plant), line_prefix=plant.line.prefix, clock=clock,
    )
