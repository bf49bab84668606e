"""OPC UA client driver (asyncua): subscriptions with a polling fallback, reconnect and re-subscribe.

One :class:`OpcUaDriver` owns one session and one task. The task connects (security policy None or
Basic256Sha256 Sign/SignAndEncrypt with the configured certificate files; anonymous or username
login, the password read from the environment variable named in the config), resolves every node id
(``s=...`` and ``nsu=<uri>;s=...`` against the namespace URI, so namespace indexes may move between
server restarts), then either subscribes (monitored items with the device's sampling interval and a
per-tag deadband where configured) or polls with one Read call per period.

While connected, a cheap liveness read of the server state runs every poll period: data freshness is
judged by that, not by the socket. When it fails, every tag goes Bad ``comm_failure`` at once, the
session is dropped, and the task reconnects with capped exponential backoff and subscribes again.
OPC UA status codes map to our quality families and reasons (:func:`quality_from_status`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC
from typing import Any

from asyncua import Client, Node, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from drivers.base import DriverStatus, SampleSink, WriteResult, deliver
from drivers.codec import INT_RANGES, Encoding, TagCodec
from drivers.stats import HealthLog, LatencyRing
from scada.config.devices import OpcUaDevice
from scada.config.tags import DataType, TagConfig
from scada.tags import Quality, QualityReason, Sample, Value

log = logging.getLogger(__name__)

VARIANT: dict[str, ua.VariantType] = {
    "double": ua.VariantType.Double,
    "float": ua.VariantType.Float,
    "int16": ua.VariantType.Int16,
    "int32": ua.VariantType.Int32,
    "uint16": ua.VariantType.UInt16,
    "uint32": ua.VariantType.UInt32,
    "boolean": ua.VariantType.Boolean,
}
_INT_TYPES: dict[ua.VariantType, DataType] = {
    ua.VariantType.Int16: DataType.INT16,
    ua.VariantType.UInt16: DataType.UINT16,
    ua.VariantType.Int32: DataType.INT32,
    ua.VariantType.UInt32: DataType.UINT32,
}

# Specific status codes with a reason of their own; anything else maps by family.
_STATUS_REASON: dict[int, tuple[Quality, QualityReason]] = {
    0x80050000: (Quality.BAD, QualityReason.COMM_FAILURE),  # BadCommunicationError
    0x80310000: (Quality.BAD, QualityReason.COMM_FAILURE),  # BadNoCommunication
    0x808A0000: (Quality.BAD, QualityReason.NOT_CONNECTED),  # BadNotConnected
    0x80320000: (Quality.BAD, QualityReason.WAITING_FOR_INITIAL_DATA),
    0x808B0000: (Quality.BAD, QualityReason.DEVICE_FAILURE),
    0x808C0000: (Quality.BAD, QualityReason.SENSOR_FAILURE),
    0x808D0000: (Quality.BAD, QualityReason.OUT_OF_SERVICE),
    0x80890000: (Quality.BAD, QualityReason.CONFIG_ERROR),  # BadConfigurationError
    0x803C0000: (Quality.BAD, QualityReason.OUT_OF_RANGE),
    0x80340000: (Quality.BAD, QualityReason.CONFIG_ERROR),  # BadNodeIdUnknown
    0x80330000: (Quality.BAD, QualityReason.CONFIG_ERROR),  # BadNodeIdInvalid
    0x40900000: (Quality.UNCERTAIN, QualityReason.LAST_KNOWN_VALUE),  # UncertainLastUsableValue
    0x40910000: (Quality.UNCERTAIN, QualityReason.SUBSTITUTED),
    0x40920000: (Quality.UNCERTAIN, QualityReason.SUBSTITUTED),  # UncertainInitialValue
    0x40930000: (Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),
    0x40940000: (Quality.UNCERTAIN, QualityReason.OUT_OF_RANGE),  # EngineeringUnitsExceeded
    0x40950000: (Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE),  # UncertainSubNormal
}


def status_name(code: int) -> str:
    try:
        return ua.StatusCode(code).name
    except Exception:  # noqa: BLE001 - unknown codes still get a readable text
        return f"0x{code:08X}"


def quality_from_status(code: int) -> tuple[Quality, QualityReason]:
    """OPC UA StatusCode -> (quality, reason). The top two bits give the family (Part 4, 7.34)."""
    severity = code & 0xC0000000
    if severity == 0:
        return Quality.GOOD, QualityReason.NONE
    exact = _STATUS_REASON.get(code & 0xFFFF0000)
    if exact is not None:
        return exact
    if severity == 0x40000000:
        return Quality.UNCERTAIN, QualityReason.SENSOR_NOT_ACCURATE
    return Quality.BAD, QualityReason.DEVICE_FAILURE


def split_node_id(text: str) -> tuple[str | None, str]:
    """``ns=2;s=X`` -> ("2", "s=X"); ``nsu=urn:x;s=X`` / ``ns=urn:x;s=X`` -> ("urn:x", "s=X"); ``s=X`` -> (None, "s=X")."""
    if text.startswith(("ns=", "nsu=")) and ";" in text:
        head, rest = text.split(";", 1)
        return head.split("=", 1)[1], rest
    return None, text


class OpcUaDriver:
    """Subscribes to (or polls) one OPC UA server. See module docstring."""

    def __init__(
        self,
        device: OpcUaDevice,
        tags: Iterable[TagConfig],
        sink: SampleSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.name = device.name
        self.sink = sink
        self.clock = clock
        self.tags: dict[str, TagConfig] = {t.name: t for t in tags if t.opcua is not None and t.device == device.name}
        self._codecs: dict[str, TagCodec] = {
            n: TagCodec(name=n, encoding=Encoding(DataType.FLOAT64), scale=t.scale, limits=t.limits,
                        ma_4_20=t.signal == "ma_4_20")
            for n, t in self.tags.items()
        }
        self._status = DriverStatus(name=device.name, protocol="opcua")
        self._latency = LatencyRing()
        self._health = HealthLog(log, "opcua")
        self._client: Client | None = None
        self._nodes: dict[str, Node] = {}
        self._tags_by_node: dict[str, list[str]] = {}
        self._subscription: Any = None
        self._mode = "subscription" if device.subscription else "polling"
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._connected = asyncio.Event()
        self._ever_connected = False
        self._lost = False
        self._backoff_s = device.reconnect_delay_s
        self._variant_cache: dict[str, ua.VariantType] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._task is not None:
            return
        now = self.clock()
        if not self.device.enabled:
            self._emit({t: Sample.bad(QualityReason.OUT_OF_SERVICE, now, "device disabled") for t in self.tags})
            return
        self._status.state = "connecting"
        self._emit({t: Sample.bad(QualityReason.WAITING_FOR_INITIAL_DATA, now) for t in self.tags})
        self._task = asyncio.create_task(self._run(), name=f"opcua-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()
        self._status.state = "stopped"

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        self._subscription = None
        self._connected.clear()
        self._status.connected = False
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), timeout=self.device.timeout_s)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                client.disconnect_socket()
            raise
        except Exception:  # noqa: BLE001 - a dead server cannot say goodbye; make sure the socket closes
            with contextlib.suppress(Exception):
                client.disconnect_socket()

    # ------------------------------------------------------------------ connection

    def _make_client(self) -> Client:
        d = self.device
        client = Client(d.endpoint, timeout=d.timeout_s, watchdog_intervall=max(d.poll_period_s, 0.5))
        if d.username:
            client.set_user(d.username)
            client.set_password(os.environ.get(d.password_env or "", ""))
        return client

    async def _connect(self) -> None:
        """Connect, resolve nodes, subscribe or prepare polling. Raises on any failure."""
        d = self.device
        client = self._make_client()
        self._client = client
        if d.security_policy == "Basic256Sha256":
            mode = ua.MessageSecurityMode.Sign if d.security_mode == "Sign" else ua.MessageSecurityMode.SignAndEncrypt
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=d.certificate or "",
                private_key=d.private_key or "",
                server_certificate=d.server_certificate,
                mode=mode,
            )
        await asyncio.wait_for(client.connect(), timeout=d.timeout_s * 2 + 1)
        await self._resolve_nodes(client)
        self._status.connected = True
        if self._ever_connected and self._lost:
            self._status.reconnects += 1
        self._ever_connected, self._lost = True, False
        self._backoff_s = d.reconnect_delay_s
        self._health.ok(self.name)
        self._mode = "polling"
        if d.subscription and self._nodes:
            try:
                await self._subscribe(client)
                self._mode = "subscription"
            except Exception as e:  # noqa: BLE001 - a server may refuse subscriptions: poll instead
                log.warning("opcua %s: subscription refused (%s), polling instead", self.name, e)
                self._subscription = None
        self._status.extra["mode"] = self._mode
        self._connected.set()

    async def _resolve_nodes(self, client: Client) -> None:
        ns_cache: dict[str, int] = {}
        default_ns = self.device.namespace
        self._nodes.clear()
        self._tags_by_node.clear()
        bad: dict[str, Sample] = {}
        for name, t in self.tags.items():
            assert t.opcua is not None
            ns, ident = split_node_id(t.opcua.node)
            try:
                if ns is None and default_ns is not None:
                    ns = default_ns
                if ns is not None and not ns.isdigit():
                    if ns not in ns_cache:
                        ns_cache[ns] = await client.get_namespace_index(ns)
                    ns = str(ns_cache[ns])
                node = client.get_node(f"ns={ns};{ident}" if ns is not None else ident)
            except Exception as e:  # noqa: BLE001 - a bad node id is a config error for that tag only
                bad[name] = Sample.bad(QualityReason.CONFIG_ERROR, self.clock(), f"cannot resolve {t.opcua.node!r}: {e}")
                continue
            self._nodes[name] = node
            self._tags_by_node.setdefault(node.nodeid.to_string(), []).append(name)
        self._emit(bad)

    async def _subscribe(self, client: Client) -> None:
        d = self.device
        sub = await client.create_subscription(max(d.sampling_interval_ms, 10), _Handler(self))
        self._subscription = sub
        plain = [n for name, n in self._nodes.items() if self.tags[name].opcua.deadband is None]  # type: ignore[union-attr]
        if plain:
            res = await sub.subscribe_data_change(plain, sampling_interval=float(d.sampling_interval_ms))
            self._check_items(plain, res)
        for name, node in self._nodes.items():
            db = self.tags[name].opcua.deadband  # type: ignore[union-attr]
            if db is None:
                continue
            filt = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValue, DeadbandType=1, DeadbandValue=db)
            res = await sub._subscribe(node, ua.AttributeIds.Value, filt, 0, ua.MonitoringMode.Reporting,
                                       float(d.sampling_interval_ms))
            self._check_items([node], res)

    def _check_items(self, nodes: list[Node], res: object) -> None:
        results = res if isinstance(res, list) else [res]
        out: dict[str, Sample] = {}
        for node, r in zip(nodes, results, strict=False):
            if isinstance(r, ua.StatusCode) and not r.is_good():
                for t in self._tags_by_node.get(node.nodeid.to_string(), []):
                    out[t] = Sample.bad(QualityReason.CONFIG_ERROR, self.clock(), f"monitored item refused: {r.name}")
        self._emit(out)

    # ------------------------------------------------------------------ the task

    async def _run(self) -> None:
        d = self.device
        while True:
            try:
                if self._client is None:
                    await self._connect()
                await self._tick()
                await asyncio.sleep(d.poll_period_s)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure: Bad, drop the session, back off, retry
                reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                self._failed(reason)
                await self._disconnect()
                await asyncio.sleep(self._backoff_s)
                self._backoff_s = min(self._backoff_s * 2, d.reconnect_max_s)

    async def _tick(self) -> None:
        """Polling mode: read every node. Subscription mode: liveness read of the server state."""
        assert self._client is not None
        if self._mode == "polling":
            await self._read_all()
            return
        t0 = time.perf_counter()
        self._status.requests += 1
        await asyncio.wait_for(
            self._client.read_values([self._client.get_node(ua.ObjectIds.Server_ServerStatus_State)]),
            timeout=self.device.timeout_s,
        )
        self._latency.add(time.perf_counter() - t0)
        self._status.last_good_ts = self.clock()

    async def _read_all(self) -> dict[str, Sample]:
        assert self._client is not None
        names = list(self._nodes)
        if not names:
            return {}
        t0 = time.perf_counter()
        self._status.requests += 1
        async with self._lock:
            dvs = await asyncio.wait_for(
                self._client.uaclient.read_attributes([self._nodes[n].nodeid for n in names], ua.AttributeIds.Value),
                timeout=self.device.timeout_s,
            )
        self._latency.add(time.perf_counter() - t0)
        now = self.clock()
        self._status.last_good_ts = now
        out = {n: self._sample(n, dv, now) for n, dv in zip(names, dvs, strict=True)}
        self._emit(out)
        return out

    def _failed(self, reason: str) -> None:
        now = self.clock()
        self._lost = self._lost or self._ever_connected
        self._status.errors += 1
        if "Timeout" in reason:
            self._status.timeouts += 1
        self._status.last_error, self._status.last_error_ts = reason, now
        self._status.connected = False
        self._health.fail(self.name, reason)
        self._emit({t: Sample.bad(QualityReason.COMM_FAILURE, now, reason) for t in self.tags})

    async def poll_once(self) -> dict[str, Sample]:
        """Read every tag now with one Read call (connecting first if needed). Never raises."""
        try:
            if self._client is None:
                await self._connect()
            return await self._read_all()
        except Exception as e:  # noqa: BLE001
            self._failed(f"{type(e).__name__}: {e}")
            await self._disconnect()
            return {t: Sample.bad(QualityReason.COMM_FAILURE, self.clock(), self._status.last_error) for t in self.tags}

    # ------------------------------------------------------------------ values

    def _sample(self, name: str, dv: ua.DataValue, now: float) -> Sample:
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        quality, reason = quality_from_status(code)
        stamp = dv.SourceTimestamp or dv.ServerTimestamp
        src = stamp.replace(tzinfo=stamp.tzinfo or UTC).timestamp() if stamp is not None else None
        raw = dv.Value.Value if dv.Value is not None else None
        if quality is Quality.BAD:
            return Sample(value=None, quality=quality, server_ts=now, source_ts=src, reason=reason,
                          detail=status_name(code))
        if not isinstance(raw, bool | int | float):
            return Sample(value=None, quality=Quality.BAD, server_ts=now, source_ts=src,
                          reason=QualityReason.CONFIG_ERROR, detail=f"unsupported value type {type(raw).__name__}")
        s = self._codecs[name].sample_from_raw(raw, now)
        s = replace(s, source_ts=src)
        if quality is Quality.UNCERTAIN and s.quality is Quality.GOOD:
            s = s.with_quality(Quality.UNCERTAIN, reason, status_name(code))
        return s

    def _on_change(self, node: Node, dv: ua.DataValue) -> None:
        now = self.clock()
        names = self._tags_by_node.get(node.nodeid.to_string(), [])
        self._status.last_good_ts = now
        self._emit({n: self._sample(n, dv, now) for n in names})

    def _emit(self, samples: dict[str, Sample]) -> None:
        deliver(self.sink, samples, f"opcua {self.name}", log)

    # ------------------------------------------------------------------ writes

    async def write(self, values: Mapping[str, Value]) -> list[WriteResult]:
        """Write engineering values with the node's variant type; one result per tag. Never raises."""
        results = []
        for tag, value in values.items():
            try:
                results.append(await self._write_one(tag, value))
            except Exception as e:  # noqa: BLE001
                results.append(WriteResult(tag, False, value, f"write failed: {type(e).__name__}: {e}"))
        return results

    async def _write_one(self, tag: str, value: Value) -> WriteResult:
        cfg = self.tags.get(tag)
        if cfg is None:
            return WriteResult(tag, False, value, f"tag {tag!r} is not on device {self.name}")
        if not cfg.writable:
            return WriteResult(tag, False, value, "tag is not writable (access: read)")
        if self._client is None or not self._status.connected or tag not in self._nodes:
            return WriteResult(tag, False, value, f"not connected: {self._status.last_error or 'connecting'}")
        node = self._nodes[tag]
        vtype = await self._variant_type(tag, node)
        raw, reason = self._to_raw(cfg, vtype, value)
        if reason:
            return WriteResult(tag, False, value, reason)
        dv = ua.DataValue(ua.Variant(raw, vtype))
        try:
            async with self._lock:
                await asyncio.wait_for(node.write_attribute(ua.AttributeIds.Value, dv), timeout=self.device.timeout_s)
                if cfg.verify_write:
                    back = await asyncio.wait_for(node.read_value(), timeout=self.device.timeout_s)
                    same = back == raw if not isinstance(raw, float) else math.isclose(back, raw, rel_tol=1e-6)
                    if not same:
                        return WriteResult(tag, False, value, f"read-back mismatch: wrote {raw!r}, read {back!r}")
        except ua.UaStatusCodeError as e:
            return WriteResult(tag, False, value, f"server refused: {status_name(e.code)}")
        except TimeoutError:
            return WriteResult(tag, False, value, "write failed: no response (timeout)")
        return WriteResult(tag, True, value)

    async def _variant_type(self, tag: str, node: Node) -> ua.VariantType:
        cfg = self.tags[tag]
        if cfg.opcua is not None and cfg.opcua.type is not None:
            return VARIANT[cfg.opcua.type]
        if tag not in self._variant_cache:
            self._variant_cache[tag] = await node.read_data_type_as_variant_type()
        return self._variant_cache[tag]

    @staticmethod
    def _to_raw(cfg: TagConfig, vtype: ua.VariantType, value: Value) -> tuple[Any, str]:
        """Engineering value -> raw Python value for the variant type, or a refusal reason."""
        if vtype is ua.VariantType.Boolean:
            if isinstance(value, bool) or value in (0, 1):
                return bool(value), ""
            return None, f"{value!r} is not a boolean"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, f"{value!r} is not a number"
        if not math.isfinite(value):
            return None, f"{value!r} is not a finite number"
        if cfg.limits is not None and not cfg.limits.contains(float(value)):
            return None, f"{value:g} outside limits {cfg.limits.min:g}..{cfg.limits.max:g}"
        raw: float | int = cfg.scale.to_raw(float(value)) if cfg.scale else value
        if vtype in _INT_TYPES:
            lo, hi = INT_RANGES[_INT_TYPES[vtype]]
            raw = round(raw)
            if not lo <= raw <= hi:
                return None, f"raw value {raw} does not fit {vtype.name}"
            return raw, ""
        if vtype in (ua.VariantType.Float, ua.VariantType.Double):
            if vtype is ua.VariantType.Float and abs(raw) > 3.4028234663852886e38:
                return None, f"raw value {raw!r} does not fit Float"
            return float(raw), ""
        return None, f"variant type {vtype.name} is not supported for writes"

    # ------------------------------------------------------------------ status

    def status(self) -> DriverStatus:
        s = replace(self._status, extra=dict(self._status.extra))
        s.latency_p50_ms = self._latency.percentile(50)
        s.latency_p99_ms = self._latency.percentile(99)
        if self._task is None:
            s.state = "stopped"
        else:
            now = self.clock()
            fresh = (
                self._status.connected
                and self._status.last_good_ts is not None
                and now - self._status.last_good_ts <= 2 * self.device.poll_period_s + self.device.timeout_s + 0.5
            )
            if fresh:
                s.state = "ok"
            elif self._ever_connected or self._status.last_error:
                s.state = "down"
            else:
                s.state = "connecting"
        s.extra["mode"] = self._mode
        s.extra["backoff_s"] = self._backoff_s
        return s


class _Handler:
    """asyncua subscription callback -> driver."""

    def __init__(self, driver: OpcUaDriver) -> None:
        self._driver = driver

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        try:
            self._driver._on_change(node, data.monitored_item.Value)
        except Exception:  # noqa: BLE001 - never let an exception into asyncua's dispatch
            log.exception("opcua %s: bad data change notification", self._driver.name)

    def status_change_notification(self, status: Any) -> None:
        log.info("opcua %s: subscription status %s", self._driver.name, status)
